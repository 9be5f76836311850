//! `json.PATH` operands: a path walked through the parsed body.

use std::borrow::Cow;
use watchpost_conditions::Actual;

/// `json.a.b[0].c`: walk the parsed body. Numbers come back as numbers, strings as text,
/// `null` and anything absent as missing, objects and arrays as their JSON text.
pub(crate) fn json_path<'a>(body: &[u8], path: &str) -> Actual<'a> {
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
