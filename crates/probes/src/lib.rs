//! Probes: the code that goes out and looks at something (a web page, a TCP port, a TLS
//! certificate, a DNS record) and reports what it saw as an [`Observation`]. Probes never
//! touch the store and never alert; they measure and classify.
//!
//! One module per check kind ([`http`], [`tcp`], [`tls`], [`dns`]); `net` is what they share
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
pub use observation::{Detail, HttpDetail, Observation};

use http::HttpProber;

/// Runs checks of every kind. Built once (TLS configs, DNS setup) and shared (`&self`).
pub struct Probes {
    http: HttpProber,
}

impl Probes {
    pub fn new(options: ProberOptions) -> Result<Probes, RequestError> {
        Ok(Probes {
            http: HttpProber::new(options)?,
        })
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
        }
    }
}
