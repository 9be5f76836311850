//! Kafka consumer groups: what watchpost judges from the offsets it reads.
//!
//! [`window`] keeps the last few (committed, end, time) samples of every partition a monitor
//! watches and turns them into a status (OK, WARN, STALL, STOP, REWIND) and a lag in seconds.
//! It is pure: no I/O and no clock, so every rule is tested with scripted samples, and its
//! [`window::Window`] is the monitor's probe state, stored with each tick.
//!
//! [`run`] is the `kafka_lag` check: it reads one group's lag (from the brokers, or through
//! the CKafka API), adds the reading to the previous window and reports the lag per topic,
//! the group's sum, the largest partition lag, the time lag and the window's status.

pub mod window;

use crate::error::{ErrorKind, Phase, ProbeError};
use crate::{CheckKind, Detail, Observation};
use serde::Serialize;
use std::time::Duration;
use watchpost_kafka::ckafka::{CkafkaError, CkafkaSource};
use watchpost_kafka::{Cluster, GroupLag, KafkaError, Settings};
use watchpost_units::{Metric, Unit};
use window::{PartitionSample, Window, WindowParams, WindowStatus};

/// Where a `kafka_lag` check reads the group's offsets.
#[derive(Debug, Clone)]
pub enum LagSource {
    /// From the brokers themselves.
    Brokers(Settings),
    /// Through Tencent Cloud's CKafka API (no group state or members).
    Ckafka(CkafkaSource),
}

/// One `kafka_lag` check: a consumer group's lag, judged over a window of ticks.
#[derive(Debug, Clone)]
pub struct KafkaLagCheck {
    pub source: LagSource,
    pub group: String,
    /// `None`: every topic the group commits to.
    pub topics: Option<Vec<String>>,
    pub window: WindowParams,
    pub timeout: Duration,
}

impl KafkaLagCheck {
    /// `kafka://HOST:PORT[,HOST:PORT]/GROUP` or `ckafka://INSTANCE/GROUP`.
    pub fn target_url(&self) -> String {
        match &self.source {
            LagSource::Brokers(s) => format!("kafka://{}/{}", s.bootstrap.join(","), self.group),
            LagSource::Ckafka(c) => format!("ckafka://{}/{}", c.instance_id, self.group),
        }
    }
}

/// A `kafka_lag` check's own facts (the `check --json` fields of the kind).
#[derive(Debug, Clone, Serialize)]
pub struct KafkaLagDetail {
    pub group: String,
    /// The group's state as the coordinator says (`Stable`, `Empty`, ...; `Unknown` via CKafka).
    pub state: Option<String>,
    pub members: Option<usize>,
    /// The sum of the known lag of its topics.
    pub lag: Option<i64>,
    /// The window's status of the group (the worst of its partitions).
    pub status: Option<WindowStatus>,
    pub time_lag_secs: Option<f64>,
    pub topics: Vec<TopicDetail>,
}

/// One topic of the group.
#[derive(Debug, Clone, Serialize)]
pub struct TopicDetail {
    pub topic: String,
    /// The sum of its partitions' known lag; `None` when no partition has a commit.
    pub lag: Option<i64>,
    pub status: WindowStatus,
    pub time_lag_secs: Option<f64>,
}

impl KafkaLagDetail {
    fn empty(group: &str) -> KafkaLagDetail {
        KafkaLagDetail {
            group: group.to_string(),
            state: None,
            members: None,
            lag: None,
            status: None,
            time_lag_secs: None,
            topics: Vec::new(),
        }
    }
}

fn kafka_error(e: &KafkaError) -> ProbeError {
    let (phase, kind) = match e {
        KafkaError::Unreachable { .. } => (Phase::Connect, ErrorKind::Unreachable),
        KafkaError::Tls { .. } => (Phase::Tls, ErrorKind::Handshake),
        KafkaError::Timeout { .. } => (Phase::Query, ErrorKind::Timeout),
        KafkaError::NotKafka { .. } => (Phase::Query, ErrorKind::Malformed),
        KafkaError::Io { .. } => (Phase::Query, ErrorKind::Io),
        _ => (Phase::Query, ErrorKind::Mismatch),
    };
    ProbeError::new(phase, kind, e.to_string())
}

fn ckafka_error(e: &CkafkaError) -> ProbeError {
    let kind = match e {
        CkafkaError::Timeout => ErrorKind::Timeout,
        CkafkaError::Network(_) => ErrorKind::Io,
        CkafkaError::Malformed(_) => ErrorKind::Malformed,
        CkafkaError::Http { .. } | CkafkaError::Api { .. } => ErrorKind::Mismatch,
    };
    ProbeError::new(Phase::Query, kind, e.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Read the group's lag on `cluster` (or through CKafka), add it to `previous` (the stored
/// window document) and judge it. Returns the observation and the window to store: on a
/// failed read, `previous` unchanged.
pub(crate) async fn run(
    cluster: Option<Cluster>,
    check: &KafkaLagCheck,
    previous: Option<serde_json::Value>,
) -> (Observation, Option<serde_json::Value>) {
    let deadline = tokio::time::Instant::now() + check.timeout;
    let groups = [check.group.clone()];
    let read: Result<GroupLag, ProbeError> = match (&check.source, cluster) {
        (LagSource::Brokers(_), Some(cluster)) => {
            let report = tokio::time::timeout_at(
                deadline,
                watchpost_kafka::lag(&cluster, Some(&groups), check.topics.as_deref(), deadline),
            )
            .await;
            match report {
                Err(_) => Err(ProbeError::new(
                    Phase::Query,
                    ErrorKind::Timeout,
                    "no answer from Kafka before the deadline",
                )),
                Ok(Err(e)) => Err(kafka_error(&e)),
                Ok(Ok(mut r)) => group_of(&mut r.groups, &check.group),
            }
        }
        (LagSource::Ckafka(source), _) => {
            let report = tokio::time::timeout_at(
                deadline,
                watchpost_kafka::ckafka::ckafka_lag(
                    source,
                    &check.group,
                    check.topics.as_deref(),
                    deadline,
                ),
            )
            .await;
            match report {
                Err(_) => Err(ckafka_error(&CkafkaError::Timeout)),
                Ok(Err(e)) => Err(ckafka_error(&e)),
                Ok(Ok(mut r)) => group_of(&mut r.groups, &check.group),
            }
        }
        (LagSource::Brokers(_), None) => Err(ProbeError::new(
            Phase::Query,
            ErrorKind::Io,
            "no Kafka client for these settings",
        )),
    };
    let url = check.target_url();
    let group = match read {
        Ok(g) => g,
        Err(error) => {
            let observation = Observation {
                kind: CheckKind::KafkaLag,
                url,
                metrics: Vec::new(),
                error: Some(error),
                detail: Detail::KafkaLag(Box::new(KafkaLagDetail::empty(&check.group))),
            };
            return (observation, previous);
        }
    };

    let samples: Vec<PartitionSample> = group
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| PartitionSample {
                group: group.group.clone(),
                topic: t.topic.clone(),
                partition: p.partition,
                committed: p.committed,
                end: p.end,
            })
        })
        .collect();
    // A stored window this version can't read starts afresh.
    let previous_window = previous.as_ref().and_then(|v| Window::from_json(v).ok());
    let (window, evaluation) = window::evaluate(previous_window, &samples, now_ms(), &check.window);
    let g_eval = evaluation.group(&group.group);

    let mut metrics = Vec::new();
    if let Some(lag) = group.lag {
        metrics.push(Metric::new("group_lag", lag as f64, Unit::Count));
    }
    if let Some(max) = group.max_partition_lag() {
        metrics.push(Metric::new("partition_lag", max as f64, Unit::Count));
    }
    let time_lag = g_eval.and_then(|g| g.time_lag_secs);
    if let Some(secs) = time_lag {
        metrics.push(Metric::new("time_lag", secs * 1000.0, Unit::Ms));
    }
    let ckafka = matches!(check.source, LagSource::Ckafka(_));
    if !ckafka {
        metrics.push(Metric::new("members", group.members as f64, Unit::Count));
    }
    let topics = group
        .topics
        .iter()
        .map(|t| {
            let te = g_eval.and_then(|g| g.topic(&t.topic));
            TopicDetail {
                topic: t.topic.clone(),
                lag: t.lag,
                status: te.map_or(WindowStatus::Unknown, |te| te.status),
                time_lag_secs: te.and_then(|te| te.time_lag_secs),
            }
        })
        .collect();
    let detail = KafkaLagDetail {
        group: group.group.clone(),
        state: Some(group.state.clone()),
        members: (!ckafka).then_some(group.members),
        lag: group.lag,
        status: Some(g_eval.map_or(WindowStatus::Unknown, |g| g.status)),
        time_lag_secs: time_lag,
        topics,
    };
    let observation = Observation {
        kind: CheckKind::KafkaLag,
        url,
        metrics,
        error: None,
        detail: Detail::KafkaLag(Box::new(detail)),
    };
    (observation, Some(window.to_json()))
}

/// The group's entry of a report, or its error.
fn group_of(groups: &mut Vec<GroupLag>, name: &str) -> Result<GroupLag, ProbeError> {
    let Some(i) = groups.iter().position(|g| g.group == name) else {
        return Err(ProbeError::new(
            Phase::Query,
            ErrorKind::Mismatch,
            format!("consumer group {name:?} is not in the answer"),
        ));
    };
    let g = groups.swap_remove(i);
    match &g.error {
        Some(e) => Err(ProbeError::new(
            Phase::Query,
            ErrorKind::Mismatch,
            e.clone(),
        )),
        None => Ok(g),
    }
}

/// The key under which [`crate::Probes`] keeps one [`Cluster`] per set of settings.
pub(crate) fn cluster_key(s: &Settings) -> String {
    let mut key = s.bootstrap.join(",");
    key.push('\u{0}');
    key.push_str(&s.client_id);
    if let Some(tls) = &s.tls {
        key.push_str(&format!(
            "\u{0}tls:{}:{}",
            tls.id,
            tls.server_name.as_deref().unwrap_or("")
        ));
    }
    if let Some(sasl) = &s.sasl {
        key.push_str(&format!(
            "\u{0}sasl:{}:{}:{}",
            sasl.mechanism.name(),
            sasl.username,
            sasl.password
        ));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::cluster_key;
    use std::sync::Arc;
    use watchpost_kafka::{Settings, Tls};

    fn with_tls(id: &str) -> Settings {
        let mut s = Settings::new(vec!["127.0.0.1:9092".into()]);
        // A config built anew each time (as each reload builds one): only the id counts.
        s.tls = Some(Tls {
            config: Arc::new(watchpost_net::insecure_config(&[])),
            server_name: None,
            id: id.into(),
        });
        s
    }

    #[test]
    fn equal_settings_share_a_cluster_and_different_ones_do_not() {
        assert_eq!(
            cluster_key(&with_tls("verified")),
            cluster_key(&with_tls("verified"))
        );
        assert_ne!(
            cluster_key(&with_tls("verified")),
            cluster_key(&with_tls("insecure"))
        );
        let plain = Settings::new(vec!["127.0.0.1:9092".into()]);
        assert_ne!(cluster_key(&plain), cluster_key(&with_tls("verified")));
        let mut other = plain.clone();
        other.bootstrap = vec!["127.0.0.1:9093".into()];
        assert_ne!(cluster_key(&plain), cluster_key(&other));
    }
}
