//! The YAML shape, as serde sees it: every field the user can write, with spans where
//! validation needs to point at a value. Nothing here is checked beyond its type.

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_saphyr::Spanned;

pub type S<T> = Spanned<T>;

/// A mapping in file order with each key's position, for mappings whose keys are names the
/// user chose (channels, locations, headers): errors about a name point at the name. Duplicate
/// keys are refused by the YAML reader before this sees them.
#[derive(Debug)]
pub struct Keyed<V>(pub Vec<(S<String>, V)>);

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Keyed(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Keyed<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyedVisitor<V>(std::marker::PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for KeyedVisitor<V> {
            type Value = Keyed<V>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of names to settings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keyed<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<S<String>, V>()? {
                    entries.push(entry);
                }
                Ok(Keyed(entries))
            }
        }

        deserializer.deserialize_map(KeyedVisitor(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub timezone: Option<S<String>>,
    pub storage: Option<S<String>>,
    pub locale: Option<S<String>>,
    pub retention: Option<S<RawRetention>>,
    pub concurrency: Option<S<u32>>,
    pub delivery: Option<RawDelivery>,
    #[serde(default)]
    pub channels: Keyed<S<serde_json::Value>>,
    #[serde(default)]
    pub locations: Keyed<RawLocation>,
    #[serde(default)]
    pub monitors: Vec<RawMonitor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    /// Give a notification up (keeping it, with its last error) after retrying this long.
    pub max_age: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocation {
    pub region: Option<String>,
    pub isp: Option<String>,
    pub token: Option<S<String>>,
    /// How long the location may go without a report before its own alert.
    pub silent_after: Option<S<String>>,
    /// Where that alert goes (default: every channel of the location's monitors).
    pub channels: Option<Vec<S<String>>>,
}

/// The monitor kinds (`type:`): a closed set. Each kind takes its own settings (see
/// [`MonitorKind::settings`]); the settings of another kind are refused in validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorKind {
    Http,
    Tcp,
    Tls,
    Dns,
    KafkaLag,
}

impl MonitorKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [MonitorKind; 5] = [
        MonitorKind::Http,
        MonitorKind::Tcp,
        MonitorKind::Tls,
        MonitorKind::Dns,
        MonitorKind::KafkaLag,
    ];

    /// As written in `type:`.
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorKind::Http => "http",
            MonitorKind::Tcp => "tcp",
            MonitorKind::Tls => "tls",
            MonitorKind::Dns => "dns",
            MonitorKind::KafkaLag => "kafka_lag",
        }
    }

    /// The monitor keys that belong to this kind; every other kind-specific key is an error on
    /// a monitor of this kind. The keys of every kind (`name`, `type`, `schedule`, `every`,
    /// `timeout`, `locations`, `conditions`, `alert`, `maintenance`) are not listed.
    pub fn settings(self) -> &'static [&'static str] {
        match self {
            MonitorKind::Http => &[
                "url",
                "method",
                "headers",
                "body",
                "insecure",
                "follow_redirects",
                "max_body",
            ],
            MonitorKind::Tcp => &["address", "send", "expect"],
            MonitorKind::Tls => &["address", "sni", "insecure"],
            MonitorKind::Dns => &["query", "record", "server"],
            MonitorKind::KafkaLag => &[
                "bootstrap",
                "group",
                "topics",
                "sasl",
                "tls",
                "source",
                "ckafka",
                "window",
            ],
        }
    }
}

/// A monitor as written. The YAML stays flat: the settings of every kind are fields here, and
/// validation refuses those that don't belong to the monitor's `type:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    pub name: S<String>,
    #[serde(rename = "type")]
    pub kind: S<MonitorKind>,
    // http
    pub url: Option<S<String>>,
    pub method: Option<S<String>>,
    pub headers: Option<S<Keyed<S<String>>>>,
    pub body: Option<S<String>>,
    pub insecure: Option<S<bool>>,
    pub follow_redirects: Option<S<bool>>,
    pub max_body: Option<S<String>>,
    // tcp, tls
    pub address: Option<S<String>>,
    // tcp
    pub send: Option<S<String>>,
    pub expect: Option<S<String>>,
    // tls
    pub sni: Option<S<String>>,
    // dns
    pub query: Option<S<String>>,
    pub record: Option<S<String>>,
    pub server: Option<S<String>>,
    // kafka_lag
    pub bootstrap: Option<S<OneOrMany>>,
    pub group: Option<S<String>>,
    pub topics: Option<S<Vec<S<String>>>>,
    pub sasl: Option<S<RawSasl>>,
    pub tls: Option<S<RawKafkaTls>>,
    pub source: Option<S<String>>,
    pub ckafka: Option<S<RawCkafka>>,
    pub window: Option<S<RawWindow>>,
    // every kind
    pub schedule: Option<S<String>>,
    pub every: Option<S<String>>,
    pub timeout: Option<S<String>>,
    #[serde(default)]
    pub locations: Vec<S<String>>,
    #[serde(default)]
    pub conditions: Vec<S<String>>,
    pub alert: Option<RawAlert>,
    #[serde(default)]
    pub maintenance: Vec<RawMaintenance>,
}

impl RawMonitor {
    /// The kind-specific keys written on this monitor, each with the position of its value
    /// (validation prefers the key's own position, see [`MonitorKeys`]).
    pub fn settings_written(&self) -> Vec<(&'static str, (u64, u64))> {
        fn at<T>(s: &S<T>) -> (u64, u64) {
            (s.referenced.line(), s.referenced.column())
        }
        let mut out = Vec::new();
        let mut add = |key: &'static str, position: Option<(u64, u64)>| {
            if let Some(p) = position {
                out.push((key, p));
            }
        };
        add("url", self.url.as_ref().map(at));
        add("method", self.method.as_ref().map(at));
        add("headers", self.headers.as_ref().map(at));
        add("body", self.body.as_ref().map(at));
        add("insecure", self.insecure.as_ref().map(at));
        add("follow_redirects", self.follow_redirects.as_ref().map(at));
        add("max_body", self.max_body.as_ref().map(at));
        add("address", self.address.as_ref().map(at));
        add("send", self.send.as_ref().map(at));
        add("expect", self.expect.as_ref().map(at));
        add("sni", self.sni.as_ref().map(at));
        add("query", self.query.as_ref().map(at));
        add("record", self.record.as_ref().map(at));
        add("server", self.server.as_ref().map(at));
        add("bootstrap", self.bootstrap.as_ref().map(at));
        add("group", self.group.as_ref().map(at));
        add("topics", self.topics.as_ref().map(at));
        add("sasl", self.sasl.as_ref().map(at));
        add("tls", self.tls.as_ref().map(at));
        add("source", self.source.as_ref().map(at));
        add("ckafka", self.ckafka.as_ref().map(at));
        add("window", self.window.as_ref().map(at));
        out
    }
}

/// `bootstrap: HOST:PORT` or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// `sasl: {mechanism, username, password}` of a `kafka_lag` monitor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSasl {
    pub mechanism: S<String>,
    pub username: S<String>,
    pub password: S<String>,
}

/// `retention: 7d` (full results) or `retention: {raw: 7d, minutes: 30d, hours: 400d}`.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "read once per config load; boxing would only add noise"
)]
pub enum RawRetention {
    Raw(String),
    Each {
        raw: Option<S<String>>,
        minutes: Option<S<String>>,
        hours: Option<S<String>>,
    },
}

impl<'de> Deserialize<'de> for RawRetention {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Visitor};
        struct Retention;
        impl<'de> Visitor<'de> for Retention {
            type Value = RawRetention;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as 7d, or {raw: 7d, minutes: 30d, hours: 400d}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRetention, E> {
                Ok(RawRetention::Raw(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawRetention, A::Error> {
                let (mut raw, mut minutes, mut hours) = (None, None, None);
                while let Some(key) = m.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "raw" => &mut raw,
                        "minutes" => &mut minutes,
                        "hours" => &mut hours,
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["raw", "minutes", "hours"],
                            ));
                        }
                    };
                    *slot = Some(m.next_value::<S<String>>()?);
                }
                Ok(RawRetention::Each {
                    raw,
                    minutes,
                    hours,
                })
            }
        }
        d.deserialize_any(Retention)
    }
}

/// `tls: true` or `tls: {ca_file, insecure}` of a `kafka_lag` monitor.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawKafkaTls {
    On(bool),
    Settings(RawKafkaTlsSettings),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafkaTlsSettings {
    pub ca_file: Option<String>,
    pub insecure: Option<bool>,
}

/// `ckafka: {instance_id, region, secret_id, secret_key, endpoint}` (with `source: ckafka`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCkafka {
    pub instance_id: S<String>,
    pub region: S<String>,
    pub secret_id: S<String>,
    pub secret_key: S<String>,
    pub endpoint: Option<S<String>>,
}

/// `window: {samples, min_samples, min_distance, allowed_lag}` of a `kafka_lag` monitor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub samples: Option<S<u32>>,
    pub min_samples: Option<S<u32>>,
    pub min_distance: Option<S<String>>,
    pub allowed_lag: Option<S<i64>>,
}

/// Where each monitor's keys are written: the same file read a second time, keeping only the
/// keys of each monitor with their positions, so an error about a key points at the key.
#[derive(Debug, Deserialize)]
pub struct MonitorKeys {
    #[serde(default)]
    pub monitors: Vec<Keyed<serde::de::IgnoredAny>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    #[serde(default)]
    pub channels: Vec<S<String>>,
    pub failure_threshold: Option<S<u32>>,
    pub success_threshold: Option<S<u32>>,
    pub send_resolved: Option<bool>,
    pub repeat: Option<S<String>>,
    pub quorum: Option<S<RawQuorum>>,
}

/// `quorum: 2` or `quorum: 50%` (of the monitor's locations, rounded up).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawQuorum {
    Count(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    pub start: S<String>,
    pub duration: S<String>,
    pub timezone: Option<S<String>>,
}
