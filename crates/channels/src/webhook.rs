//! `type: webhook`: a JSON POST of the alert to any HTTP(S) endpoint.
//!
//! ```yaml
//! channels:
//!   ops-hook:
//!     type: webhook
//!     url: "https://hooks.example.com/watchpost"   # `webhook:` is accepted as well
//!     headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
//!     timeout: 10s                                  # default 10s, the whole request
//!     ca_file: /etc/watchpost/private-ca.pem        # optional, trusted besides the web PKI
//!     template: |                                   # optional: your own body (see below)
//!       {"text": {{ title|tojson }}, "service": "web"}
//!     content_type: application/json                # of the templated body; the default
//! ```
//!
//! `url` is the canonical key; `webhook` is an alias, because every HTTP channel's address can
//! be given as `webhook:` (README, "Channels"), so a wecom/dingtalk/... channel can be turned into a
//! plain webhook by changing only its `type`. Giving both is an error.
//!
//! # Request
//!
//! `POST` with `Content-Type: application/json`, `User-Agent: watchpost/VERSION`,
//! `Idempotency-Key: <idempotency_key>` and the configured headers; the body is a
//! [`WebhookPayload`], version 2:
//!
//! ```json
//! {"version":2,"kind":"down","monitor":"homepage","incident_id":"homepage:1767322800000",
//!  "idempotency_key":"homepage:1767322800000:down:1767322800000",
//!  "at":"2026-01-02T03:00:00Z","since":"2026-01-02T03:00:00Z","locale":"en",
//!  "title":"[DOWN] homepage","text":"<plain rendering>","markdown":"<markdown rendering>",
//!  "check":"http","url":"https://www.example.com/","message":null,
//!  "failures":[{"location":"local","operand":"total","op":">","expected":"1000ms",
//!               "actual":"1430ms","text":"total 1430ms > 1000ms"}],
//!  "columns":["status","dns","connect","tls","wait","download","total"],
//!  "locations":[{"location":"local","ok":false,"error":null,
//!                "metrics":[{"name":"status","value":200.0,"unit":"count"},
//!                           {"name":"dns","value":1.2,"unit":"ms"}, ...,
//!                           {"name":"total","value":1430.0,"unit":"ms"}]}],
//!  "notes":[]}
//! ```
//!
//! `kind` is `down`, `reminder`, `resolved` or `test`; `at` and `since` are RFC 3339 UTC (for
//! machines; `text` and `markdown` show times in the configured `timezone`), `since` null
//! when unknown. `check` is the monitor's check kind (`http`, `tcp`, `tls`, `dns`; null for a
//! test alert). Each of `failures` is a condition that failed: where (`location`), what
//! (`operand`, `op`, `expected`), what was observed (`actual`: `1430ms`, `503`, `missing`) and
//! the sentence (`text`); a probe error is `{"operand":"error","op":"","expected":"",
//! "actual":"connect refused: ...", "text": the same}`. A test alert (`watchpost notify`) has
//! its message in `message` and no failures. Each location carries every metric its check
//! measured, with its unit (`ms`, `bytes`, `bytes_per_sec`, `count`, `days`); `columns` names
//! the ones messages show. A probe location may also carry `region` and `isp` (when known)
//! and `"missing": true` (it did not report for this tick: `ok` false, no metrics); the
//! fields are left out when unset. `notes` lists watchpost's own remarks about the alert (e.g. checks
//! it could not run), empty when there are none. The key is the same on every retry of an
//! alert, so a receiver can drop duplicates.
//!
//! Version 1 (the release before) had `failures` as a list of strings and locations as
//! `{location, ok, status, total_ms, connect_ms, download_ms, error}`.
//!
//! # Templates
//!
//! With `template:`, the body is the template rendered for the alert instead of the payload
//! above: Jinja syntax, with the payload's fields as variables plus `summary`, `status`,
//! `at_local` and `since_local` (the times as people read them, in the configured
//! `timezone`; see [`crate::template`]). Each of `failures` prints as its `text` (`{{
//! failures[0] }}` → `total 1430ms > 1000ms`, as with version 1's strings) and has the fields
//! above as attributes (`{{ failures[0].actual }}` → `1430ms`). A misspelt variable (wherever
//! it is used, filters and tests included) or a syntax error is a config error, found by
//! `watchpost validate`; when `content_type` is JSON (the default), the test rendering must
//! also be valid JSON, so use `|tojson` for strings. The `Idempotency-Key` header is sent
//! either way.
//!
//! # Answer
//!
//! 2xx: delivered. 408, 429 and 5xx: retryable (honouring a `Retry-After` in seconds). Any
//! other status (other 4xx, and 3xx: redirects are not followed): fatal. DNS, connect, TLS and
//! protocol errors, and no complete answer within `timeout`: retryable.
//!
//! Every send opens a new connection (alerts are rare; nothing idles between them) over
//! HTTP/1.1, with TLS verified against the webpki roots (plus `ca_file`). Error messages name
//! the scheme, host and port only: webhook paths and queries often carry secrets.

use crate::http::{
    Endpoint, Redact, configured_headers, default_timeout, redact_url, redacted_headers, timeout,
};
use crate::message::{Alert, AlertKind, FailedCondition, Locale, LocationRow};
use crate::template::Template;
use crate::{ConfigError, Delivery, SendError};
use chrono::{DateTime, Utc};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::http::DEFAULT_TIMEOUT;
/// The payload's `version`.
pub const PAYLOAD_VERSION: u32 = 2;
/// Headers the channel sets itself.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "idempotency-key",
];

/// `{type: webhook, url, headers, timeout, ca_file, template, content_type}`. `Debug` hides
/// header values and the URL's path and query (they hold tokens).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL to POST to. Key `url`, or `webhook`.
    #[serde(alias = "webhook")]
    pub url: String,
    /// Extra request headers (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The whole request, from connecting to the last byte of the answer: `10s`, `2500ms`.
    #[serde(default = "default_timeout", deserialize_with = "timeout")]
    pub timeout: Duration,
    /// PEM certificates to trust besides the webpki roots (a private gateway's CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A body template (Jinja) replacing the standard payload.
    #[serde(default)]
    pub template: Option<String>,
    /// The `Content-Type` of a templated body (default `application/json`).
    #[serde(default)]
    pub content_type: Option<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &redact_url(&self.url))
            .field("headers", &redacted_headers(&self.headers))
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("template", &self.template.as_ref().map(|_| "<template>"))
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// The JSON body of a webhook request (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookPayload<'a> {
    /// [`PAYLOAD_VERSION`]: bumped on an incompatible change.
    pub version: u32,
    pub kind: AlertKind,
    pub monitor: &'a str,
    pub incident_id: &'a str,
    /// [`Alert::idempotency_key`], also sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    pub at: DateTime<Utc>,
    pub since: Option<DateTime<Utc>>,
    /// The language of `title`, `text` and `markdown`.
    pub locale: Locale,
    /// [`Alert::title`].
    pub title: String,
    /// [`Alert::plain`].
    pub text: String,
    /// [`Alert::markdown`].
    pub markdown: String,
    /// [`Alert::check`]: `http`, `tcp`, `tls`, `dns`.
    pub check: Option<&'a str>,
    pub url: Option<&'a str>,
    /// [`Alert::message`]: a test alert's message.
    pub message: Option<&'a str>,
    /// The failed conditions, as data.
    pub failures: &'a [FailedCondition],
    /// [`Alert::columns`]: the metrics messages show as columns.
    pub columns: &'a [String],
    pub locations: &'a [LocationRow],
    /// [`Alert::notes`]: watchpost's own remarks (empty when none).
    pub notes: &'a [String],
}

impl<'a> WebhookPayload<'a> {
    pub fn new(alert: &'a Alert, locale: Locale) -> WebhookPayload<'a> {
        WebhookPayload {
            version: PAYLOAD_VERSION,
            kind: alert.kind,
            monitor: &alert.monitor,
            incident_id: &alert.incident_id,
            idempotency_key: alert.idempotency_key(),
            at: alert.at,
            since: alert.since,
            locale,
            title: alert.title(locale),
            text: alert.plain(locale),
            markdown: alert.markdown(locale),
            check: alert.check.as_deref(),
            url: alert.url.as_deref(),
            message: alert.message.as_deref(),
            failures: &alert.failures,
            columns: &alert.columns,
            locations: &alert.locations,
            notes: &alert.notes,
        }
    }
}

/// A built webhook channel: the URL parsed, headers checked, TLS configured, the template
/// compiled.
pub struct Webhook {
    endpoint: Endpoint,
    headers: HeaderMap,
    timeout: Duration,
    template: Option<Template>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("to", &self.endpoint.shown())
            .field("timeout", &self.timeout)
            .field("template", &self.template.is_some())
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Check `config` and build the channel: the URL must be absolute `http(s)` with a host
    /// and no user info (put credentials in `headers`), header names and values valid and not
    /// ones the channel sets itself, `ca_file` readable PEM, the template valid (and, for a
    /// JSON content type, rendering valid JSON).
    pub fn new(config: &WebhookConfig) -> Result<Webhook, ConfigError> {
        let endpoint = Endpoint::new(&config.url, config.ca_file.as_deref(), "webhook: url")?;
        let mut headers = configured_headers(&config.headers, RESERVED, "webhook")?;
        let endpoint = endpoint.with_secrets(config.headers.values());
        if config.content_type.is_some() && config.template.is_none() {
            return Err(ConfigError(
                "webhook: content_type: only applies with `template` (the standard payload is JSON)"
                    .into(),
            ));
        }
        let template = match &config.template {
            None => None,
            Some(source) => {
                let content_type = config.content_type.as_deref().unwrap_or("application/json");
                let value = HeaderValue::from_str(content_type).map_err(|_| {
                    ConfigError("webhook: content_type: not a valid header value".into())
                })?;
                let json = is_json(content_type);
                let template = Template::compile_checked(source, "webhook: template", |body| {
                    match serde_json::from_str::<serde_json::Value>(body) {
                        Err(e) if json => Err(format!(
                            "is not valid JSON ({e}); use `|tojson` for strings, or set \
                             content_type"
                        )),
                        _ => Ok(()),
                    }
                })?;
                headers.insert(CONTENT_TYPE, value);
                Some(template)
            }
        };
        Ok(Webhook {
            endpoint,
            headers,
            timeout: config.timeout,
            template,
        })
    }

    /// The body this channel posts for `alert`: the template's rendering, or the payload.
    pub fn body(&self, alert: &Alert, locale: Locale) -> Result<Vec<u8>, SendError> {
        match &self.template {
            Some(t) => t
                .render(alert, locale)
                .map(String::into_bytes)
                .map_err(|e| SendError::fatal(format!("webhook: template: {e}"))),
            None => Ok(serde_json::to_vec(&WebhookPayload::new(alert, locale))
                .expect("the payload serializes")),
        }
    }

    /// POST the alert (one attempt, one new connection) and classify the answer.
    pub async fn send(&self, alert: &Alert, locale: Locale) -> Result<Delivery, SendError> {
        let body = self.body(alert, locale)?;
        let key = HeaderValue::from_str(&alert.idempotency_key()).map_err(|_| {
            SendError::fatal("the alert's idempotency key is not a valid header value")
        })?;
        let mut headers = self.headers.clone();
        headers.insert(HeaderName::from_static("idempotency-key"), key);
        self.endpoint
            .post(None, &headers, body, self.timeout)
            .await?
            .by_status()
    }
}

impl Webhook {
    /// The secrets masked in texts from the answers: the URL's path and query, the
    /// configured header values.
    pub fn redact(&self) -> &Redact {
        self.endpoint.redact()
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            headers: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
            template: None,
            content_type: None,
        }
    }

    #[test]
    fn bad_settings_name_the_setting_not_the_secret() {
        let e = Webhook::new(&config("ftp://127.0.0.1/secret-key")).unwrap_err();
        assert!(e.0.starts_with("webhook: url: scheme \"ftp\""), "{e}");
        assert!(!e.0.contains("secret-key"), "{e}");
        let mut c = config("http://127.0.0.1/");
        c.headers.insert("Idempotency-Key".into(), "x".into());
        assert!(Webhook::new(&c).unwrap_err().0.contains("set by watchpost"));
        let mut c = config("https://127.0.0.1/");
        c.ca_file = Some("/nonexistent/ca.pem".into());
        let e = Webhook::new(&c).unwrap_err();
        assert!(
            e.0.starts_with("webhook: ca_file /nonexistent/ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let mut c = config("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRETKEY");
        c.headers
            .insert("Authorization".into(), "Bearer SECRETTOKEN".into());
        c.template = Some("{\"k\": \"SECRET-IN-TEMPLATE\"}".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("qyapi.weixin.qq.com:443"), "{shown}");
        assert!(shown.contains("Authorization"), "{shown}");
        let w = Webhook::new(&c).unwrap();
        assert!(!format!("{w:?}").contains("SECRET"));
    }

    #[test]
    fn templates_are_checked_when_built() {
        let mut c = config("http://127.0.0.1/");
        c.template = Some("{\"text\": {{ title|tojson }}}".into());
        let w = Webhook::new(&c).unwrap();
        let alert = Template::samples().remove(0);
        let body = w.body(&alert, Locale::En).unwrap();
        assert_eq!(body, b"{\"text\": \"[DOWN] homepage\"}");

        c.template = Some("{\"text\": {{ title }}}".into());
        let e = Webhook::new(&c).unwrap_err();
        assert!(
            e.0.contains("not valid JSON") && e.0.contains("tojson"),
            "{e}"
        );
        c.content_type = Some("text/plain; charset=utf-8".into());
        Webhook::new(&c).unwrap();

        c.template = Some("{{ nope }}".into());
        let e = Webhook::new(&c).unwrap_err();
        assert!(
            e.0.starts_with("webhook: template: line 1: undefined variable `nope`"),
            "{e}"
        );

        let mut c = config("http://127.0.0.1/");
        c.content_type = Some("text/plain".into());
        assert!(
            Webhook::new(&c)
                .unwrap_err()
                .0
                .contains("only applies with `template`")
        );
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/vnd.api+json"));
        assert!(!is_json("text/plain"));
    }
}
