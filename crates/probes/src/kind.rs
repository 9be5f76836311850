//! The closed set of check kinds, what each accepts as a target, and the operands its
//! conditions may name.

use crate::dns::{DnsCheck, RecordType};
use crate::http::HttpRequest;
use crate::kafka::KafkaLagCheck;
use crate::tcp::TcpCheck;
use crate::tls::TlsCheck;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;
use url::Url;
use watchpost_conditions::{Condition, Family, OperandKind, Operands};

/// Every kind of check watchpost can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckKind {
    Http,
    Tcp,
    Tls,
    Dns,
    KafkaLag,
}

use OperandKind::{Bytes, Duration as Dur, Number, Rate, Text};

static HTTP: Operands = Operands::new(
    &[
        ("status", Number),
        ("dns", Dur),
        ("connect", Dur),
        ("tls", Dur),
        ("wait", Dur),
        ("download", Dur),
        ("ttfb", Dur),
        ("total", Dur),
        ("size", Bytes),
        ("speed", Rate),
        ("body", Text),
        ("cert_days", Number),
    ],
    &[
        Family {
            prefix: "header.",
            shown: "header.NAME",
            kind: Text,
        },
        Family {
            prefix: "json.",
            shown: "json.PATH",
            kind: Text,
        },
    ],
);

static TCP: Operands = Operands::new(
    &[
        ("dns", Dur),
        ("connect", Dur),
        ("total", Dur),
        ("banner", Text),
    ],
    &[],
);

static TLS: Operands = Operands::new(
    &[
        ("dns", Dur),
        ("connect", Dur),
        ("tls", Dur),
        ("total", Dur),
        ("cert_days", Number),
        ("version", Text),
        ("verified", Text),
        ("subject", Text),
        ("issuer", Text),
    ],
    &[],
);

static DNS: Operands = Operands::new(
    &[
        ("query", Dur),
        ("total", Dur),
        ("rcode", Text),
        ("answers", Text),
    ],
    &[],
);

static KAFKA_LAG: Operands = Operands::new(
    &[
        ("lag", Number),
        ("group_lag", Number),
        ("partition_lag", Number),
        ("time_lag", Dur),
        ("status", Text),
        ("members", Number),
    ],
    &[],
);

impl CheckKind {
    pub const ALL: [CheckKind; 5] = [
        CheckKind::Http,
        CheckKind::Tcp,
        CheckKind::Tls,
        CheckKind::Dns,
        CheckKind::KafkaLag,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Tcp => "tcp",
            CheckKind::Tls => "tls",
            CheckKind::Dns => "dns",
            CheckKind::KafkaLag => "kafka_lag",
        }
    }

    /// The operands conditions on this kind may name.
    pub fn operands(self) -> &'static Operands {
        match self {
            CheckKind::Http => &HTTP,
            CheckKind::Tcp => &TCP,
            CheckKind::Tls => &TLS,
            CheckKind::Dns => &DNS,
            CheckKind::KafkaLag => &KAFKA_LAG,
        }
    }

    /// The conditions that apply unless a condition names their operand: HTTP status 200-399,
    /// DNS `rcode == "NOERROR"`.
    pub fn default_conditions(self) -> &'static [&'static str] {
        match self {
            CheckKind::Http => &["status >= 200", "status <= 399"],
            CheckKind::Dns => &["rcode == \"NOERROR\""],
            CheckKind::Tcp | CheckKind::Tls | CheckKind::KafkaLag => &[],
        }
    }

    /// Whether the kind's checks compare with their previous run: the engine hands them the
    /// stored probe state and stores the one they return (`Probes::run_with_state`).
    pub fn keeps_state(self) -> bool {
        matches!(self, CheckKind::KafkaLag)
    }

    /// `conditions` with this kind's defaults in front (see
    /// `watchpost_conditions::with_defaults`).
    pub fn with_defaults(self, conditions: Vec<Condition>) -> Vec<Condition> {
        let defaults: Vec<Condition> = self
            .default_conditions()
            .iter()
            .filter_map(|text| Condition::parse(text, self.operands()).ok())
            .collect();
        watchpost_conditions::with_defaults(conditions, &defaults)
    }

    /// The metrics shown as table columns in messages, in order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            CheckKind::Http => &[
                "status", "dns", "connect", "tls", "wait", "download", "total",
            ],
            CheckKind::Tcp => &["dns", "connect", "total"],
            CheckKind::Tls => &["connect", "tls", "total", "cert_days"],
            CheckKind::Dns => &["query", "total"],
            CheckKind::KafkaLag => &["group_lag", "partition_lag", "time_lag"],
        }
    }

    /// The keys of `timings_ms` in `check --json`, in order.
    pub(crate) fn timings(self) -> &'static [&'static str] {
        match self {
            CheckKind::Http => &["dns", "connect", "tls", "wait", "download", "ttfb", "total"],
            CheckKind::Tcp => &["dns", "connect", "total"],
            CheckKind::Tls => &["dns", "connect", "tls", "total"],
            CheckKind::Dns => &["query", "total"],
            CheckKind::KafkaLag => &[],
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CheckKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        CheckKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown check kind {s:?} (use http, tcp, tls, dns or kafka_lag)")
            })
    }
}

/// What to check, by kind.
// Built once per monitor and borrowed by every run: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum CheckSpec {
    Http(HttpRequest),
    Tcp(TcpCheck),
    Tls(TlsCheck),
    Dns(DnsCheck),
    KafkaLag(KafkaLagCheck),
}

/// How long a check may take when the target doesn't say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl CheckSpec {
    pub fn kind(&self) -> CheckKind {
        match self {
            CheckSpec::Http(_) => CheckKind::Http,
            CheckSpec::Tcp(_) => CheckKind::Tcp,
            CheckSpec::Tls(_) => CheckKind::Tls,
            CheckSpec::Dns(_) => CheckKind::Dns,
            CheckSpec::KafkaLag(_) => CheckKind::KafkaLag,
        }
    }

    /// The whole check's deadline.
    pub fn timeout(&self) -> Duration {
        match self {
            CheckSpec::Http(r) => r.timeouts.total,
            CheckSpec::Tcp(c) => c.timeout,
            CheckSpec::Tls(c) => c.timeout,
            CheckSpec::Dns(c) => c.timeout,
            CheckSpec::KafkaLag(c) => c.timeout,
        }
    }

    pub fn set_timeout(&mut self, total: Duration) {
        match self {
            CheckSpec::Http(r) => r.timeouts.total = total,
            CheckSpec::Tcp(c) => c.timeout = total,
            CheckSpec::Tls(c) => c.timeout = total,
            CheckSpec::Dns(c) => c.timeout = total,
            CheckSpec::KafkaLag(c) => c.timeout = total,
        }
    }

    /// The target as a URL, never with user info: `https://host/path`, `tcp://host:port`,
    /// `tls://host:port`, `dns://name?type=A`, `kafka://host:port/group`.
    pub fn target_url(&self) -> String {
        match self {
            CheckSpec::Http(r) => {
                let mut url = r.url.clone();
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.to_string()
            }
            CheckSpec::Tcp(c) => c.target_url(),
            CheckSpec::Tls(c) => c.target_url(),
            CheckSpec::Dns(c) => c.target_url(),
            CheckSpec::KafkaLag(c) => c.target_url(),
        }
    }

    /// A target as `watchpost check` takes it: `http(s)://...` (a GET), `tcp://HOST:PORT`,
    /// `tls://HOST:PORT[?sni=NAME]`, `dns://NAME[?type=A][&server=IP[:PORT]]`. The error
    /// says what is wrong, in one line.
    pub fn parse_target(text: &str) -> Result<CheckSpec, String> {
        let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http" | "https") => HttpRequest::get(text)
                .map(CheckSpec::Http)
                .map_err(|e| e.to_string()),
            Some("tcp") => {
                let (url, host, port) = host_and_port(text)?;
                no_query(text, &url, &[])?;
                Ok(CheckSpec::Tcp(TcpCheck {
                    host,
                    port,
                    send: None,
                    expect: None,
                    timeout: DEFAULT_TIMEOUT,
                }))
            }
            Some("tls") => {
                let (url, host, port) = host_and_port(text)?;
                no_query(text, &url, &["sni"])?;
                let sni = url
                    .query_pairs()
                    .find(|(k, _)| k == "sni")
                    .map(|(_, v)| v.into_owned())
                    .filter(|v| !v.is_empty());
                Ok(CheckSpec::Tls(TlsCheck {
                    host,
                    port,
                    sni,
                    insecure: false,
                    timeout: DEFAULT_TIMEOUT,
                }))
            }
            Some("dns") => {
                let url = Url::parse(text).map_err(|e| bad(text, e.to_string()))?;
                let name = url
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| bad(text, "no name to look up (dns://NAME?type=A)".into()))?
                    .to_ascii_lowercase();
                if url.port().is_some() || !matches!(url.path(), "" | "/") {
                    return Err(bad(
                        text,
                        "write the name alone: dns://NAME?type=A&server=IP:PORT".into(),
                    ));
                }
                no_query(text, &url, &["type", "server"])?;
                let mut record = RecordType::A;
                let mut server = None;
                for (k, v) in url.query_pairs() {
                    match k.as_ref() {
                        "type" => record = v.parse().map_err(|e| bad(text, e))?,
                        _ => server = Some(parse_server(&v).map_err(|e| bad(text, e))?),
                    }
                }
                Ok(CheckSpec::Dns(DnsCheck {
                    name,
                    record,
                    server,
                    timeout: DEFAULT_TIMEOUT,
                }))
            }
            Some(other) => Err(format!(
                "unsupported target scheme {other:?} (use http, https, tcp, tls or dns)"
            )),
            None => Err(format!(
                "invalid target {text:?}: expected http(s)://..., tcp://HOST:PORT, \
                 tls://HOST:PORT or dns://NAME?type=A"
            )),
        }
    }
}

fn bad(text: &str, reason: String) -> String {
    format!("invalid target {text:?}: {reason}")
}

/// `tcp://HOST:PORT` / `tls://HOST:PORT`: both required, nothing else but a query.
fn host_and_port(text: &str) -> Result<(Url, String, u16), String> {
    let url = Url::parse(text).map_err(|e| bad(text, e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(text, "no user info here: write HOST:PORT".into()));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad(text, "no host (write HOST:PORT)".into()))?;
    let port = url
        .port()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(text, "a port is required (write HOST:PORT)".into()))?;
    if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
        return Err(bad(text, "write HOST:PORT only, without a path".into()));
    }
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((url, host, port))
}

/// Only the `allowed` query keys.
fn no_query(text: &str, url: &Url, allowed: &[&str]) -> Result<(), String> {
    for (k, _) in url.query_pairs() {
        if !allowed.contains(&k.as_ref()) {
            return Err(bad(
                text,
                if allowed.is_empty() {
                    format!("unknown parameter {k:?} (none are taken)")
                } else {
                    format!("unknown parameter {k:?} (use {})", allowed.join(", "))
                },
            ));
        }
    }
    Ok(())
}

/// `IP:PORT`, `[v6]:PORT`, or an IP alone (port 53).
fn parse_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("server {text:?} is not IP:PORT"))
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_per_kind() {
        let CheckSpec::Tcp(tcp) = CheckSpec::parse_target("tcp://127.0.0.1:6379").unwrap() else {
            panic!("tcp")
        };
        assert_eq!((tcp.host.as_str(), tcp.port), ("127.0.0.1", 6379));
        let CheckSpec::Tls(tls) = CheckSpec::parse_target("tls://[::1]:465?sni=mail.test").unwrap()
        else {
            panic!("tls")
        };
        assert_eq!((tls.host.as_str(), tls.port), ("::1", 465));
        assert_eq!(tls.sni.as_deref(), Some("mail.test"));
        assert_eq!(tls.target_url(), "tls://[::1]:465?sni=mail.test");
        let spec =
            CheckSpec::parse_target("dns://Example.com?type=mx&server=127.0.0.1:5353").unwrap();
        assert_eq!(spec.kind(), CheckKind::Dns);
        assert_eq!(
            spec.target_url(),
            "dns://example.com?type=MX&server=127.0.0.1:5353"
        );
        let CheckSpec::Dns(dns) = CheckSpec::parse_target("dns://a.test?server=10.0.0.1").unwrap()
        else {
            panic!("dns")
        };
        assert_eq!(dns.record, RecordType::A);
        assert_eq!(dns.server, Some("10.0.0.1:53".parse().unwrap()));
        assert_eq!(
            CheckSpec::parse_target("https://u:p@h.test/x")
                .unwrap()
                .target_url(),
            "https://h.test/x"
        );
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        for (text, needle) in [
            ("tcp://127.0.0.1", "a port is required"),
            ("tcp://127.0.0.1:80/path", "without a path"),
            ("tcp://127.0.0.1:80?x=1", "unknown parameter \"x\""),
            ("tls://h.test:443?snl=a", "use sni"),
            ("dns://a.test?type=SRV", "unknown record type"),
            ("dns://a.test?server=nope", "is not IP:PORT"),
            ("dns://?type=A", "no name"),
            ("ftp://h.test/", "unsupported target scheme \"ftp\""),
            ("nonsense", "expected http(s)"),
            ("tcp://u:p@h.test:1", "no user info"),
        ] {
            let e = CheckSpec::parse_target(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn every_default_condition_parses_for_its_kind() {
        for kind in CheckKind::ALL {
            assert_eq!(
                kind.with_defaults(Vec::new()).len(),
                kind.default_conditions().len(),
                "{kind}"
            );
            assert_eq!(kind.as_str().parse::<CheckKind>(), Ok(kind));
            for column in kind.columns() {
                assert!(kind.operands().kind_of(column).is_some(), "{kind} {column}");
            }
        }
    }
}
