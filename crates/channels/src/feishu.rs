//! `type: feishu`: a Feishu / Lark (飞书) custom group bot.
//!
//! ```yaml
//! channels:
//!   ops-feishu:
//!     type: feishu
//!     webhook: "https://open.feishu.cn/open-apis/bot/v2/hook/${FS_HOOK}"  # Lark: open.larksuite.com
//!     secret: "${FS_SECRET}"          # optional: the bot's signature secret
//!     timeout: 10s                    # default 10s, each request
//!     ca_file: /etc/watchpost/private-ca.pem  # optional, for a private gateway
//! ```
//!
//! The hook id (in the URL) and the secret are never shown in logs, errors or `Debug` output.
//!
//! # Request
//!
//! `POST webhook` with `Content-Type: application/json`; the body is an interactive card
//! (card JSON 1.0) with a coloured header — red for down and reminder alerts, green for
//! resolved, blue for tests (red when several alerts include a down or reminder one) — and
//! one Markdown element:
//!
//! ```json
//! {"msg_type":"interactive",
//!  "card":{"config":{"wide_screen_mode":true},
//!          "header":{"template":"red","title":{"tag":"plain_text","content":"【故障】homepage"}},
//!          "elements":[{"tag":"markdown","content":"监控 homepage 发生故障。\n\n- **时间：** ..."}]},
//!  "timestamp":"1599360473","sign":"..."}
//! ```
//!
//! The content is [`Alert::markdown_lite`] without its heading (the card header carries the
//! title; card Markdown 1.0 has no headings). Several alerts queued for the bot go out as one
//! card titled with [`crate::digest_title`], each alert's title in bold and alerts separated by
//! rules. With a `secret`, `timestamp` (Unix seconds, as a string) and
//! `sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = ""))` are added
//! ([`sign`]; key and message are the other way round from DingTalk's; Feishu accepts a
//! timestamp within an hour of its clock).
//!
//! Feishu refuses request bodies over 20 KB: a card that would be larger is split at line ends
//! into several of at most [`BODY_MAX`] bytes, titled `title (k/n)`.
//!
//! # Rate limit
//!
//! 100 messages a minute and 5 a second per bot, both enforced; every card of a split message
//! counts, and a send takes them all at once or fails retryably before sending (see
//! [`crate::limit`]).
//!
//! # Answer
//!
//! `{"code":0,"msg":"success","data":{}}` (older deployments answer
//! `{"StatusCode":0,"StatusMessage":"success"}`, also accepted); `code` decides, whatever the
//! HTTP status (Feishu answers errors with 200 or 400):
//! - `0`: delivered;
//! - `11232` (rate limited), `99991400` (frequency limit) and `9499` with "too many request":
//!   retryable, honouring `x-ogw-ratelimit-reset` or `Retry-After` when sent;
//! - `19021` (signature mismatch, or a clock more than an hour off), `19022` (IP not allowed),
//!   `19024` (keyword missing), `9499` bad request and anything else: fatal, as
//!   `feishu: errcode N: msg`.
//!
//! HTTP 408, 429, 5xx, network errors and timeouts are retryable; other non-2xx statuses
//! without a code fatal; a 2xx that isn't Feishu's JSON retryable. When a later card of a split
//! message fails, the error says which were delivered; a retry sends them all again.

use crate::http::{Answer, Endpoint, Redact, default_timeout, redact_url, timeout};
use crate::limit::RateLimit;
use crate::message::{Alert, AlertKind, Locale, digest_card_lite, digest_title};
use crate::robot::{self, Clock, Verdict};
use crate::split::{json_cost, split_numbered};
use crate::{ConfigError, Delivery, SendError};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::http::DEFAULT_TIMEOUT;
/// The most bytes a request body may have (Feishu: 20 KB; kept under 20000 to be safe).
pub const BODY_MAX: usize = 20_000;
/// Messages a minute per bot.
pub const PER_MINUTE: u32 = 100;
/// Messages a second per bot.
pub const PER_SECOND: u32 = 5;

const KIND: &str = "feishu";

/// `{type: feishu, webhook, secret, timeout, ca_file}`. `Debug` hides the webhook's path (the
/// hook id) and the secret.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeishuConfig {
    /// The bot's URL, hook id included.
    pub webhook: String,
    /// The signature secret: requests are signed when set.
    #[serde(default)]
    pub secret: Option<String>,
    /// Each request, from connecting to the last byte of the answer.
    #[serde(default = "default_timeout", deserialize_with = "timeout")]
    pub timeout: Duration,
    /// PEM certificates to trust besides the webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for FeishuConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeishuConfig")
            .field("webhook", &redact_url(&self.webhook))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `base64(HMAC-SHA256(key = timestamp_secs + "\n" + secret, message = ""))`.
pub fn sign(secret: &str, timestamp_secs: i64) -> String {
    let key = format!("{timestamp_secs}\n{secret}");
    let mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any size");
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The card header's colour for `alerts`.
pub fn template(alerts: &[Alert]) -> &'static str {
    let any = |k: AlertKind| alerts.iter().any(|a| a.kind == k);
    if any(AlertKind::Down) || any(AlertKind::Reminder) {
        "red"
    } else if any(AlertKind::Resolved) {
        "green"
    } else {
        "blue"
    }
}

/// The card's Markdown: [`digest_card_lite`] (the header shows the title; several alerts are
/// titled in bold).
pub fn card_markdown(alerts: &[Alert], locale: Locale) -> String {
    digest_card_lite(alerts, locale)
}

/// A built Feishu bot.
pub struct Feishu {
    endpoint: Endpoint,
    secret: Option<String>,
    timeout: Duration,
    per_minute: RateLimit,
    per_second: RateLimit,
    clock: Clock,
}

impl std::fmt::Debug for Feishu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feishu")
            .field("to", &self.endpoint.shown())
            .field("signed", &self.secret.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Feishu {
    /// Check `config` (the URL, the secret, `ca_file`) and build the channel.
    pub fn new(config: &FeishuConfig) -> Result<Feishu, ConfigError> {
        let endpoint = Endpoint::new(
            &config.webhook,
            config.ca_file.as_deref(),
            "feishu: webhook",
        )?;
        robot::check_secret(&config.secret, "feishu: secret")?;
        let endpoint = endpoint.with_secrets(&config.secret);
        Ok(Feishu {
            endpoint,
            secret: config.secret.clone(),
            timeout: config.timeout,
            per_minute: RateLimit::per_minute(PER_MINUTE),
            per_second: RateLimit::per_second(PER_SECOND),
            clock: robot::system_clock(),
        })
    }

    /// Sign with the time from `clock` instead of the system's (tests).
    pub fn with_clock(mut self, clock: Clock) -> Feishu {
        self.clock = clock;
        self
    }

    fn body(&self, template: &str, title: &str, content: &str, ts: i64) -> serde_json::Value {
        let mut body = json!({
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": true},
                "header": {
                    "template": template,
                    "title": {"tag": "plain_text", "content": title},
                },
                "elements": [{"tag": "markdown", "content": content}],
            },
        });
        if let Some(secret) = &self.secret {
            body["timestamp"] = json!(ts.to_string());
            body["sign"] = json!(sign(secret, ts));
        }
        body
    }

    /// The JSON bodies that deliver `alerts` together, signed for `timestamp_secs` when a
    /// secret is set: one card, or `(k/n)` cards when it would exceed [`BODY_MAX`].
    pub fn messages(
        &self,
        alerts: &[Alert],
        locale: Locale,
        timestamp_secs: i64,
    ) -> Vec<serde_json::Value> {
        let template = template(alerts);
        let title = digest_title(alerts, locale);
        let content = card_markdown(alerts, locale);
        let numbered_title = |k: usize, n: usize| format!("{title} ({k}/{n})");
        let size = |v: serde_json::Value| serde_json::to_vec(&v).map_or(0, |b| b.len());
        let overhead = |n: usize| {
            let title = if n == 1 {
                title.clone()
            } else {
                numbered_title(n, n)
            };
            size(self.body(template, &title, "", timestamp_secs))
        };
        let pieces = split_numbered(&content, BODY_MAX, json_cost, overhead);
        let n = pieces.len();
        pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let title = if n == 1 {
                    title.clone()
                } else {
                    numbered_title(i + 1, n)
                };
                self.body(template, &title, piece, timestamp_secs)
            })
            .collect()
    }

    /// Deliver `alerts` (at least one) as one card (or its parts), in `locale`: within both
    /// rate limits, signed when a secret is set, each card one request, in order.
    pub async fn send(&self, alerts: &[Alert], locale: Locale) -> Result<Delivery, SendError> {
        if alerts.is_empty() {
            return Ok(Delivery::default());
        }
        let ts = (self.clock)().timestamp();
        let messages = self.messages(alerts, locale, ts);
        let n = messages.len() as u32;
        // The signature in the bodies, masked if the bot echoes them.
        let signature = match &self.secret {
            Some(secret) => Redact::new().with(&sign(secret, ts)),
            None => Redact::new(),
        };
        // The minute's allowance first: when it is spent, the second's is left untouched.
        self.per_minute.take(n, KIND)?;
        self.per_second.take(n, KIND)?;
        robot::post_all(
            KIND,
            &self.endpoint,
            self.timeout,
            None,
            &signature,
            &messages,
            classify,
        )
        .await
    }
}

impl Feishu {
    /// The secrets masked in texts from the bot's answers: the hook id in the URL and the
    /// signing secret (and each request's signature).
    pub fn redact(&self) -> &Redact {
        self.endpoint.redact()
    }
}

/// Feishu's answer: `code` (or the older `StatusCode`; see the module docs).
pub fn classify(answer: &Answer) -> Result<Delivery, SendError> {
    let result = robot::classify(
        KIND,
        answer,
        |v| {
            let code = v.get("code").or_else(|| v.get("StatusCode"))?.as_i64()?;
            let message = v
                .get("msg")
                .or_else(|| v.get("StatusMessage"))
                .and_then(|m| m.as_str())
                .unwrap_or("");
            Some((code, message.to_string()))
        },
        |code, message| match code {
            0 => Verdict::Delivered,
            11232 | 99991400 => Verdict::Retry(None),
            9499 if message.to_ascii_lowercase().contains("too many") => Verdict::Retry(None),
            _ => Verdict::Fatal,
        },
    );
    // Feishu's own header for how long a rate limit lasts, when there's no Retry-After.
    match result {
        Err(SendError::Retryable {
            message,
            retry_after: None,
        }) => Err(SendError::Retryable {
            message,
            retry_after: answer
                .headers
                .get("x-ogw-ratelimit-reset")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_vector() {
        assert_eq!(
            sign("demo", 1599360473),
            "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="
        );
    }

    #[test]
    fn both_limits_apply() {
        let c = FeishuConfig {
            webhook: "http://127.0.0.1:9/hook".into(),
            secret: None,
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        };
        let f = Feishu::new(&c).unwrap();
        f.per_minute.take(PER_MINUTE, KIND).unwrap();
        let e = f.per_minute.take(1, KIND).unwrap_err();
        assert!(e.message().contains("100 messages/minute"), "{e}");
        f.per_second.take(PER_SECOND, KIND).unwrap();
        let e = f.per_second.take(1, KIND).unwrap_err();
        assert!(e.message().contains("5 messages/second"), "{e}");
    }

    #[test]
    fn settings_and_debug() {
        let c = FeishuConfig {
            webhook: "https://open.feishu.cn/open-apis/bot/v2/hook/SECRETHOOK".into(),
            secret: Some("SECRETSIGN".into()),
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("open.feishu.cn:443"), "{shown}");
        assert!(!format!("{:?}", Feishu::new(&c).unwrap()).contains("SECRET"));
        let mut bad = c.clone();
        bad.secret = Some(" ".into());
        assert!(
            Feishu::new(&bad)
                .unwrap_err()
                .0
                .starts_with("feishu: secret")
        );
        bad = c;
        bad.webhook = "file:///SECRETHOOK".into();
        let e = Feishu::new(&bad).unwrap_err();
        assert!(e.0.starts_with("feishu: webhook: scheme \"file\""), "{e}");
        assert!(!e.0.contains("SECRET"), "{e}");
    }
}
