//! Operator-written templates of an alert: the webhook's `template:` body and Tencent SMS's
//! `params:`. Jinja syntax (minijinja), strict: a misspelt variable is an error, found at
//! config time because every template is test-rendered against sample alerts of every kind in
//! both languages when the channel is built.
//!
//! Variables are the fields of the webhook payload ([`crate::WebhookPayload`]): `version`,
//! `kind` (`down|reminder|resolved|test`), `monitor`, `incident_id`, `idempotency_key`, `at`,
//! `since` (RFC 3339, or none), `locale`, `title`, `text` (plain rendering), `markdown`, `url`,
//! `failures` (list of text), `locations` (list of `{location, ok, status, total_ms,
//! connect_ms, download_ms, error}`), plus `summary` (one sentence) and `status`
//! (`DOWN`/`RESOLVED`/… or `故障`/`恢复`/…, in the alert's language).
//!
//! Filters besides Jinja's built-ins: `tojson` (a JSON value, for JSON bodies) and
//! `truncate(n)` (at most `n` characters, the last one `…` when cut).
//!
//! ```
//! use watchpost_channels::{Alert, Locale, template::Template};
//! let t = Template::compile("{{ status }}: {{ monitor }}", "test").unwrap();
//! let alert = Alert::test("ops-hook", None, chrono::Utc::now());
//! assert_eq!(t.render(&alert, Locale::En).unwrap(), "TEST: ops-hook");
//! assert!(Template::compile("{{ monitr }}", "test").unwrap_err().0.contains("undefined"));
//! ```

use crate::message::{Alert, AlertKind, Locale, LocationRow};
use crate::{ConfigError, WebhookPayload};
use chrono::{TimeZone, Utc};
use minijinja::{Environment, UndefinedBehavior};

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
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| ConfigError(format!("{setting}: {}", describe(&e))))?;
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
        let base = Alert {
            kind: AlertKind::Down,
            monitor: "homepage".into(),
            incident_id: "homepage:1767322740000".into(),
            at,
            since: Some(since),
            failures: vec!["total 1430ms > 1000ms".into()],
            locations: vec![LocationRow {
                location: "local".into(),
                ok: false,
                status: Some(200),
                total_ms: Some(1430.0),
                connect_ms: Some(27.0),
                download_ms: Some(17.0),
                error: None,
            }],
            url: Some("https://www.example.com/".into()),
        };
        let mut out: Vec<Alert> = [AlertKind::Down, AlertKind::Reminder, AlertKind::Resolved]
            .into_iter()
            .map(|kind| Alert {
                kind,
                ..base.clone()
            })
            .collect();
        out.push(Alert::test("ops", Some("hello".into()), at));
        out
    }
}

/// The variables a template sees (see the module docs).
pub fn context(alert: &Alert, locale: Locale) -> serde_json::Value {
    let mut value =
        serde_json::to_value(WebhookPayload::new(alert, locale)).expect("the payload serializes");
    if let Some(map) = value.as_object_mut() {
        map.insert("summary".into(), alert.summary(locale).into());
        map.insert("status".into(), alert.status_word(locale).into());
    }
    value
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
            "{{ status }} {{ monitor }} {{ kind }} {{ failures[0] }} \
             {% for l in locations %}{{ l.total_ms }}{% endfor %}",
            "t",
        )
        .unwrap();
        assert_eq!(
            t.render(&down(), Locale::En).unwrap(),
            "DOWN homepage down total 1430ms > 1000ms 1430.0"
        );
        assert_eq!(
            t.render(&down(), Locale::ZhCn).unwrap(),
            "故障 homepage down total 1430ms > 1000ms 1430.0"
        );
        let t = Template::compile("{{ summary }}", "t").unwrap();
        assert_eq!(t.render(&down(), Locale::En).unwrap(), "homepage is DOWN.");
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
            e.0.starts_with("webhook: template: rendering a sample down alert: line 2: undefined"),
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
    fn truncates_by_characters() {
        assert_eq!(truncate("监控首页故障".into(), 4), "监控首…");
        assert_eq!(truncate("abc".into(), 3), "abc");
        assert_eq!(truncate("abc".into(), 0), "");
        let t = Template::compile("{{ monitor|truncate(5) }}", "t").unwrap();
        assert_eq!(t.render(&down(), Locale::En).unwrap(), "home…");
    }
}
