//! One check's outcome, the same shape for every kind: named metrics with units, an error
//! `{phase, kind, message}` when the check could not complete, and the kind's own detail.

use crate::CheckKind;
use crate::error::ProbeError;
use crate::http::HttpResult;
use crate::http::timing::ms;
use crate::kafka::KafkaLagDetail;
use crate::net::tls::TlsInfo;
use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
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
        serde_json::to_value(self.report_view(ok)).unwrap_or(Value::Null)
    }

    /// [`Observation::report`] without building it: serialize it straight to text (the
    /// pipeline does, once per tick).
    pub fn report_view(&self, ok: bool) -> Report<'_> {
        Report {
            observation: self,
            ok,
            url: &self.url,
        }
    }
}

/// The `check --json` document of an observation, borrowed (see [`Observation::report`]).
pub struct Report<'a> {
    observation: &'a Observation,
    ok: bool,
    url: &'a str,
}

impl<'a> Report<'a> {
    /// The same document with `url` in place of the observation's (the target as the config
    /// writes it).
    pub fn with_url(self, url: &'a str) -> Self {
        Report { url, ..self }
    }
}

/// The kind's timings, `null` for a phase not reached.
struct Timings<'a>(&'a Observation);

impl Serialize for Timings<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let names = self.0.kind.timings();
        let mut m = s.serialize_map(Some(names.len()))?;
        for name in names {
            m.serialize_entry(name, &self.0.metric(name).map(|m| m.value))?;
        }
        m.end()
    }
}

impl<'a> Serialize for Report<'a> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.observation;
        let value = |name: &str| o.metric(name).map(|m| m.value);
        // serde writes an address as its text (`127.0.0.1:80`, `[::1]:80`) without allocating.
        let addr = |a: &'a Option<SocketAddr>| a;
        let timings = Timings(o);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("url", self.url)?;
        m.serialize_entry("kind", o.kind.as_str())?;
        m.serialize_entry("ok", &self.ok)?;
        match &o.detail {
            Detail::Http(d) => {
                m.serialize_entry("status", &d.status)?;
                m.serialize_entry("http_version", &d.http_version)?;
                m.serialize_entry("remote_addr", &addr(&d.remote_addr))?;
                m.serialize_entry("redirects", &d.redirects)?;
                m.serialize_entry("timings_ms", &timings)?;
                m.serialize_entry("size_bytes", &d.size)?;
                m.serialize_entry("speed_bytes_per_sec", &value("speed").unwrap_or_default())?;
                m.serialize_entry("headers", &d.headers)?;
                m.serialize_entry("tls", &d.tls.as_ref().map(crate::http::HttpTls::new))?;
            }
            Detail::Tcp {
                remote_addr,
                banner,
            } => {
                m.serialize_entry("remote_addr", &addr(remote_addr))?;
                m.serialize_entry("timings_ms", &timings)?;
                m.serialize_entry("banner", banner)?;
            }
            Detail::Tls { remote_addr, tls } => {
                m.serialize_entry("remote_addr", &addr(remote_addr))?;
                m.serialize_entry("timings_ms", &timings)?;
                m.serialize_entry("tls", tls)?;
            }
            Detail::Dns {
                server,
                rcode,
                answers,
            } => {
                m.serialize_entry("server", &addr(server))?;
                m.serialize_entry("rcode", rcode)?;
                m.serialize_entry("answers", answers)?;
                m.serialize_entry("timings_ms", &timings)?;
            }
            Detail::KafkaLag(d) => {
                m.serialize_entry("group", &d.group)?;
                m.serialize_entry("state", &d.state)?;
                m.serialize_entry("members", &d.members)?;
                m.serialize_entry("lag", &d.lag)?;
                m.serialize_entry("partition_lag", &value("partition_lag"))?;
                m.serialize_entry("status", &d.status)?;
                m.serialize_entry("time_lag_secs", &d.time_lag_secs)?;
                m.serialize_entry("topics", &d.topics)?;
            }
        }
        m.serialize_entry("error", &o.error)?;
        m.end()
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
