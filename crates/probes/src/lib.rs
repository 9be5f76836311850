//! Probes: the code that goes out and looks at something (a web page, a TCP port, a TLS
//! certificate, a DNS record) and reports what it saw as an [`Observation`]. Probes never
//! touch the store and never alert; they measure and classify.
//!
//! One module per check kind ([`http`], [`tcp`], [`tls`], [`dns`], [`kafka`]); `net` is what they share
//! (name resolution, TCP connect, the TLS handshake, deadlines). [`CheckKind`] is the closed set
//! of kinds with the operands their conditions may name; [`CheckSpec`] what to check;
//! [`Probes::run`] runs any of them.

pub mod dns;
pub mod error;
pub mod http;
pub mod kafka;
mod kind;
mod net;
mod observation;
pub mod tcp;
pub mod tls;

pub use error::{ErrorKind, Phase, ProbeError, RequestError};
pub use kind::{CheckKind, CheckSpec, DEFAULT_TIMEOUT};
pub use net::ProberOptions;
pub use observation::{Detail, HttpDetail, Observation, Report};

use http::HttpProber;
use std::collections::HashMap;
use std::sync::Mutex;

/// The most Kafka clusters kept at once; past it the kept ones are dropped (a reload that
/// changed every monitor's settings).
const MAX_CLUSTERS: usize = 1024;

/// Runs checks of every kind. Built once (TLS configs, DNS setup) and shared (`&self`).
pub struct Probes {
    http: HttpProber,
    /// One Kafka client per set of connection settings, so the daemon's ticks reuse
    /// connections.
    clusters: Mutex<HashMap<String, watchpost_kafka::Cluster>>,
}

impl Probes {
    pub fn new(options: ProberOptions) -> Result<Probes, RequestError> {
        Ok(Probes {
            http: HttpProber::new(options)?,
            clusters: Mutex::new(HashMap::new()),
        })
    }

    fn cluster(&self, settings: &watchpost_kafka::Settings) -> watchpost_kafka::Cluster {
        let key = kafka::cluster_key(settings);
        let mut clusters = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        if !clusters.contains_key(&key) && clusters.len() >= MAX_CLUSTERS {
            clusters.clear();
        }
        clusters
            .entry(key)
            .or_insert_with(|| watchpost_kafka::Cluster::new(settings.clone()))
            .clone()
    }

    /// Run one check of a kind that compares with its previous run
    /// ([`CheckKind::keeps_state`]), given the state its previous run returned (`None`: the
    /// first run, or nothing stored). Returns the observation and the state to store; after a
    /// failed read, `previous` unchanged. Other kinds run as [`run`](Self::run) and return
    /// `None`.
    pub async fn run_with_state(
        &self,
        spec: &CheckSpec,
        previous: Option<serde_json::Value>,
    ) -> (Observation, Option<serde_json::Value>) {
        match spec {
            CheckSpec::KafkaLag(check) => self.kafka_lag(check, previous).await,
            other => (self.run(other).await, None),
        }
    }

    async fn kafka_lag(
        &self,
        check: &kafka::KafkaLagCheck,
        previous: Option<serde_json::Value>,
    ) -> (Observation, Option<serde_json::Value>) {
        let cluster = match &check.source {
            kafka::LagSource::Brokers(settings) => Some(self.cluster(settings)),
            kafka::LagSource::Ckafka(_) => None,
        };
        kafka::run(cluster, check, previous).await
    }

    /// The HTTP prober these probes use (its result has HTTP's own shape).
    pub fn http(&self) -> &HttpProber {
        &self.http
    }

    /// Run one check. Never panics on network input and never outlives the spec's timeout.
    pub async fn run(&self, spec: &CheckSpec) -> Observation {
        let net = self.http.net();
        match spec {
            CheckSpec::Http(request) => Observation::from(self.http.check(request).await),
            CheckSpec::Tcp(check) => tcp::run(net, check).await,
            CheckSpec::Tls(check) => tls::run(net, check).await,
            CheckSpec::Dns(check) => dns::run(net, check).await,
            CheckSpec::KafkaLag(check) => self.kafka_lag(check, None).await.0,
        }
    }
}
