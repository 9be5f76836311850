//! Kind-specific monitor settings. The YAML is flat (`url:` and `address:` sit beside
//! `schedule:`), and each `type:` takes its own keys ([`MonitorKind::settings`]): a key of
//! another kind is an error at the key, naming the kind it belongs to and what this kind
//! takes. Each kind's settings are validated into [`CheckSettings`], with the target people
//! see ([`crate::Monitor::target`]: as written, `${VAR}` names and all).
//!
//! Two functions here are where the monitor's kind meets the probes and the conditions:
//! [`probe_check`] builds the probes' `CheckSpec`, [`conditions`] parses conditions against
//! the kind's operands (`CheckKind::operands`).

use crate::CheckSettings;
use crate::error::Report;
use crate::raw::{Keyed, MonitorKind, RawMonitor, S};
use crate::validate::{
    escaped, escaped_char, header_line_problem, http_url_problem, pos, scalar_column,
    without_userinfo,
};
use serde::de::IgnoredAny;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use watchpost_conditions::Condition;
use watchpost_probes::dns::{DnsCheck, RecordType};
use watchpost_probes::http::HttpRequest;
use watchpost_probes::tcp::TcpCheck;
use watchpost_probes::tls::TlsCheck;
use watchpost_probes::{CheckKind, CheckSpec};

/// The DNS record types a `dns` monitor can query (`record:`, case-insensitive).
pub const DNS_RECORDS: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "NS"];

/// The longest host name accepted, in bytes of its ASCII form (without a trailing dot).
const MAX_HOST_NAME: usize = 253;

/// The longest label of a host name, in bytes of its ASCII form.
const MAX_LABEL: usize = 63;

fn article(kind: MonitorKind) -> &'static str {
    match kind {
        MonitorKind::Http => "an",
        MonitorKind::Tcp | MonitorKind::Tls | MonitorKind::Dns | MonitorKind::KafkaLag => "a",
    }
}

/// `url: is an http setting; a tcp monitor takes address, send, expect`.
fn foreign_key_message(key: &str, kind: MonitorKind) -> String {
    let owners: Vec<MonitorKind> = MonitorKind::ALL
        .into_iter()
        .filter(|k| k.settings().contains(&key))
        .collect();
    let names: Vec<&str> = owners.iter().map(|k| k.as_str()).collect();
    format!(
        "{key}: is {} {} setting; {} {} monitor takes {}",
        owners.first().map_or("a", |k| article(*k)),
        names.join(" and "),
        article(kind),
        kind.as_str(),
        kind.settings().join(", ")
    )
}

/// Refuse every key of another kind written on `m`, at the key's own position. `keys` (from
/// the second read of the file) has every key, also those with no value (`sni:`); without it,
/// the keys with a value are refused at their value.
pub(crate) fn refuse_foreign_keys(
    r: &mut Report<'_>,
    m: &RawMonitor,
    keys: Option<&Keyed<IgnoredAny>>,
) {
    let kind = m.kind.value;
    let foreign = |key: &str| {
        !kind.settings().contains(&key)
            && MonitorKind::ALL
                .into_iter()
                .any(|k| k.settings().contains(&key))
    };
    match keys {
        Some(keys) => {
            for (key, _) in &keys.0 {
                if foreign(&key.value) {
                    let (l, c) = pos(key);
                    r.at(l, c, foreign_key_message(&key.value, kind));
                }
            }
        }
        None => {
            for (key, (l, c)) in m.settings_written() {
                if foreign(key) {
                    r.at(l, c, foreign_key_message(key, kind));
                }
            }
        }
    }
}

/// The monitor's check settings and its target, or `None` after reporting why not.
pub(crate) fn settings(r: &mut Report<'_>, m: &RawMonitor) -> Option<(CheckSettings, String)> {
    match m.kind.value {
        MonitorKind::Http => http(r, m),
        MonitorKind::Tcp => tcp(r, m),
        MonitorKind::Tls => tls(r, m),
        MonitorKind::Dns => dns(r, m),
        MonitorKind::KafkaLag => kafka_lag(r, m),
    }
}

/// The one place a monitor's validated settings become what the probes run: the
/// [`CheckSpec`] of its kind, within the monitor's `timeout`.
pub(crate) fn probe_check(settings: CheckSettings, timeout: Duration) -> CheckSpec {
    match settings {
        CheckSettings::Http(mut request) => {
            request.timeouts.total = timeout;
            CheckSpec::Http(*request)
        }
        CheckSettings::Tcp {
            host,
            port,
            send,
            expect,
        } => CheckSpec::Tcp(TcpCheck {
            host,
            port,
            send: send.map(String::into_bytes),
            expect,
            timeout,
        }),
        CheckSettings::Tls {
            host,
            port,
            sni,
            insecure,
        } => CheckSpec::Tls(TlsCheck {
            host,
            port,
            sni,
            insecure,
            timeout,
        }),
        CheckSettings::Dns {
            name,
            record,
            server,
        } => CheckSpec::Dns(DnsCheck {
            name,
            // Validated against DNS_RECORDS, which are the probe's record types.
            record: record.parse().unwrap_or(RecordType::A),
            server,
            timeout,
        }),
        CheckSettings::KafkaLag(mut check) => {
            check.timeout = timeout;
            CheckSpec::KafkaLag(*check)
        }
    }
}

/// The one place conditions meet the monitor's kind: each is parsed against the kind's
/// operands (an operand the kind doesn't have is an error at its column, listing those it
/// has), and the kind's default conditions are kept in front unless a condition names their
/// operand (HTTP: `status 200-399` unless `status` is named).
pub(crate) fn conditions(r: &mut Report<'_>, text: &str, m: &RawMonitor) -> Vec<Condition> {
    let kind = check_kind(m.kind.value);
    let operands = kind.operands();
    let mut conditions = Vec::new();
    for cond in &m.conditions {
        match Condition::parse(&cond.value, operands) {
            Ok(c) => conditions.push(c),
            Err(e) => {
                let (l, _) = pos(cond);
                r.at(
                    l,
                    scalar_column(text, cond, e.column),
                    format!("condition: {}", e.message),
                );
            }
        }
    }
    kind.with_defaults(conditions)
}

/// The probes' kind of a monitor `type:`.
pub fn check_kind(kind: MonitorKind) -> CheckKind {
    match kind {
        MonitorKind::Http => CheckKind::Http,
        MonitorKind::Tcp => CheckKind::Tcp,
        MonitorKind::Tls => CheckKind::Tls,
        MonitorKind::Dns => CheckKind::Dns,
        MonitorKind::KafkaLag => CheckKind::KafkaLag,
    }
}

/// The required key of a kind, or an error at the monitor's name.
fn required<'m>(
    r: &mut Report<'_>,
    m: &RawMonitor,
    value: Option<&'m S<String>>,
    what: &str,
) -> Option<&'m S<String>> {
    if value.is_none() {
        let (l, c) = pos(&m.name);
        r.at(
            l,
            c,
            format!(
                "monitor {}: type {} needs {what}",
                escaped(&m.name.value),
                m.kind.value.as_str()
            ),
        );
    }
    value
}

/// The HTTP request, and the target as shown to people (the URL as written, no userinfo).
fn http(r: &mut Report<'_>, m: &RawMonitor) -> Option<(CheckSettings, String)> {
    let url = required(r, m, m.url.as_ref(), "a `url:`")?;
    let (l, c) = pos(url);
    let substituted = r.interpolate(&url.value);
    // The substituted URL may hold a secret: messages name only the problem.
    if let Some(problem) = http_url_problem(&substituted) {
        r.at(l, c, format!("url: {problem}"));
        return None;
    }
    let mut req = match HttpRequest::get(&substituted) {
        Ok(req) => req,
        Err(e) => {
            let message = match e {
                watchpost_probes::http::RequestError::Url { reason, .. } => {
                    format!("url: invalid URL: {reason}")
                }
                other => format!("url: {other}"),
            };
            r.at(l, c, message);
            return None;
        }
    };
    if let Some(method) = &m.method {
        match req.clone().method(&method.value) {
            Ok(next) => req = next,
            Err(_) => {
                let (l, c) = pos(method);
                r.at(l, c, format!("invalid method {}", escaped(&method.value)));
            }
        }
    }
    for (key, value) in m.headers.iter().flat_map(|h| h.value.0.iter()) {
        let (l, c) = pos(key);
        let line = format!("{}: {}", key.value, r.interpolate(&value.value));
        if let Some(problem) = header_line_problem(&line) {
            r.at(l, c, format!("header {}: {problem}", escaped(&key.value)));
            continue;
        }
        match req.clone().header_line(&line) {
            Ok(next) => req = next,
            Err(_) => r.at(
                l,
                c,
                format!("header {}: invalid name or value", escaped(&key.value)),
            ),
        }
    }
    if let Some(body) = &m.body {
        req.body = r.interpolate(&body.value).into_bytes().into();
    }
    req.insecure = m.insecure.as_ref().is_some_and(|b| b.value);
    req.follow_redirects = m.follow_redirects.as_ref().is_some_and(|b| b.value);
    if let Some(mb) = &m.max_body {
        match watchpost_units::parse_size(&mb.value) {
            Ok(n) => req.max_body = n,
            Err(e) => {
                let (l, c) = pos(mb);
                r.at(l, c, format!("max_body: {e}"));
            }
        }
    }
    Some((
        CheckSettings::Http(Box::new(req)),
        without_userinfo(&url.value),
    ))
}

/// `tcp`: `address` (required), `send`, `expect`. Target `tcp://ADDRESS`.
fn tcp(r: &mut Report<'_>, m: &RawMonitor) -> Option<(CheckSettings, String)> {
    let address = required(r, m, m.address.as_ref(), "an `address:` (HOST:PORT)");
    let host_port = address.and_then(|a| address_value(r, a));
    let send = non_empty(r, m.send.as_ref(), "send", "the text to send");
    let expect = non_empty(
        r,
        m.expect.as_ref(),
        "expect",
        "the text the reply must contain",
    );
    let ((host, port), address) = (host_port?, address?);
    Some((
        CheckSettings::Tcp {
            host,
            port,
            send: send?,
            expect: expect?,
        },
        format!("tcp://{}", address.value),
    ))
}

/// `tls`: `address` (required), `sni`, `insecure`. Target `tls://ADDRESS[?sni=SNI]`.
fn tls(r: &mut Report<'_>, m: &RawMonitor) -> Option<(CheckSettings, String)> {
    let address = required(r, m, m.address.as_ref(), "an `address:` (HOST:PORT)");
    let host_port = address.and_then(|a| address_value(r, a));
    let sni = match &m.sni {
        None => Some(None),
        Some(s) => {
            let value = r.interpolate(&s.value);
            match host(&value) {
                Ok(Host::Name(name)) => Some(Some(name)),
                Ok(Host::Ip(_)) => {
                    let (l, c) = pos(s);
                    r.at(
                        l,
                        c,
                        "sni: is an IP address; the server name sent in the handshake is a DNS name",
                    );
                    None
                }
                Err(problem) => {
                    let (l, c) = pos(s);
                    r.at(l, c, format!("sni: {problem}"));
                    None
                }
            }
        }
    };
    let ((host, port), address, sni) = (host_port?, address?, sni?);
    let mut target = format!("tls://{}", address.value);
    if let Some(written) = &m.sni {
        target.push_str("?sni=");
        target.push_str(&written.value);
    }
    let insecure = m.insecure.as_ref().is_some_and(|b| b.value);
    Some((
        CheckSettings::Tls {
            host,
            port,
            sni,
            insecure,
        },
        target,
    ))
}

/// `dns`: `query` (required), `record` (default A), `server` (default: the system's).
/// Target `dns://QUERY?type=RECORD[&server=SERVER]`.
fn dns(r: &mut Report<'_>, m: &RawMonitor) -> Option<(CheckSettings, String)> {
    let query = required(r, m, m.query.as_ref(), "a `query:` (the name to resolve)");
    let name = query.and_then(|q| {
        let value = r.interpolate(&q.value);
        let (l, c) = pos(q);
        match host(&value) {
            Ok(Host::Name(name)) => Some(name),
            Ok(Host::Ip(_)) => {
                r.at(
                    l,
                    c,
                    "query: is an IP address; give the name to resolve (reverse lookups are not available)",
                );
                None
            }
            Err(problem) => {
                r.at(l, c, format!("query: {problem}"));
                None
            }
        }
    });
    let record = match &m.record {
        None => Some("A".to_string()),
        Some(s) => {
            let value = r.interpolate(&s.value).to_ascii_uppercase();
            if DNS_RECORDS.contains(&value.as_str()) {
                Some(value)
            } else {
                let (l, c) = pos(s);
                r.at(
                    l,
                    c,
                    format!(
                        "record: {} is not a record type watchpost queries ({})",
                        escaped(&s.value),
                        DNS_RECORDS.join(", ")
                    ),
                );
                None
            }
        }
    };
    let server = match &m.server {
        None => Some(None),
        Some(s) => {
            let value = r.interpolate(&s.value);
            match server_value(&value) {
                Ok(addr) => Some(Some(addr)),
                Err(problem) => {
                    let (l, c) = pos(s);
                    r.at(l, c, format!("server: {problem}"));
                    None
                }
            }
        }
    };
    let (name, record, server, query) = (name?, record?, server?, query?);
    // The record type as written when it comes from a ${VAR}, else as it is queried.
    let shown_record = match &m.record {
        Some(s) if s.value.contains("${") => s.value.clone(),
        _ => record.clone(),
    };
    let mut target = format!("dns://{}?type={shown_record}", query.value);
    if let Some(written) = &m.server {
        target.push_str("&server=");
        target.push_str(&written.value);
    }
    Some((
        CheckSettings::Dns {
            name,
            record,
            server,
        },
        target,
    ))
}

/// A text setting with its `${VAR}`s substituted: `Some(None)` when absent, `None` after an
/// error (an empty value does nothing, so it is refused).
fn non_empty(
    r: &mut Report<'_>,
    value: Option<&S<String>>,
    key: &str,
    what: &str,
) -> Option<Option<String>> {
    let Some(s) = value else {
        return Some(None);
    };
    let text = r.interpolate(&s.value);
    if text.is_empty() {
        let (l, c) = pos(s);
        r.at(
            l,
            c,
            format!("{key}: is empty: give {what}, or remove `{key}:`"),
        );
        return None;
    }
    Some(Some(text))
}

/// `address:` as (host, port), or an error at its value.
fn address_value(r: &mut Report<'_>, address: &S<String>) -> Option<(String, u16)> {
    let value = r.interpolate(&address.value);
    match host_port(&value) {
        Ok(hp) => Some(hp),
        Err(problem) => {
            let (l, c) = pos(address);
            r.at(l, c, format!("address: {problem}"));
            None
        }
    }
}

/// A host: a DNS name (in its ASCII form) or an IP address.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Host {
    Name(String),
    Ip(IpAddr),
}

/// Read a host name or an IPv4 address (IPv6 addresses are written in brackets by the
/// callers that take them). Names with non-ASCII letters become their `xn--` form; a trailing
/// dot is kept. The problem never quotes the value (it may come from a `${VAR}`).
pub(crate) fn host(value: &str) -> Result<Host, String> {
    if value.is_empty() {
        return Err("the host name is empty".into());
    }
    if let Ok(ip) = value.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    if let Ok(ip) = value.parse::<Ipv6Addr>() {
        return Ok(Host::Ip(IpAddr::V6(ip)));
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "the host name contains {}, which a host name can't",
            match c {
                ' ' => "a space".to_string(),
                c if c.is_ascii_control() => format!("\"{}\"", escaped_char(c)),
                c => format!("\"{c}\""),
            }
        ));
    }
    let ascii = match url::Host::parse(value) {
        Ok(url::Host::Domain(name)) => name,
        Ok(url::Host::Ipv4(_)) => {
            return Err(
                "is not a valid IPv4 address (four numbers from 0 to 255, e.g. 192.0.2.1)".into(),
            );
        }
        Ok(url::Host::Ipv6(_)) | Err(_) => return Err("is not a valid host name".into()),
    };
    let bare = ascii.strip_suffix('.').unwrap_or(&ascii);
    if bare.len() > MAX_HOST_NAME {
        return Err(format!(
            "the host name is longer than {MAX_HOST_NAME} characters"
        ));
    }
    if bare.split('.').any(str::is_empty) {
        return Err("the host name has an empty label (a leading dot or two dots in a row)".into());
    }
    if bare.split('.').any(|label| label.len() > MAX_LABEL) {
        return Err(format!(
            "a label of the host name is longer than {MAX_LABEL} characters"
        ));
    }
    Ok(Host::Name(ascii))
}

const HOST_PORT_EXAMPLE: &str = "HOST:PORT, e.g. db.example.com:5432 or [::1]:5432";

/// `HOST:PORT` (IPv6 as `[::1]:PORT`) as (host, port); the host is a name in its ASCII form or
/// an IP address (IPv6 without brackets).
pub(crate) fn host_port(value: &str) -> Result<(String, u16), String> {
    let (host_text, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(format!(
                "the IPv6 address has no closing `]`: expected {HOST_PORT_EXAMPLE}"
            ));
        };
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| "the address in [ ] is not a valid IPv6 address".to_string())?;
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!(
                "the port is missing after the `]`: expected {HOST_PORT_EXAMPLE}"
            ));
        };
        (ip.to_string(), port)
    } else {
        let Some((host_text, port)) = value.rsplit_once(':') else {
            return Err(format!("the port is missing: expected {HOST_PORT_EXAMPLE}"));
        };
        if host_text.contains(':') {
            return Err("write an IPv6 address in brackets: [::1]:PORT".into());
        }
        let host_text = match host(host_text)? {
            Host::Name(name) => name,
            Host::Ip(ip) => ip.to_string(),
        };
        (host_text, port)
    };
    Ok((host_text, port_value(port)?))
}

/// A port: 1 to 65535.
fn port_value(text: &str) -> Result<u16, String> {
    if text.is_empty() {
        return Err(format!("the port is missing: expected {HOST_PORT_EXAMPLE}"));
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err("the port must be a number from 1 to 65535".into()),
        Ok(port) if text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        Ok(_) => Err("the port must be a number from 1 to 65535".into()),
    }
}

const SERVER_EXAMPLE: &str = "IP:PORT, e.g. 223.5.5.5:53 or [2400:3200::1]:53";

/// A DNS server: `IP:PORT` (IPv6 as `[::1]:PORT`), never a name (it would need a resolver of
/// its own).
pub(crate) fn server_value(value: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err("the port must be a number from 1 to 65535".into());
        }
        return Ok(addr);
    }
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    if bare.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "the port is missing (53 for DNS): expected {SERVER_EXAMPLE}"
        ));
    }
    let (host_text, port) = match value.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").unwrap_or((rest, "")),
        None => value.rsplit_once(':').unwrap_or((value, "")),
    };
    if host_text.parse::<IpAddr>().is_ok() {
        // An IP address with a bad port.
        return Err(port_value(port)
            .err()
            .unwrap_or_else(|| "the port must be a number from 1 to 65535".into()));
    }
    Err(format!(
        "expected an IP address and a port ({SERVER_EXAMPLE}); a name can't be used here"
    ))
}

#[cfg(test)]
mod tests;

/// `kafka_lag`: `group` (required), `bootstrap` (HOST:PORT or a list; required unless
/// `source: ckafka`), `topics`, `sasl`, `tls`, `source`, `ckafka`, `window`. Target
/// `kafka://BOOTSTRAP/GROUP` or `ckafka://INSTANCE/GROUP`, as written.
fn kafka_lag(r: &mut Report<'_>, m: &RawMonitor) -> Option<(CheckSettings, String)> {
    use watchpost_kafka::{Sasl, SaslMechanism, Settings, Tls};
    use watchpost_probes::kafka::{KafkaLagCheck, LagSource, window::WindowParams};
    let group = required(r, m, m.group.as_ref(), "a `group:` (the consumer group)");
    let mut ok = true;
    let group = match group {
        Some(g) if g.value.trim().is_empty() => {
            let (l, c) = pos(g);
            r.at(l, c, "group: is empty");
            ok = false;
            None
        }
        Some(g) => Some(g),
        None => {
            ok = false;
            None
        }
    };
    let ckafka = match &m.source {
        None => false,
        Some(s) => match s.value.as_str() {
            "kafka" => false,
            "ckafka" => true,
            other => {
                let (l, c) = pos(s);
                r.at(
                    l,
                    c,
                    format!("source: {} is not kafka or ckafka", escaped(other)),
                );
                ok = false;
                false
            }
        },
    };
    let topics = match &m.topics {
        None => None,
        Some(t) => {
            let mut names = Vec::new();
            for name in &t.value {
                if name.value.trim().is_empty() {
                    let (l, c) = pos(name);
                    r.at(l, c, "topics: a topic name is empty");
                    ok = false;
                } else {
                    names.push(name.value.clone());
                }
            }
            if t.value.is_empty() {
                let (l, c) = pos(t);
                r.at(
                    l,
                    c,
                    "topics: is empty (leave it out for every topic the group commits to)",
                );
                ok = false;
            }
            Some(names)
        }
    };
    let mut window = WindowParams::default();
    if let Some(w) = &m.window {
        if let Some(n) = &w.value.samples {
            window.samples = n.value as usize;
        }
        if let Some(n) = &w.value.min_samples {
            window.min_samples = n.value as usize;
        }
        if let Some(d) = &w.value.min_distance {
            match watchpost_units::parse_duration(&d.value) {
                Ok(d) => window.min_distance = d,
                Err(e) => {
                    let (l, c) = pos(d);
                    r.at(l, c, format!("window: min_distance: {e}"));
                    ok = false;
                }
            }
        }
        if let Some(n) = &w.value.allowed_lag {
            window.allowed_lag = n.value;
        }
        if let Err(e) = window.validate() {
            let (l, c) = pos(w);
            r.at(l, c, format!("window: {e}"));
            ok = false;
        }
    }

    let (source, target) = if ckafka {
        for (key, written) in [
            ("bootstrap", m.bootstrap.as_ref().map(pos)),
            ("sasl", m.sasl.as_ref().map(pos)),
            ("tls", m.tls.as_ref().map(pos)),
        ] {
            if let Some((l, c)) = written {
                r.at(
                    l,
                    c,
                    format!("{key}: is for source: kafka; with source: ckafka the API is asked"),
                );
                ok = false;
            }
        }
        let Some(ck) = &m.ckafka else {
            let (l, c) = pos(&m.name);
            r.at(
                l,
                c,
                format!(
                    "monitor {}: source: ckafka needs `ckafka:` {{instance_id, region, secret_id, secret_key}}",
                    escaped(&m.name.value)
                ),
            );
            return None;
        };
        let ck = &ck.value;
        let endpoint_text = ck
            .endpoint
            .as_ref()
            .map_or("https://ckafka.tencentcloudapi.com".to_string(), |e| {
                r.interpolate(&e.value)
            });
        let endpoint = url::Url::parse(&endpoint_text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        let Some(endpoint) = endpoint else {
            if let Some(e) = &ck.endpoint {
                let (l, c) = pos(e);
                r.at(l, c, "ckafka: endpoint: expected an http(s) URL");
            }
            return None;
        };
        let mut fields = Vec::new();
        for (name, value) in [
            ("instance_id", &ck.instance_id),
            ("region", &ck.region),
            ("secret_id", &ck.secret_id),
            ("secret_key", &ck.secret_key),
        ] {
            let v = r.interpolate(&value.value);
            if v.trim().is_empty() {
                let (l, c) = pos(value);
                r.at(l, c, format!("ckafka: {name}: is empty"));
                ok = false;
            }
            fields.push(v);
        }
        let [instance_id, region, secret_id, secret_key]: [String; 4] = fields.try_into().ok()?;
        let target = format!(
            "ckafka://{}/{}",
            ck.instance_id.value,
            group.map_or("", |g| g.value.as_str())
        );
        (
            LagSource::Ckafka(watchpost_kafka::ckafka::CkafkaSource {
                endpoint,
                region,
                instance_id,
                secret_id,
                secret_key,
                extra_roots: Vec::new(),
            }),
            target,
        )
    } else {
        if let Some(ck) = &m.ckafka {
            let (l, c) = pos(ck);
            r.at(l, c, "ckafka: applies with source: ckafka");
            ok = false;
        }
        let Some(b) = m.bootstrap.as_ref() else {
            let (l, c) = pos(&m.name);
            r.at(
                l,
                c,
                format!(
                    "monitor {}: type kafka_lag needs a `bootstrap:` (HOST:PORT or a list of \
                     them), or `source: ckafka`",
                    escaped(&m.name.value)
                ),
            );
            return None;
        };
        let written = b.value.items();
        let mut addresses = Vec::new();
        for item in &written {
            let value = r.interpolate(item);
            match value.rsplit_once(':') {
                Some((host, port))
                    if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) =>
                {
                    addresses.push(value.clone())
                }
                _ => {
                    let (l, c) = pos(b);
                    r.at(
                        l,
                        c,
                        format!("bootstrap: {} is not HOST:PORT", escaped(item)),
                    );
                    ok = false;
                }
            }
        }
        if written.is_empty() {
            let (l, c) = pos(b);
            r.at(l, c, "bootstrap: is empty");
            ok = false;
        }
        let mut settings = Settings::new(addresses);
        if let Some(t) = &m.tls {
            let (l, c) = pos(t);
            let (on, ca_file, insecure) = match &t.value {
                crate::raw::RawKafkaTls::On(on) => (*on, None, false),
                crate::raw::RawKafkaTls::Settings(s) => {
                    let ca_file = s.ca_file.as_deref().map(|p| r.path(p));
                    (true, ca_file, s.insecure.unwrap_or(false))
                }
            };
            if on {
                let config = if insecure {
                    Some(watchpost_net::insecure_config(&[]))
                } else {
                    let extra = match &ca_file {
                        Some(path) => match watchpost_net::load_ca_file(path) {
                            Ok(certs) => certs,
                            Err(e) => {
                                r.at(
                                    l,
                                    c,
                                    format!(
                                        "tls: ca_file {}: {}",
                                        escaped(&path.display().to_string()),
                                        e.reason
                                    ),
                                );
                                ok = false;
                                Vec::new()
                            }
                        },
                        None => Vec::new(),
                    };
                    match watchpost_net::verified_config(&extra, &[]) {
                        Ok(config) => Some(config),
                        Err(e) => {
                            r.at(l, c, format!("tls: {}", e.reason));
                            ok = false;
                            None
                        }
                    }
                };
                let id = match (insecure, &ca_file) {
                    (true, _) => "insecure".to_string(),
                    (false, Some(path)) => format!("verified+ca:{}", path.display()),
                    (false, None) => "verified".to_string(),
                };
                settings.tls = config.map(|config| Tls {
                    config: std::sync::Arc::new(config),
                    server_name: None,
                    id,
                });
            }
        }
        if let Some(s) = &m.sasl {
            let s = &s.value;
            let mechanism = match s.mechanism.value.to_ascii_uppercase().as_str() {
                "PLAIN" => Some(SaslMechanism::Plain),
                "SCRAM-SHA-256" => Some(SaslMechanism::ScramSha256),
                "SCRAM-SHA-512" => Some(SaslMechanism::ScramSha512),
                _ => {
                    let (l, c) = pos(&s.mechanism);
                    r.at(
                        l,
                        c,
                        format!(
                            "sasl: mechanism {} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                            escaped(&s.mechanism.value)
                        ),
                    );
                    ok = false;
                    None
                }
            };
            let username = r.interpolate(&s.username.value);
            let password = r.interpolate(&s.password.value);
            if let Some(mechanism) = mechanism {
                settings.sasl = Some(Sasl {
                    mechanism,
                    username,
                    password,
                });
            }
        }
        let target = format!(
            "kafka://{}/{}",
            written.join(","),
            group.map_or("", |g| g.value.as_str())
        );
        (LagSource::Brokers(settings), target)
    };
    if !ok {
        return None;
    }
    let group = group?;
    Some((
        CheckSettings::KafkaLag(Box::new(KafkaLagCheck {
            source,
            group: group.value.clone(),
            topics,
            window,
            timeout: watchpost_probes::DEFAULT_TIMEOUT,
        })),
        target,
    ))
}
