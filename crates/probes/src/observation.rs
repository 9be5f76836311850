//! One check's outcome, the same shape for every kind: named metrics with units, an error
//! `{phase, kind, message}` when the check could not complete, and the kind's own detail.

use crate::CheckKind;
use crate::error::ProbeError;
use crate::http::HttpResult;
use crate::http::timing::ms;
use crate::kafka::KafkaLagDetail;
use crate::net::tls::TlsInfo;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use watchpost_conditions::{Actual, Condition, Failure, Subject};
use watchpost_units::{Metric, Unit};

/// Everything one check observed. `error` is `None` when the check completed (whatever it
/// found: judging that is the conditions' job).
#[derive(Debug, Clone)]
pub struct Observation {
    pub kind: CheckKind,
    /// The target, without user info.
    pub url: String,
    /// `dns`, `connect`, ..., `total` (always present), and the kind's numbers (`status`,
    /// `size`, `speed`, `cert_days`). A phase not reached has no metric; the phase a failure
    /// interrupted holds the time spent in it.
    pub metrics: Vec<Metric>,
    pub error: Option<ProbeError>,
    pub detail: Detail,
}

/// What only one kind observes.
#[derive(Debug, Clone)]
pub enum Detail {
    Http(HttpDetail),
    Tcp {
        remote_addr: Option<SocketAddr>,
        /// What the server sent (with `expect`), lossily decoded.
        banner: Option<String>,
    },
    Tls {
        remote_addr: Option<SocketAddr>,
        /// `None` when the handshake did not complete.
        tls: Option<TlsInfo>,
    },
    Dns {
        server: Option<SocketAddr>,
        /// `NOERROR`, `NXDOMAIN`, ...; `None` without a reply.
        rcode: Option<String>,
        /// The answers of the type asked for, as text (`1.2.3.4`, `10 mx.example.com.`).
        answers: Vec<String>,
    },
    /// A consumer group's lag and window status.
    KafkaLag(Box<KafkaLagDetail>),
}

/// An HTTP check's own facts.
#[derive(Debug, Clone)]
pub struct HttpDetail {
    pub status: Option<u16>,
    pub http_version: Option<&'static str>,
    pub remote_addr: Option<SocketAddr>,
    pub redirects: u32,
    /// The URL of the last hop, without user info.
    pub final_url: String,
    pub size: u64,
    /// Lower-case names, repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
    pub tls: Option<TlsInfo>,
}

impl From<HttpResult> for Observation {
    fn from(r: HttpResult) -> Self {
        let t = &r.timings;
        let mut metrics = Vec::new();
        for (name, value) in [
            ("dns", t.dns),
            ("connect", t.connect),
            ("tls", t.tls),
            ("wait", t.wait),
            ("download", t.download),
            ("ttfb", t.ttfb),
            ("total", Some(t.total)),
        ] {
            if let Some(d) = value {
                metrics.push(Metric::new(name, ms(d), Unit::Ms));
            }
        }
        // Size and speed describe a response: without one there is nothing to measure.
        if let Some(status) = r.status {
            metrics.push(Metric::new("status", status.into(), Unit::Count));
            metrics.push(Metric::new("size", r.size_bytes as f64, Unit::Bytes));
            metrics.push(Metric::new(
                "speed",
                r.speed_bytes_per_sec(),
                Unit::BytesPerSec,
            ));
        }
        if let Some(days) = r.tls.as_ref().and_then(|t| t.cert_days_left) {
            metrics.push(Metric::new("cert_days", days, Unit::Days));
        }
        Observation {
            kind: CheckKind::Http,
            url: r.url,
            metrics,
            error: r.error,
            detail: Detail::Http(HttpDetail {
                status: r.status,
                http_version: r.http_version,
                remote_addr: r.remote_addr,
                redirects: r.redirects,
                final_url: r.final_url,
                size: r.size_bytes,
                headers: r.headers,
                body: r.body,
                tls: r.tls,
            }),
        }
    }
}

impl Observation {
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// Whether the check failed for want of a resource on this machine (watchpost's own
    /// failure, not the target's; see `ErrorKind::Local`).
    pub fn is_local(&self) -> bool {
        self.error.as_ref().is_some_and(ProbeError::is_local)
    }

    /// The error as a failed condition: `{operand: "error", op: "", expected: "", actual:
    /// "<phase> <kind>: message", text: the same}`.
    pub fn error_failure(&self) -> Option<Failure> {
        self.error.as_ref().map(|e| {
            let text = e.to_string();
            Failure {
                operand: "error".into(),
                op: String::new(),
                expected: String::new(),
                actual: text.clone(),
                text,
                topic: None,
            }
        })
    }

    /// Judge the check: an error fails it outright (and alone); otherwise every condition
    /// must hold. Empty = passed.
    ///
    /// A `kafka_lag` condition on `lag` holds for each topic on its own: every topic whose
    /// lag breaks it is one failure naming the topic (`lag orders 1523 > 1000`, actual
    /// `1523`). A topic with no committed offset has no lag and is not judged.
    pub fn judge(&self, conditions: &[Condition]) -> Vec<Failure> {
        if let Some(f) = self.error_failure() {
            return vec![f];
        }
        let Detail::KafkaLag(d) = &self.detail else {
            return watchpost_conditions::evaluate(self, conditions);
        };
        let mut failures = Vec::new();
        for c in conditions {
            if c.operand != "lag" {
                failures.extend(c.check(self).err());
                continue;
            }
            for t in &d.topics {
                let Some(lag) = t.lag else { continue };
                if let Err(mut f) = c.check(&TopicLag(lag)) {
                    f.text = match f.text.strip_prefix("lag ") {
                        Some(rest) => format!("lag {} {rest}", t.topic),
                        None => format!("{} ({})", f.text, t.topic),
                    };
                    f.topic = Some(t.topic.clone());
                    failures.push(f);
                }
            }
        }
        failures
    }

    /// The `check --json` document: `{"url", "kind", "ok", ..., "timings_ms": {...,
    /// "total"}, ..., "error"}` with the kind's fields (docs/contracts.md). `ok` is the
    /// caller's verdict.
    pub fn report(&self, ok: bool) -> Value {
        let mut m = Map::new();
        m.insert("url".into(), json!(self.url));
        m.insert("kind".into(), json!(self.kind.as_str()));
        m.insert("ok".into(), json!(ok));
        let value = |name: &str| self.metric(name).map(|m| m.value);
        let timings: Map<String, Value> = self
            .kind
            .timings()
            .iter()
            .map(|name| ((*name).to_string(), json!(value(name))))
            .collect();
        let addr = |a: &Option<SocketAddr>| json!(a.map(|a| a.to_string()));
        match &self.detail {
            Detail::Http(d) => {
                m.insert("status".into(), json!(d.status));
                m.insert("http_version".into(), json!(d.http_version));
                m.insert("remote_addr".into(), addr(&d.remote_addr));
                m.insert("redirects".into(), json!(d.redirects));
                m.insert("timings_ms".into(), Value::Object(timings));
                m.insert("size_bytes".into(), json!(d.size));
                m.insert(
                    "speed_bytes_per_sec".into(),
                    json!(value("speed").unwrap_or_default()),
                );
                m.insert("headers".into(), json!(d.headers));
                m.insert(
                    "tls".into(),
                    json!(d.tls.as_ref().map(crate::http::HttpTls::new)),
                );
            }
            Detail::Tcp {
                remote_addr,
                banner,
            } => {
                m.insert("remote_addr".into(), addr(remote_addr));
                m.insert("timings_ms".into(), Value::Object(timings));
                m.insert("banner".into(), json!(banner));
            }
            Detail::Tls { remote_addr, tls } => {
                m.insert("remote_addr".into(), addr(remote_addr));
                m.insert("timings_ms".into(), Value::Object(timings));
                m.insert("tls".into(), json!(tls));
            }
            Detail::Dns {
                server,
                rcode,
                answers,
            } => {
                m.insert("server".into(), addr(server));
                m.insert("rcode".into(), json!(rcode));
                m.insert("answers".into(), json!(answers));
                m.insert("timings_ms".into(), Value::Object(timings));
            }
            Detail::KafkaLag(d) => {
                m.insert("group".into(), json!(d.group));
                m.insert("state".into(), json!(d.state));
                m.insert("members".into(), json!(d.members));
                m.insert("lag".into(), json!(d.lag));
                m.insert("partition_lag".into(), json!(value("partition_lag")));
                m.insert("status".into(), json!(d.status));
                m.insert("time_lag_secs".into(), json!(d.time_lag_secs));
                m.insert("topics".into(), json!(d.topics));
            }
        }
        m.insert("error".into(), json!(self.error));
        Value::Object(m)
    }
}

/// One topic's lag, as the `lag` operand sees it.
struct TopicLag(i64);

impl Subject for TopicLag {
    fn actual(&self, operand: &str) -> Actual<'_> {
        match operand {
            "lag" => Actual::Number(self.0 as f64),
            _ => Actual::Missing,
        }
    }
}

/// An optional text as an operand's value.
fn text(s: &Option<String>) -> Actual<'_> {
    s.as_deref()
        .map_or(Actual::Missing, |s| Actual::Text(Cow::Borrowed(s)))
}

impl Subject for Observation {
    fn actual(&self, operand: &str) -> Actual<'_> {
        if let Some(m) = self.metric(operand) {
            return match m.unit {
                Unit::Ms => Actual::Duration(m.value),
                Unit::Bytes => Actual::Bytes(m.value),
                Unit::BytesPerSec => Actual::Rate(m.value),
                Unit::Count | Unit::Days => Actual::Number(m.value),
            };
        }
        match (&self.detail, operand) {
            (Detail::Http(d), "body") => Actual::Text(String::from_utf8_lossy(&d.body)),
            (Detail::Http(d), o) => {
                if let Some(name) = o.strip_prefix("header.") {
                    return d
                        .headers
                        .get(&name.to_ascii_lowercase())
                        .map_or(Actual::Missing, |v| Actual::Text(Cow::Borrowed(v.as_str())));
                }
                if let Some(path) = o.strip_prefix("json.") {
                    return crate::http::json_path(&d.body, path);
                }
                Actual::Missing
            }
            (Detail::Tcp { banner, .. }, "banner") => text(banner),
            (Detail::Tls { tls: Some(t), .. }, o) => match o {
                "version" => Actual::Text(Cow::Borrowed(t.version.as_str())),
                "verified" => {
                    Actual::Text(Cow::Borrowed(if t.verified { "true" } else { "false" }))
                }
                "subject" => text(&t.subject),
                "issuer" => text(&t.issuer),
                _ => Actual::Missing,
            },
            (Detail::Dns { rcode, .. }, "rcode") => text(rcode),
            (Detail::Dns { answers, rcode, .. }, "answers") if rcode.is_some() => {
                Actual::List(answers.iter().map(|a| Cow::Borrowed(a.as_str())).collect())
            }
            (Detail::KafkaLag(d), "status") => d
                .status
                .map_or(Actual::Missing, |s| Actual::Text(Cow::Borrowed(s.as_str()))),
            // Judged per topic in `judge`; the group's sum when asked for directly.
            (Detail::KafkaLag(d), "lag") => {
                d.lag.map_or(Actual::Missing, |l| Actual::Number(l as f64))
            }
            _ => Actual::Missing,
        }
    }
}
