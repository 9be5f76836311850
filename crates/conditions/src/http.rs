//! Operands of an HTTP check.

use crate::{Actual, Condition, OperandKind, Subject};
use std::borrow::Cow;
use watchpost_probes::http::{HttpResult, timing::ms};

/// The expectation when none is given: a response arrived and its status is 200-399.
pub const DEFAULT_HTTP_CONDITIONS: [&str; 2] = ["status >= 200", "status <= 399"];

/// HTTP's conditions as a monitor or `watchpost check` applies them: the default status rule
/// (`status >= 200`, `status <= 399`, in front) is kept unless one of `conditions` names
/// `status` itself, in which case that condition decides which statuses pass. So
/// `["total < 1s"]` still fails a 503 (`status 503 > 399`), and `["status == 503"]` passes it.
pub fn with_default_status(conditions: Vec<Condition>) -> Vec<Condition> {
    if conditions.iter().any(|c| c.operand == "status") {
        return conditions;
    }
    DEFAULT_HTTP_CONDITIONS
        .iter()
        .filter_map(|text| Condition::parse::<HttpSubject>(text).ok())
        .chain(conditions)
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16) -> HttpResult {
        HttpResult {
            url: "http://127.0.0.1/".into(),
            final_url: "http://127.0.0.1/".into(),
            status: Some(status),
            http_version: Some("HTTP/1.1"),
            remote_addr: None,
            redirects: 0,
            timings: Default::default(),
            size_bytes: 0,
            headers: Default::default(),
            body: Default::default(),
            tls: None,
            error: None,
        }
    }

    fn conditions(texts: &[&str]) -> Vec<Condition> {
        with_default_status(
            texts
                .iter()
                .map(|t| Condition::parse::<HttpSubject>(t).unwrap())
                .collect(),
        )
    }

    #[test]
    fn the_default_status_rule_stays_unless_a_condition_names_status() {
        // No conditions: the default alone.
        let none = conditions(&[]);
        let sources: Vec<&str> = none.iter().map(|c| c.source.as_str()).collect();
        assert_eq!(sources, DEFAULT_HTTP_CONDITIONS);
        // A timing condition keeps the default in front: a fast 503 fails on its status.
        let timing = conditions(&["total < 1s"]);
        assert_eq!(timing.len(), 3);
        assert_eq!(evaluate_http(&response(503), &timing), ["status 503 > 399"]);
        assert!(evaluate_http(&response(200), &timing).is_empty());
        assert_eq!(evaluate_http(&response(199), &timing), ["status 199 < 200"]);
        // A condition on status replaces the default: expecting a 503 passes it.
        let own = conditions(&["status == 503", "total < 1s"]);
        assert_eq!(own.len(), 2);
        assert!(evaluate_http(&response(503), &own).is_empty());
        assert_eq!(evaluate_http(&response(200), &own), ["status 200 != 503"]);
    }
}
