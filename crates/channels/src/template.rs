//! Operator-written templates of an alert: the webhook's `template:` body and Tencent SMS's
//! `params:`. Jinja syntax (minijinja), strict: a misspelt variable is an error, found at
//! config time because every template is test-rendered against sample alerts of every kind in
//! both languages when the channel is built.
//!
//! Variables are the fields of the webhook payload ([`crate::WebhookPayload`], version 2):
//! `version`, `kind` (`down|reminder|resolved|test`), `monitor`, `incident_id`,
//! `idempotency_key`, `at`, `since` (RFC 3339 UTC, or none), `locale`, `title`, `text` (plain
//! rendering), `markdown`, `check` (`http`, `tcp`, `tls`, `dns`), `url`, `message` (a test
//! alert's), `failures`, `columns`, `locations` (list of `{location, ok, metrics: [{name,
//! value, unit}], error}`, plus `region`, `isp` and `missing: true` only when set), `notes`
//! (list of watchpost's own remarks, usually empty), plus `summary` (what happened; with
//! several locations, also which fail), `status` (`DOWN`/`RESOLVED`/… or `故障`/`恢复`/…, in the alert's
//! language), `at_local` and `since_local` (`2026-11-30 11:30:29 +08:00`, in the configured
//! `timezone`; `since_local` none when `since` is).
//!
//! # Failures
//!
//! `failures` is a list of the conditions that failed, each with the attributes `location`,
//! `operand`, `op`, `expected`, `actual` and `text`: `{{ failures[0].actual }}` is `1430ms`
//! for `total 1430ms > 1000ms`, `{{ failures[0].operand }}` is `total`. Printed (or joined, or
//! given to a string filter) a failure is the line messages show, `LOCATION: TEXT`
//! (`local: total 1430ms > 1000ms`) — the string version 1 of the payload had — so templates
//! written for that version (`{{ failures[0] }}`, `{{ failures|join("; ") }}`) keep working;
//! `tojson` writes the object. For a test alert (`watchpost notify`), `failures` holds its
//! message as one item (`text` and `actual` the message), as before, so a template written
//! for down alerts renders for test alerts too; `message` has it as well.
//!
//! Any name that is not one of these (or a Jinja global such as `range`) is an error with
//! its line, wherever it is used: printed, passed to a filter (`{{ monitr|tojson }}`) or
//! tested (`{% if monitr is defined %}`). An undefined attribute of a variable fails as soon
//! as it is printed, iterated, tested or given to `tojson`.
//!
//! Filters besides Jinja's built-ins: `tojson` (a JSON value, for JSON bodies; fails on an
//! undefined value instead of writing `null`) and `truncate(n)` (at most `n` characters, the
//! last one `…` when cut).
//!
//! ```
//! use watchpost_channels::{Alert, Locale, template::Template};
//! let t = Template::compile("{{ status }}: {{ monitor }}", "test").unwrap();
//! let alert = Alert::test("ops-hook", None, chrono::Utc::now());
//! assert_eq!(t.render(&alert, Locale::En).unwrap(), "TEST: ops-hook");
//! assert!(Template::compile("{{ monitr }}", "test").unwrap_err().0.contains("undefined"));
//! ```

use crate::message::{Alert, AlertKind, FailedCondition, Locale, LocationRow};
use crate::{ConfigError, WebhookPayload};
use chrono::{TimeZone, Utc};
use minijinja::value::{Enumerator, Object, Value};
use minijinja::{Environment, UndefinedBehavior};
use std::collections::BTreeMap;
use std::sync::Arc;
use watchpost_units::{Metric, Unit};

const NAME: &str = "template";

/// A compiled, checked template.
pub struct Template {
    env: Environment<'static>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Template")
    }
}

impl Template {
    /// Compile `source` and test-render it against sample alerts (every kind, both
    /// languages). `setting` prefixes errors (`"webhook: template"`).
    pub fn compile(source: &str, setting: &str) -> Result<Template, ConfigError> {
        Template::compile_checked(source, setting, |_| Ok(()))
    }

    /// [`Template::compile`], and `check` each sample rendering too (e.g. that a JSON body
    /// parses); its error is reported as `{setting}: the body for a sample KIND alert {error}`.
    pub fn compile_checked(
        source: &str,
        setting: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Result<Template, ConfigError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("truncate", truncate);
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| ConfigError(format!("{setting}: {}", describe(&e))))?;
        check_variables(&env, source).map_err(|e| ConfigError(format!("{setting}: {e}")))?;
        let template = Template { env };
        for alert in Template::samples() {
            for locale in [Locale::En, Locale::ZhCn] {
                let body = template.render(&alert, locale).map_err(|e| {
                    ConfigError(format!(
                        "{setting}: rendering a sample {} alert: {e}",
                        alert.kind
                    ))
                })?;
                check(&body).map_err(|e| {
                    ConfigError(format!(
                        "{setting}: the body for a sample {} alert {e}",
                        alert.kind
                    ))
                })?;
            }
        }
        Ok(template)
    }

    /// Render for `alert` in `locale`.
    pub fn render(&self, alert: &Alert, locale: Locale) -> Result<String, String> {
        let template = self.env.get_template(NAME).map_err(|e| describe(&e))?;
        template
            .render(context(alert, locale))
            .map_err(|e| describe(&e))
    }

    /// Alerts of every kind with every optional field set, to test templates against.
    pub fn samples() -> Vec<Alert> {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let since = Utc.with_ymd_and_hms(2026, 1, 2, 2, 59, 0).unwrap();
        let ms = |name: &'static str, v: f64| Metric::new(name, v, Unit::Ms);
        let base = Alert {
            kind: AlertKind::Down,
            monitor: "homepage".into(),
            incident_id: "homepage:1767322740000".into(),
            at,
            since: Some(since),
            check: Some("http".into()),
            failures: vec![FailedCondition {
                location: "local".into(),
                operand: "total".into(),
                op: ">".into(),
                expected: "1000ms".into(),
                actual: "1430ms".into(),
                text: "total 1430ms > 1000ms".into(),
                topic: None,
            }],
            message: None,
            columns: [
                "status", "dns", "connect", "tls", "wait", "download", "total",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            locations: vec![LocationRow {
                location: "local".into(),
                ok: false,
                metrics: vec![
                    Metric::new("status", 200.0, Unit::Count),
                    ms("dns", 12.0),
                    ms("connect", 27.0),
                    ms("tls", 55.0),
                    ms("wait", 1319.0),
                    ms("download", 17.0),
                    ms("total", 1430.0),
                ],
                error: None,
                ..LocationRow::default()
            }],
            url: Some("https://www.example.com/".into()),
            timezone: Some("Asia/Shanghai".into()),
            notes: vec![
                "watchpost could not run 2 checks since 2026-01-02 10:50:00 +08:00: \
                         too many open files"
                    .into(),
            ],
        };
        let mut out: Vec<Alert> = [AlertKind::Down, AlertKind::Reminder, AlertKind::Resolved]
            .into_iter()
            .map(|kind| Alert {
                kind,
                ..base.clone()
            })
            .collect();
        let mut test = Alert::test("ops", Some("hello".into()), at);
        test.timezone = base.timezone.clone();
        out.push(test);
        out
    }
}

/// The variables a template sees (see the module docs).
pub fn context(alert: &Alert, locale: Locale) -> Value {
    Value::from(variables(alert, locale))
}

/// [`context`], by name.
fn variables(alert: &Alert, locale: Locale) -> BTreeMap<String, Value> {
    let payload =
        serde_json::to_value(WebhookPayload::new(alert, locale)).expect("the payload serializes");
    let mut map: BTreeMap<String, Value> = match payload {
        serde_json::Value::Object(fields) => fields
            .into_iter()
            .map(|(k, v)| (k, Value::from_serialize(&v)))
            .collect(),
        _ => BTreeMap::new(),
    };
    let mut failures: Vec<FailedCondition> = alert.failures.clone();
    if alert.kind == AlertKind::Test {
        // As in version 1, a test alert's message is its one "failure".
        if let Some(m) = alert.message.as_ref().filter(|m| !m.trim().is_empty()) {
            failures.insert(
                0,
                FailedCondition {
                    actual: m.clone(),
                    text: m.clone(),
                    ..FailedCondition::default()
                },
            );
        }
    }
    map.insert(
        "failures".into(),
        Value::from(
            failures
                .into_iter()
                .map(|f| Value::from_object(Failure(f)))
                .collect::<Vec<_>>(),
        ),
    );
    map.insert("summary".into(), alert.summary(locale).into());
    map.insert("status".into(), alert.status_word(locale).into());
    map.insert("at_local".into(), alert.at_local().into());
    map.insert("since_local".into(), Value::from(alert.since_local()));
    map
}

/// A failed condition in a template: its fields as attributes, printed as its line.
#[derive(Debug)]
struct Failure(FailedCondition);

impl Object for Failure {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let f = &self.0;
        let field = match key.as_str()? {
            "location" => &f.location,
            "operand" => &f.operand,
            "op" => &f.op,
            "expected" => &f.expected,
            "actual" => &f.actual,
            "text" => &f.text,
            "topic" => return Some(Value::from(f.topic.clone())),
            _ => return None,
        };
        Some(Value::from(field.as_str()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // `topic` only where there is one, as in the webhook's failure objects.
        const FIELDS: [&str; 7] = [
            "location", "operand", "op", "expected", "actual", "text", "topic",
        ];
        let n = if self.0.topic.is_some() { 7 } else { 6 };
        Enumerator::Str(&FIELDS[..n])
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.line())
    }
}

/// Every variable the template reads must be one of [`context`]'s (or a global such as
/// `range`): a misspelt name is an error even where Jinja would let an undefined value pass
/// silently (`{{ monitr|length }}`, `{% if monitr is defined %}`).
fn check_variables(env: &Environment<'static>, source: &str) -> Result<(), String> {
    let template = env.get_template(NAME).map_err(|e| describe(&e))?;
    let sample = variables(&Template::samples()[0], Locale::En);
    let known = |name: &str| {
        sample.contains_key(name)
            || env.globals().any(|(g, _)| g == name)
            || matches!(
                name,
                "loop" | "self" | "super" | "caller" | "varargs" | "kwargs"
            )
    };
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !known(name))
        .collect();
    // Report the one that comes first in the text.
    unknown.sort_by_key(|name| (first_use(source, name), name.clone()));
    match unknown.first() {
        None => Ok(()),
        Some(name) => {
            let line = first_use(source, name);
            let known: Vec<&str> = sample.keys().map(String::as_str).collect();
            Err(format!(
                "line {line}: undefined variable `{name}` (the variables are {})",
                known.join(", ")
            ))
        }
    }
}

/// The line (1-based) where `name` is first used as a word inside a `{{ }}` or `{% %}` tag.
fn first_use(source: &str, name: &str) -> usize {
    let bytes = source.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut in_tag = false;
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if !in_tag && (rest.starts_with(b"{{") || rest.starts_with(b"{%")) {
            in_tag = true;
            i += 2;
            continue;
        }
        if in_tag && (rest.starts_with(b"}}") || rest.starts_with(b"%}")) {
            in_tag = false;
            i += 2;
            continue;
        }
        if bytes[i] == b'\n' {
            line += 1;
        }
        if in_tag
            && rest.starts_with(name.as_bytes())
            && (i == 0 || !ident(bytes[i - 1]))
            && bytes.get(i + name.len()).is_none_or(|b| !ident(*b))
        {
            return line;
        }
        i += 1;
    }
    1
}

/// `tojson`, failing on an undefined value instead of writing `null` (which would hide a
/// misspelt attribute such as `{{ l.locaton|tojson }}`).
fn tojson(
    value: &minijinja::Value,
    indent: Option<minijinja::Value>,
    args: minijinja::value::Kwargs,
) -> Result<minijinja::Value, minijinja::Error> {
    if value.is_undefined() {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::UndefinedError,
            "tojson was given an undefined value (a misspelt variable or attribute?)",
        ));
    }
    minijinja::filters::tojson(value, indent, args)
}

/// `truncate(n)`: at most `n` characters; when cut, the last is `…`.
fn truncate(value: String, n: usize) -> String {
    if value.chars().count() <= n {
        return value;
    }
    if n == 0 {
        return String::new();
    }
    let mut out: String = value.chars().take(n - 1).collect();
    out.push('…');
    out
}

/// An error with its line, and the reason's chain, on one line.
fn describe(e: &minijinja::Error) -> String {
    let mut text = match e.line() {
        Some(line) => format!("line {line}: {}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(detail) = e.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> Alert {
        Template::samples().remove(0)
    }

    #[test]
    fn renders_fields_in_both_languages() {
        let t = Template::compile(
            "{{ status }} {{ monitor }} {{ kind }} {{ check }} {{ failures[0] }} \
             {% for l in locations %}{% for m in l.metrics %}{{ m.name }}={{ m.value }} {% endfor %}{% endfor %}",
            "t",
        )
        .unwrap();
        assert_eq!(
            t.render(&down(), Locale::En).unwrap(),
            "DOWN homepage down http local: total 1430ms > 1000ms status=200.0 dns=12.0 \
             connect=27.0 tls=55.0 wait=1319.0 download=17.0 total=1430.0 "
        );
        assert!(
            t.render(&down(), Locale::ZhCn)
                .unwrap()
                .starts_with("故障 homepage down http local: total 1430ms > 1000ms status=200.0")
        );
        let t = Template::compile("{{ summary }}", "t").unwrap();
        assert_eq!(t.render(&down(), Locale::En).unwrap(), "homepage is DOWN.");
    }

    #[test]
    fn failures_are_objects_that_print_as_their_line() {
        let t = Template::compile(
            "{{ failures[0].actual }}|{{ failures[0].expected }}|{{ failures[0].operand }}|\
             {{ failures[0].op }}|{{ failures[0].location }}|{{ failures[0].text }}|\
             {{ failures|join('; ') }}|{{ failures[0]|truncate(9) }}",
            "t",
        )
        .unwrap();
        assert_eq!(
            t.render(&down(), Locale::En).unwrap(),
            "1430ms|1000ms|total|>|local|total 1430ms > 1000ms|local: total 1430ms > 1000ms|local: t…"
        );
        let t = Template::compile("{{ failures|tojson }}", "t").unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&t.render(&down(), Locale::En).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"location": "local", "operand": "total", "op": ">",
                "expected": "1000ms", "actual": "1430ms", "text": "total 1430ms > 1000ms"}])
        );
        // A misspelt attribute is an error, found when the template is built.
        let e = Template::compile("{{ failures[0].actul }}", "t").unwrap_err();
        assert!(e.0.contains("undefined"), "{e}");
        // A test alert's message is its one failure, as before.
        let t = Template::compile(
            "{{ failures[0] }}/{{ failures[0].actual }}/{{ message }}",
            "t",
        )
        .unwrap();
        let test = Alert::test("ops", Some("hello".into()), Utc::now());
        assert_eq!(t.render(&test, Locale::En).unwrap(), "hello/hello/hello");
    }

    #[test]
    fn json_bodies_escape_with_tojson() {
        let t = Template::compile(
            r#"{"msg": {{ title|tojson }}, "since": {{ since|tojson }}, "n": {{ locations|length }}}"#,
            "t",
        )
        .unwrap();
        let mut a = down();
        a.monitor = "a \"quoted\" <name>".into();
        let out = t.render(&a, Locale::En).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["msg"], "[DOWN] a \"quoted\" <name>");
        assert_eq!(v["since"], "2026-01-02T02:59:00Z");
        assert_eq!(v["n"], 1);
    }

    #[test]
    fn mistakes_are_config_errors_with_a_line() {
        let e = Template::compile("ok\n{{ monitr }}", "webhook: template").unwrap_err();
        assert!(
            e.0.starts_with("webhook: template: line 2: undefined variable `monitr`"),
            "{e}"
        );
        // Test alerts have no locations: a template must not assume one.
        let e = Template::compile("{{ locations[0].location }}", "x").unwrap_err();
        assert!(e.0.contains("sample test alert"), "{e}");
        let e = Template::compile("{% if %}", "webhook: template").unwrap_err();
        assert!(
            e.0.starts_with("webhook: template: line 1: syntax error"),
            "{e}"
        );
        let e = Template::compile("{{ monitor|nosuchfilter }}", "x").unwrap_err();
        assert!(
            e.0.contains("nosuchfilter") || e.0.contains("unknown filter"),
            "{e}"
        );
    }

    #[test]
    fn undefined_names_fail_wherever_they_are_used() {
        // Each of these rendered `null`, `0` or nothing before.
        for (source, line) in [
            ("{{ monitr|tojson }}", 1),
            ("{\"a\": 1,\n \"m\": {{ monitr | tojson }}}", 2),
            ("{{ monitr|length }}", 1),
            ("{{ monitr|default('x') }}", 1),
            ("x\ny\n{% if monitr is defined %}a{% endif %}", 3),
            (
                "{% for f in failures %}{{ f }}{% endfor %}\n{{ [monitor, monitr]|join(',') }}",
                2,
            ),
        ] {
            let e = Template::compile(source, "webhook: template").unwrap_err();
            assert!(
                e.0.starts_with(&format!(
                    "webhook: template: line {line}: undefined variable `monitr`"
                )),
                "{source:?}: {e}"
            );
            assert!(e.0.contains("monitor, "), "lists the variables: {e}");
        }
        // A misspelt attribute given to tojson fails too, with its line.
        let e = Template::compile(
            "[\n{% for l in locations %}{{ l.locaton|tojson }}{% endfor %}]",
            "webhook: template",
        )
        .unwrap_err();
        assert!(
            e.0.starts_with("webhook: template: rendering a sample down alert: line 2: undefined"),
            "{e}"
        );
        assert!(e.0.contains("tojson"), "{e}");
        // Locals and globals are not undefined; a word in the text outside tags is no use.
        let t = Template::compile(
            "monitr: {% set n = 1 %}{% for i in range(2) %}{{ i + n }}{{ loop.index }}{% endfor %}",
            "t",
        )
        .unwrap();
        assert_eq!(t.render(&down(), Locale::En).unwrap(), "monitr: 1122");
    }

    #[test]
    fn line_of_first_use() {
        assert_eq!(first_use("monitr\n{{ monitr }}", "monitr"), 2);
        assert_eq!(first_use("{{ monitor }}\n{{ x.monitr }}", "monitr"), 2);
        assert_eq!(first_use("{{ monitrs }}\n{%\n if monitr %}", "monitr"), 3);
        assert_eq!(first_use("监控 {{ 名 }}\n{{ monitr }}", "monitr"), 2);
    }

    #[test]
    fn local_times_and_notes_are_variables() {
        let t = Template::compile(
            "{{ at_local }}|{{ since_local }}|{{ at }}|{% for n in notes %}{{ n }}{% endfor %}",
            "t",
        )
        .unwrap();
        let out = t.render(&down(), Locale::En).unwrap();
        assert_eq!(
            out,
            "2026-01-02 11:04:05 +08:00|2026-01-02 10:59:00 +08:00|2026-01-02T03:04:05Z|\
             watchpost could not run 2 checks since 2026-01-02 10:50:00 +08:00: too many open files"
        );
        let mut utc = down();
        utc.timezone = None;
        utc.notes.clear();
        utc.since = None;
        let t = Template::compile(
            "{{ at_local }} {{ since_local|tojson }} {{ notes|tojson }}",
            "t",
        )
        .unwrap();
        assert_eq!(
            t.render(&utc, Locale::En).unwrap(),
            "2026-01-02 03:04:05 +00:00 null []"
        );
    }

    #[test]
    fn truncates_by_characters() {
        assert_eq!(truncate("监控首页故障".into(), 4), "监控首…");
        assert_eq!(truncate("abc".into(), 3), "abc");
        assert_eq!(truncate("abc".into(), 0), "");
        let t = Template::compile("{{ monitor|truncate(5) }}", "t").unwrap();
        assert_eq!(t.render(&down(), Locale::En).unwrap(), "home…");
    }
}
