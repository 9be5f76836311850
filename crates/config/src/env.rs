//! `${VAR}` interpolation from the environment. Variables are found in the raw text first (so a
//! missing one is reported at its exact line and column, all at once) and substituted into the
//! parsed string values afterwards (so a value can hold any character without changing the
//! YAML's meaning, and no secret ever appears in a parse error).

use crate::error::Report;
use crate::secrets::Secrets;

/// Every `${NAME}` in `text`, with its 1-based line and column.
fn references(text: &str) -> Vec<(u64, u64, &str)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        let mut offset = 0;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            let name = &after[..end];
            let column = line[..offset + start].chars().count() as u64 + 1;
            out.push((i as u64 + 1, column, name));
            offset += start + 2 + end + 1;
            rest = &line[offset..];
        }
    }
    out
}

thread_local! {
    /// Set by [`with_env`]: `${NAME}`s are read from this map instead of the process's
    /// environment (a probe agent validates the config its server sent with the values the
    /// server sent along).
    static OVERRIDE: std::cell::RefCell<Option<std::collections::BTreeMap<String, String>>> =
        const { std::cell::RefCell::new(None) };
}

/// The value of `${name}`: from the map of [`with_env`] while one is set, else the process's
/// environment.
fn lookup(name: &str) -> Option<String> {
    OVERRIDE.with(|o| match &*o.borrow() {
        Some(map) => map.get(name).cloned(),
        None => std::env::var(name).ok(),
    })
}

/// Run `f` (a config parse on this thread) with `${NAME}`s read from `env` only.
pub(crate) fn with_env<T>(
    env: &std::collections::BTreeMap<String, String>,
    f: impl FnOnce() -> T,
) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            OVERRIDE.with(|o| *o.borrow_mut() = None);
        }
    }
    OVERRIDE.with(|o| *o.borrow_mut() = Some(env.clone()));
    let _reset = Reset;
    f()
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Report bad or unset variables (comment lines are skipped).
pub(crate) fn check(text: &str, report: &mut Report<'_>) {
    for (line, column, name) in references(text) {
        let line_text = text.lines().nth(line as usize - 1).unwrap_or("");
        if line_text.trim_start().starts_with('#') {
            continue;
        }
        if !valid_name(name) {
            report.at(line, column, format!("invalid variable name ${{{name}}}"));
        } else if lookup(name).is_none() {
            report.at(
                line,
                column,
                format!("environment variable {name} is not set (used as ${{{name}}})"),
            );
        }
    }
}

/// Substitute `${NAME}` in a parsed value (all names were checked before). An unset name
/// becomes the empty string.
pub fn interpolate(value: &str) -> String {
    interpolate_recording(value, &mut Secrets::new())
}

/// [`interpolate`], recording each (name, value) substituted in `secrets`.
pub(crate) fn interpolate_recording(value: &str, secrets: &mut Secrets) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) if valid_name(&after[..end]) => {
                let name = &after[..end];
                let substituted = lookup(name).unwrap_or_default();
                secrets.add(name, &substituted);
                out.push_str(&rest[..start]);
                out.push_str(&substituted);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Interpolate every string inside a JSON value (channel settings).
pub(crate) fn interpolate_json(value: &mut serde_json::Value, secrets: &mut Secrets) {
    match value {
        serde_json::Value::String(s) => *s = interpolate_recording(s, secrets),
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(|v| interpolate_json(v, secrets))
        }
        serde_json::Value::Object(map) => {
            map.values_mut().for_each(|v| interpolate_json(v, secrets))
        }
        _ => {}
    }
}
