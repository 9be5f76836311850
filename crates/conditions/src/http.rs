//! Operands of an HTTP check.

use crate::{Actual, Condition, OperandKind, Subject};
use std::borrow::Cow;
use watchpost_probes::http::{HttpResult, timing::ms};

/// The expectation when none is given: a response arrived and its status is 200-399.
pub const DEFAULT_HTTP_CONDITIONS: [&str; 2] = ["status >= 200", "status <= 399"];

const NAMES: &[&str] = &[
    "status",
    "dns",
    "connect",
    "tls",
    "wait",
    "download",
    "ttfb",
    "total",
    "size",
    "speed",
    "body",
    "header.NAME",
    "json.PATH",
    "cert_days",
];

/// An [`HttpResult`] seen by conditions.
pub struct HttpSubject<'a>(pub &'a HttpResult);

impl Subject for HttpSubject<'_> {
    fn operand_kind(operand: &str) -> Option<OperandKind> {
        Some(match operand {
            "status" | "cert_days" => OperandKind::Number,
            "dns" | "connect" | "tls" | "wait" | "download" | "ttfb" | "total" => {
                OperandKind::Duration
            }
            "size" => OperandKind::Bytes,
            "speed" => OperandKind::Rate,
            "body" => OperandKind::Text,
            o if o.strip_prefix("header.").is_some_and(|n| !n.is_empty()) => OperandKind::Text,
            o if o.strip_prefix("json.").is_some_and(|n| !n.is_empty()) => OperandKind::Text,
            _ => return None,
        })
    }

    fn operand_names() -> &'static [&'static str] {
        NAMES
    }

    fn actual(&self, operand: &str) -> Actual<'_> {
        let r = self.0;
        let t = &r.timings;
        let dur =
            |d: Option<std::time::Duration>| d.map_or(Actual::Missing, |d| Actual::Duration(ms(d)));
        match operand {
            "status" => r
                .status
                .map_or(Actual::Missing, |s| Actual::Number(s.into())),
            "dns" => dur(t.dns),
            "connect" => dur(t.connect),
            "tls" => dur(t.tls),
            "wait" => dur(t.wait),
            "download" => dur(t.download),
            "ttfb" => dur(t.ttfb),
            "total" => Actual::Duration(ms(t.total)),
            "size" => Actual::Bytes(r.size_bytes as f64),
            "speed" => Actual::Rate(r.speed_bytes_per_sec()),
            "body" => Actual::Text(String::from_utf8_lossy(&r.body)),
            "cert_days" => r
                .tls
                .as_ref()
                .and_then(|t| t.cert_days_left)
                .map_or(Actual::Missing, Actual::Number),
            o => {
                if let Some(name) = o.strip_prefix("header.") {
                    return r
                        .headers
                        .get(&name.to_ascii_lowercase())
                        .map_or(Actual::Missing, |v| Actual::Text(Cow::Borrowed(v.as_str())));
                }
                if let Some(path) = o.strip_prefix("json.") {
                    return json_path(&r.body, path);
                }
                Actual::Missing
            }
        }
    }
}

/// `json.a.b[0].c`: walk the parsed body. Numbers come back as numbers, strings as text,
/// anything else as its JSON text.
fn json_path<'a>(body: &[u8], path: &str) -> Actual<'a> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Actual::Missing;
    };
    for part in path.split('.') {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            value = match value.get_mut(key) {
                Some(v) => v.take(),
                None => return Actual::Missing,
            };
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let Ok(i) = idx.trim_end_matches(']').parse::<usize>() else {
                return Actual::Missing;
            };
            value = match value.get_mut(i) {
                Some(v) => v.take(),
                None => return Actual::Missing,
            };
        }
    }
    match value {
        serde_json::Value::Number(n) => n.as_f64().map_or(Actual::Missing, Actual::Number),
        serde_json::Value::String(s) => Actual::Text(Cow::Owned(s)),
        serde_json::Value::Null => Actual::Missing,
        other => Actual::Text(Cow::Owned(other.to_string())),
    }
}

/// Judge a check: a transport error fails it outright (its message is the reason); otherwise
/// every condition must hold. Returns the reasons it failed (empty = passed).
pub fn evaluate_http(result: &HttpResult, conditions: &[Condition]) -> Vec<String> {
    if let Some(e) = &result.error {
        return vec![format!("{} {}: {}", e.phase, e.kind, e.message)];
    }
    let subject = HttpSubject(result);
    conditions
        .iter()
        .filter_map(|c| c.check(&subject).err())
        .collect()
}
