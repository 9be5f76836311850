//! `type: alertmanager`: push alerts to a Prometheus Alertmanager (API v2), which then
//! groups, silences, inhibits and routes them like any other alert.
//!
//! ```yaml
//! channels:
//!   am:
//!     type: alertmanager
//!     url: http://alertmanager:9093       # the base URL; .../api/v2/alerts is accepted too
//!     labels: {team: web, severity: page} # extra static labels (severity defaults to critical)
//!     headers: {Authorization: "Bearer ${AM_TOKEN}"}   # optional, e.g. behind a proxy
//!     ends_after: 24h                     # default 24h; see "Firing and resolving" below
//!     generator_url: https://watchpost.example.com/    # optional back-link in every alert
//!     timeout: 10s                        # default 10s, the whole request
//!     ca_file: /etc/watchpost/private-ca.pem
//! ```
//!
//! # Request
//!
//! `POST {url}/api/v2/alerts` (a `url` already ending in `/api/v2/alerts` is used as is; a
//! path prefix such as `http://host/alertmanager` is kept) with `Content-Type:
//! application/json` and the configured headers; the body is an array with one object per
//! alert — several alerts sent together (see [`crate::Channel::merges`]) go in one request:
//!
//! ```json
//! [{"labels": {"alertname": "watchpost", "monitor": "homepage", "severity": "critical",
//!              "source": "watchpost", "team": "web"},
//!   "annotations": {"title": "[DOWN] homepage", "summary": "homepage is DOWN.",
//!                   "description": "local: total 1430ms > 1000ms",
//!                   "url": "https://www.example.com/", "incident": "homepage:1767322800000",
//!                   "locations": "Location  Result  Status  DNS ...  Total\nlocal     FAIL       200  12.0ms ...  1430ms"},
//!   "startsAt": "2026-01-02T03:00:00Z", "endsAt": "2026-01-03T03:00:00Z",
//!   "generatorURL": "https://watchpost.example.com/"}]
//! ```
//!
//! Labels identify an alert to Alertmanager, so they are the same for every notification
//! of a monitor: `alertname` (`watchpost`, or `watchpost_test` for `watchpost notify`),
//! `monitor`, `severity` (`critical` unless `labels` sets it), `source` (`watchpost` unless
//! `labels` sets it) and the static `labels`. The static labels must be Prometheus label
//! names (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`, which is reserved) with non-empty
//! values (Alertmanager drops empty ones), and may not replace `alertname` or `monitor`.
//! Annotations carry the text, in the configured locale: `title`, `summary`, `description`
//! (the failing conditions, one a line, `LOCATION: TEXT`), `url` (what the monitor checks),
//! `incident`, `locations` (the aligned per-location table of the message model: verdict and
//! the metrics of the check kind — every HTTP phase, a tls check's `Cert days`, ...) and
//! `notes` (watchpost's own remarks, one
//! `Note: …` a line); empty ones are left out. Times in annotations are shown in the
//! configured `timezone`; `startsAt` and `endsAt` are RFC 3339 UTC.
//!
//! # Firing and resolving
//!
//! `startsAt` is when the incident opened. Alertmanager expects a client to re-send a
//! firing alert every minute or so; one whose `endsAt` is missing is resolved by
//! Alertmanager `resolve_timeout` (default 5m) after it was last received. watchpost sends
//! only on changes and on `repeat`, so it always sets `endsAt`:
//!
//! - down and reminder: `endsAt` = the time of sending + `ends_after` (default 24h). Each
//!   reminder moves it on. If watchpost stops (or loses the incident), Alertmanager resolves
//!   the alert `ends_after` after the last notification instead of keeping it forever; set
//!   the monitor's `repeat` shorter than `ends_after` so that a long incident stays firing.
//! - resolved: `endsAt` = the time of recovery, which resolves the alert at once.
//! - a test alert (`watchpost notify`): `alertname: watchpost_test`, `endsAt` = sending + 5m,
//!   so it goes away by itself.
//!
//! # Answer
//!
//! 2xx: delivered. 400 (Alertmanager's validation, e.g. an invalid label) and 422 (the
//! request didn't match the API schema): fatal, with Alertmanager's message. 408, 429 and
//! 5xx: retryable (honouring `Retry-After`). Other statuses (401/403 from a proxy, 404 for a
//! wrong path): fatal. Network errors and timeouts: retryable. Alertmanager has no rate
//! limit of its own; none is applied.

use crate::http::{
    Answer, Endpoint, Redact, configured_headers, default_timeout, redact_url, redacted_headers,
    timeout,
};
use crate::message::model::FactKind;
use crate::message::{Alert, AlertKind, Locale, plain};
use crate::{ConfigError, Delivery, SendError};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use http::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The path alerts are posted to, under the base URL.
pub const ALERTS_PATH: &str = "/api/v2/alerts";
/// The default `ends_after`.
pub const DEFAULT_ENDS_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long a test alert stays firing.
pub const TEST_ENDS_AFTER: Duration = Duration::from_secs(5 * 60);
/// Labels watchpost sets that configured `labels` may not replace.
const FIXED_LABELS: &[&str] = &["alertname", "monitor"];
/// Headers the channel sets itself.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "content-type",
];

fn default_ends_after() -> Duration {
    DEFAULT_ENDS_AFTER
}

/// An `ends_after:` setting: a duration of at least a minute.
fn ends_after<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    let value = watchpost_units::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("ends_after: {e}")))?;
    if value < Duration::from_secs(60) {
        return Err(serde::de::Error::custom(
            "ends_after: must be at least 1m (Alertmanager would resolve the alert at once)",
        ));
    }
    Ok(value)
}

/// `{type: alertmanager, url, labels, headers, ends_after, generator_url, timeout, ca_file}`.
/// `Debug` hides header values and the URL's path and query.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Alertmanager's base URL (`http://alertmanager:9093`), or the full alerts URL.
    pub url: String,
    /// Extra static labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Extra request headers (e.g. `Authorization` for a proxy in front).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long after a down or reminder notification Alertmanager keeps the alert firing
    /// without hearing from watchpost again.
    #[serde(default = "default_ends_after", deserialize_with = "ends_after")]
    pub ends_after: Duration,
    /// `generatorURL` of every alert: a link back to watchpost (its dashboard).
    #[serde(default)]
    pub generator_url: Option<String>,
    /// The whole request, from connecting to the last byte of the answer.
    #[serde(default = "default_timeout", deserialize_with = "timeout")]
    pub timeout: Duration,
    /// PEM certificates to trust besides the webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for AlertmanagerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertmanagerConfig")
            .field("url", &redact_url(&self.url))
            .field("labels", &self.labels)
            .field("headers", &redacted_headers(&self.headers))
            .field("ends_after", &self.ends_after)
            .field("generator_url", &self.generator_url)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// A built Alertmanager channel.
pub struct Alertmanager {
    endpoint: Endpoint,
    headers: HeaderMap,
    labels: BTreeMap<String, String>,
    ends_after: TimeDelta,
    generator_url: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for Alertmanager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alertmanager")
            .field("to", &self.endpoint.shown())
            .field("labels", &self.labels)
            .field("ends_after", &self.ends_after)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Alertmanager {
    /// Check `config` and build the channel: the URL (absolute `http(s)`, a host, no user
    /// info), label names and values, headers, `generator_url`, `ca_file`.
    pub fn new(config: &AlertmanagerConfig) -> Result<Alertmanager, ConfigError> {
        let url = alerts_url(&config.url)?;
        let endpoint = Endpoint::new(&url, config.ca_file.as_deref(), "alertmanager: url")?;
        let headers = configured_headers(&config.headers, RESERVED_HEADERS, "alertmanager")?;
        let endpoint = endpoint.with_secrets(config.headers.values());
        for (name, value) in &config.labels {
            check_label(name, value)?;
        }
        if let Some(g) = &config.generator_url {
            match url::Url::parse(g) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => {
                    return Err(ConfigError(
                        "alertmanager: generator_url: not an absolute http(s) URL".into(),
                    ));
                }
            }
        }
        Ok(Alertmanager {
            endpoint,
            headers,
            labels: config.labels.clone(),
            ends_after: TimeDelta::from_std(config.ends_after)
                .map_err(|_| ConfigError("alertmanager: ends_after: too long".into()))?,
            generator_url: config.generator_url.clone(),
            timeout: config.timeout,
        })
    }

    /// The request body for `alerts`, as if sent at `now`.
    pub fn body(&self, alerts: &[Alert], locale: Locale, now: DateTime<Utc>) -> Value {
        Value::Array(
            alerts
                .iter()
                .map(|a| self.alert_json(a, locale, now))
                .collect(),
        )
    }

    fn alert_json(&self, alert: &Alert, locale: Locale, now: DateTime<Utc>) -> Value {
        let test = alert.kind == AlertKind::Test;
        let mut labels = Map::new();
        let name = if test { "watchpost_test" } else { "watchpost" };
        labels.insert("alertname".into(), json!(name));
        labels.insert("monitor".into(), json!(alert.monitor));
        labels.insert("severity".into(), json!("critical"));
        labels.insert("source".into(), json!("watchpost"));
        for (k, v) in &self.labels {
            labels.insert(k.clone(), json!(v));
        }

        let mut annotations = Map::new();
        let mut note = |key: &str, value: String| {
            if !value.trim().is_empty() {
                annotations.insert(key.to_string(), json!(value));
            }
        };
        let m = alert.model(locale);
        note("title", m.title.clone());
        note("summary", m.summary.clone());
        note(
            "description",
            m.failures
                .as_ref()
                .map(|f| f.items.join("\n"))
                .unwrap_or_default(),
        );
        for fact in &m.facts {
            match fact.kind {
                FactKind::Url => note("url", fact.value.clone()),
                FactKind::Code if !test => note("incident", fact.value.clone()),
                _ => {}
            }
        }
        note(
            "locations",
            m.table
                .as_ref()
                .map(|t| plain::table_lines(t).join("\n"))
                .unwrap_or_default(),
        );
        note("notes", alert.note_lines(locale).join("\n"));

        let starts = alert.since.unwrap_or(alert.at).min(alert.at);
        let sent = alert.at.max(now);
        let ends = match alert.kind {
            AlertKind::Resolved => alert.at,
            AlertKind::Test => sent + TimeDelta::from_std(TEST_ENDS_AFTER).expect("5 minutes"),
            AlertKind::Down | AlertKind::Reminder => sent + self.ends_after,
        };
        let mut out = json!({
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(starts),
            "endsAt": rfc3339(ends),
        });
        if let Some(g) = &self.generator_url {
            out["generatorURL"] = json!(g);
        }
        out
    }

    /// POST `alerts` (at least one) in one request and classify the answer.
    pub async fn send(&self, alerts: &[Alert], locale: Locale) -> Result<Delivery, SendError> {
        if alerts.is_empty() {
            return Ok(Delivery::default());
        }
        let body = serde_json::to_vec(&self.body(alerts, locale, Utc::now()))
            .expect("a JSON value serializes");
        let answer = self
            .endpoint
            .post(None, &self.headers, body, self.timeout)
            .await?;
        classify(&answer)
    }
}

impl Alertmanager {
    /// The secrets masked in texts from Alertmanager's answers: the URL's path and query,
    /// the configured header values.
    pub fn redact(&self) -> &Redact {
        self.endpoint.redact()
    }
}

/// The alerts URL for a configured `url`.
fn alerts_url(configured: &str) -> Result<String, ConfigError> {
    let mut url = url::Url::parse(configured)
        .map_err(|e| ConfigError(format!("alertmanager: url: not a valid URL ({e})")))?;
    if url.fragment().is_some() {
        return Err(ConfigError(
            "alertmanager: url: must not have a fragment".into(),
        ));
    }
    let path = url.path().trim_end_matches('/').to_string();
    if path.ends_with("/api/v1/alerts") {
        return Err(ConfigError(
            "alertmanager: url: API v1 was removed in Alertmanager 0.27; give the base URL \
             (http://alertmanager:9093), watchpost posts to /api/v2/alerts"
                .into(),
        ));
    }
    if !path.ends_with(ALERTS_PATH) {
        url.set_path(&format!("{path}{ALERTS_PATH}"));
    } else {
        url.set_path(&path);
    }
    Ok(url.to_string())
}

/// A static label: a Prometheus label name, not reserved, not replacing a fixed label, with
/// a value.
fn check_label(name: &str, value: &str) -> Result<(), ConfigError> {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(ConfigError(format!(
            "alertmanager: labels: {name:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
        )));
    }
    if name.starts_with("__") {
        return Err(ConfigError(format!(
            "alertmanager: labels: {name}: names starting with __ are reserved for Prometheus"
        )));
    }
    if FIXED_LABELS.contains(&name) {
        return Err(ConfigError(format!(
            "alertmanager: labels: {name} is set by watchpost and can't be configured"
        )));
    }
    if value.is_empty() {
        return Err(ConfigError(format!(
            "alertmanager: labels: {name}: the value is empty (Alertmanager drops empty labels; \
             leave it out)"
        )));
    }
    Ok(())
}

/// Classify Alertmanager's answer (see the module docs).
fn classify(answer: &Answer) -> Result<Delivery, SendError> {
    let status = answer.status;
    let code = status.as_u16();
    if status.is_success() {
        return Ok(answer.delivery());
    }
    // Alertmanager's errors are a JSON string.
    let detail = match answer.json() {
        Some(Value::String(s)) => answer.text(&s),
        _ => answer.short_body(),
    };
    let mut message = format!("alertmanager: HTTP {status}");
    if !detail.is_empty() {
        message.push_str(": ");
        message.push_str(&detail);
    }
    if code == 408 || code == 429 || status.is_server_error() {
        Err(SendError::Retryable {
            message,
            retry_after: answer.retry_after(),
        })
    } else {
        Err(SendError::fatal(message))
    }
}

/// RFC 3339 in UTC, fractions of a second only when there are any.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for (given, want) in [
            ("http://am:9093", "http://am:9093/api/v2/alerts"),
            ("http://am:9093/", "http://am:9093/api/v2/alerts"),
            (
                "http://am:9093/api/v2/alerts",
                "http://am:9093/api/v2/alerts",
            ),
            (
                "http://am:9093/api/v2/alerts/",
                "http://am:9093/api/v2/alerts",
            ),
            (
                "https://h/alertmanager",
                "https://h/alertmanager/api/v2/alerts",
            ),
            (
                "https://h/am/?tenant=a",
                "https://h/am/api/v2/alerts?tenant=a",
            ),
        ] {
            assert_eq!(alerts_url(given).unwrap(), want, "{given}");
        }
        let e = alerts_url("http://am:9093/api/v1/alerts").unwrap_err();
        assert!(e.0.contains("API v1 was removed"), "{e}");
        assert!(alerts_url("nope").is_err());
    }

    #[test]
    fn labels() {
        check_label("team", "web").unwrap();
        check_label("_x9", "v").unwrap();
        check_label("severity", "warning").unwrap();
        for (name, want) in [
            ("9team", "is not a label name"),
            ("team-name", "is not a label name"),
            ("", "is not a label name"),
            ("служба", "is not a label name"),
            ("__name__", "reserved for Prometheus"),
            ("alertname", "set by watchpost"),
            ("monitor", "set by watchpost"),
        ] {
            let e = check_label(name, "v").unwrap_err();
            assert!(e.0.contains(want), "{name}: {e}");
        }
        assert!(check_label("team", "").unwrap_err().0.contains("empty"));
    }
}
