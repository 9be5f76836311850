//! Alert messages and the channels that deliver them.
//!
//! - [`message`]: the [`Alert`] (stored in the outbox between commit and delivery as a
//!   versioned document, [`Alert::to_json`] / [`Alert::from_json`]), the typed model every
//!   renderer lays out ([`message::model`]) and the shared renderings — [`Alert::title`],
//!   [`Alert::plain`], [`Alert::markdown`], [`Alert::markdown_lite`] — in [`Locale::ZhCn`] or
//!   [`Locale::En`].
//! - One module per channel, each with its config struct next to it:
//!   - [`console`] — stdout.
//!   - [`webhook`] — a JSON POST of the alert, or your own body template.
//!   - [`email`] — SMTP (implicit TLS, required STARTTLS, or plaintext to loopback test servers).
//!   - [`tencent_sms`] — Tencent Cloud SMS `SendSms`, signed by [`tc3`].
//!   - chat robots: [`wecom`] (企业微信), [`dingtalk`] (钉钉), [`feishu`] (飞书 / Lark),
//!     [`slack`] (incoming webhook, Block Kit), [`telegram`] (Bot API, HTML).
//!   - [`alertmanager`] — Prometheus Alertmanager API v2.
//!
//!   [`ChannelConfig`] is the closed set of configs (`type:` picks the variant), [`Channel`]
//!   the closed set of built channels, with one `send`.
//! - [`policy`]: when to retry ([`backoff`]) and when to stop ([`give_up`]: after
//!   [`MIN_ATTEMPTS`] attempts *and* `max_age` of real retrying); the delivery worker applies
//!   them.
//! - Shared by the channels: [`http`] (the one HTTP client: checked endpoints, verified TLS,
//!   bounded answers, status classification, and [`http::Redact`], which masks the channel's
//!   secrets in every text taken from an answer), [`limit`] (per-robot rate limits),
//!   [`template`] (operator-written Jinja templates of an alert), [`tc3`] (Tencent Cloud's
//!   TC3-HMAC-SHA256 request signature), [`split`] (cutting a message that is over a robot's
//!   byte limit into parts that fit), [`robot`] (what the chat robots share: error codes,
//!   parts, mentions, signing clock).
//!
//! A send either delivers ([`Delivery`], with what the far end answered) or fails with a
//! [`SendError`] that says whether trying again can help; neither ever quotes one of the
//! channel's secrets, even from a provider that echoes the request ([`Channel::redact`]).
//!
//! ```
//! use watchpost_channels::{ChannelConfig, Locale};
//! let config = ChannelConfig::from_value(serde_json::json!({
//!     "type": "webhook",
//!     "url": "http://127.0.0.1:9000/hook",
//!     "headers": {"Authorization": "Bearer s3cret"},
//!     "timeout": "5s",
//! }))
//! .unwrap();
//! assert_eq!(config.kind(), "webhook");
//! // Secrets stay out of logs:
//! assert!(!format!("{config:?}").contains("s3cret"));
//! let channel = config.build().unwrap();
//! # let _ = (channel, Locale::ZhCn);
//! ```

pub mod alertmanager;
pub mod console;
pub mod dingtalk;
pub mod email;
pub mod feishu;
pub mod http;
pub mod limit;
pub mod message;
pub mod policy;
pub mod robot;
pub mod slack;
pub mod split;
/// The TC3 signer lives in `watchpost-net` (the CKafka lag source signs with it too).
pub use watchpost_net::tc3;
pub mod telegram;
pub mod template;
pub mod tencent_sms;
pub mod webhook;
pub mod wecom;

pub use alertmanager::{Alertmanager, AlertmanagerConfig};
pub use console::{Console, ConsoleConfig};
pub use dingtalk::{Dingtalk, DingtalkConfig};
pub use email::{Email, EmailConfig};
pub use feishu::{Feishu, FeishuConfig};
pub use message::{
    Alert, AlertKind, DocumentError, FailedCondition, Locale, LocationRow, digest_card_lite,
    digest_markdown_lite, digest_title,
};
pub use policy::{
    BACKOFF_BASE, BACKOFF_CAP, DEFAULT_MAX_AGE, MIN_ATTEMPTS, RETRY_AFTER_CAP, backoff,
    backoff_with_jitter, give_up, retry_delay,
};
pub use slack::{Slack, SlackConfig};
pub use telegram::{ChatId, Telegram, TelegramConfig};
pub use tencent_sms::{TencentSms, TencentSmsConfig};
pub use webhook::{Webhook, WebhookConfig, WebhookPayload};
pub use wecom::{Wecom, WecomConfig};

use serde::Deserialize;
use std::time::Duration;

/// A channel's settings, as written under `channels:` (after `${VAR}` substitution).
/// `type:` selects the variant; each variant rejects fields it does not know.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelConfig {
    /// `{type: console}`: print the plain rendering to stdout.
    Console(ConsoleConfig),
    /// `{type: webhook, url: "https://...", headers: {K: V}, timeout: 10s, ca_file: PATH}`.
    Webhook(WebhookConfig),
    /// `{type: tencent_sms, secret_id, secret_key, sdk_app_id, sign_name, template_id,
    /// phones, params, template_text, ...}`: Tencent Cloud SMS (see [`tencent_sms`]).
    TencentSms(TencentSmsConfig),
    /// `{type: email, server: "smtps://host:465", username, password, from, to: [...],
    /// timeout: 30s, ca_file: PATH}`.
    Email(EmailConfig),
    /// `{type: wecom, webhook: "https://qyapi.weixin.qq.com/...?key=K", mentions: [MOBILE],
    /// mentioned_users: [USERID], timeout, ca_file}`.
    Wecom(WecomConfig),
    /// `{type: dingtalk, webhook: "https://oapi.dingtalk.com/robot/send?access_token=T",
    /// secret: SEC..., at_mobiles: [MOBILE], at_all: false, timeout, ca_file}`.
    Dingtalk(DingtalkConfig),
    /// `{type: feishu, webhook: "https://open.feishu.cn/open-apis/bot/v2/hook/ID",
    /// secret: S, timeout, ca_file}`.
    Feishu(FeishuConfig),
    /// `{type: slack, webhook: "https://hooks.slack.com/services/...", timeout, ca_file}`.
    Slack(SlackConfig),
    /// `{type: telegram, bot_token, chat_id, api_base, message_thread_id,
    /// disable_notification, timeout, ca_file}`.
    Telegram(TelegramConfig),
    /// `{type: alertmanager, url, labels, headers, ends_after, generator_url, timeout,
    /// ca_file}`.
    Alertmanager(AlertmanagerConfig),
}

impl ChannelConfig {
    /// Parse a channel's settings (the whole mapping, `type` included), e.g. the `settings`
    /// of the config crate's `ChannelSpec`.
    pub fn from_value(settings: serde_json::Value) -> Result<ChannelConfig, ConfigError> {
        serde_json::from_value(settings).map_err(|e| ConfigError(e.to_string()))
    }

    /// The `type:` value.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Console(_) => "console",
            ChannelConfig::Webhook(_) => "webhook",
            ChannelConfig::TencentSms(_) => "tencent_sms",
            ChannelConfig::Email(_) => "email",
            ChannelConfig::Wecom(_) => "wecom",
            ChannelConfig::Dingtalk(_) => "dingtalk",
            ChannelConfig::Feishu(_) => "feishu",
            ChannelConfig::Slack(_) => "slack",
            ChannelConfig::Telegram(_) => "telegram",
            ChannelConfig::Alertmanager(_) => "alertmanager",
        }
    }

    /// Check the settings (URLs, addresses, header names, CA files) and build the channel.
    /// Nothing is sent and no connection is made.
    pub fn build(&self) -> Result<Channel, ConfigError> {
        Ok(match self {
            ChannelConfig::Console(_) => Channel::Console(Console::stdout()),
            ChannelConfig::Webhook(c) => Channel::Webhook(Webhook::new(c)?),
            ChannelConfig::TencentSms(c) => Channel::TencentSms(TencentSms::new(c)?),
            ChannelConfig::Email(c) => Channel::Email(Email::new(c)?),
            ChannelConfig::Wecom(c) => Channel::Wecom(Wecom::new(c)?),
            ChannelConfig::Dingtalk(c) => Channel::Dingtalk(Dingtalk::new(c)?),
            ChannelConfig::Feishu(c) => Channel::Feishu(Feishu::new(c)?),
            ChannelConfig::Slack(c) => Channel::Slack(Slack::new(c)?),
            ChannelConfig::Telegram(c) => Channel::Telegram(Telegram::new(c)?),
            ChannelConfig::Alertmanager(c) => Channel::Alertmanager(Alertmanager::new(c)?),
        })
    }

    /// Lines for `watchpost validate` about settings that are valid but can't be fully
    /// checked offline (e.g. an SMS template's parameter count). Empty for most channels.
    pub fn notes(&self) -> Vec<String> {
        match self {
            ChannelConfig::TencentSms(c) => c.notes(),
            _ => Vec::new(),
        }
    }
}

/// A configured channel, ready to send.
// Built once per configured channel and kept for the process: variant sizes don't matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Channel {
    Console(Console),
    Webhook(Webhook),
    TencentSms(TencentSms),
    Email(Email),
    Wecom(Wecom),
    Dingtalk(Dingtalk),
    Feishu(Feishu),
    Slack(Slack),
    Telegram(Telegram),
    Alertmanager(Alertmanager),
}

impl Channel {
    /// The `type:` value.
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Console(_) => "console",
            Channel::Webhook(_) => "webhook",
            Channel::TencentSms(_) => "tencent_sms",
            Channel::Email(_) => "email",
            Channel::Wecom(_) => "wecom",
            Channel::Dingtalk(_) => "dingtalk",
            Channel::Feishu(_) => "feishu",
            Channel::Slack(_) => "slack",
            Channel::Telegram(_) => "telegram",
            Channel::Alertmanager(_) => "alertmanager",
        }
    }

    /// Whether several queued alerts may go out as one message ([`Channel::send_many`]):
    /// true for rate-limited chat robots, so a burst of alerts is merged rather than dropped
    /// or spread over many minutes. Channels whose far end keys on one alert per request
    /// (webhook's `Idempotency-Key`, SMS templates, e-mail threads) say false. Alertmanager
    /// merges too: its API takes an array, each alert keeping its own labels.
    pub fn merges(&self) -> bool {
        match self {
            Channel::Console(_) | Channel::Wecom(_) | Channel::Dingtalk(_) | Channel::Feishu(_) => {
                true
            }
            Channel::Slack(_) | Channel::Telegram(_) | Channel::Alertmanager(_) => true,
            Channel::Webhook(_) | Channel::Email(_) | Channel::TencentSms(_) => false,
        }
    }

    /// Deliver one alert, rendered in `locale`. One attempt: retries are the caller's
    /// (see [`policy`]).
    pub async fn send(&self, alert: &Alert, locale: Locale) -> Result<Delivery, SendError> {
        self.send_many(std::slice::from_ref(alert), locale).await
    }

    /// Deliver `alerts` (at least one) together: one message for a channel that
    /// [`merges`](Channel::merges), otherwise they must be exactly one. All or nothing: the
    /// result applies to every alert given.
    pub async fn send_many(&self, alerts: &[Alert], locale: Locale) -> Result<Delivery, SendError> {
        if alerts.is_empty() {
            return Ok(Delivery::default());
        }
        if alerts.len() > 1 && !self.merges() {
            return Err(SendError::fatal(format!(
                "{}: sends one alert at a time (got {})",
                self.kind(),
                alerts.len()
            )));
        }
        let result = match self {
            Channel::Console(c) => c.send_many(alerts, locale).await,
            Channel::Webhook(c) => c.send(&alerts[0], locale).await,
            Channel::TencentSms(c) => c.send(&alerts[0], locale).await,
            Channel::Email(c) => c.send(&alerts[0], locale).await,
            Channel::Wecom(c) => c.send(alerts, locale).await,
            Channel::Dingtalk(c) => c.send(alerts, locale).await,
            Channel::Feishu(c) => c.send(alerts, locale).await,
            Channel::Slack(c) => c.send(alerts, locale).await,
            Channel::Telegram(c) => c.send(alerts, locale).await,
            Channel::Alertmanager(c) => c.send(alerts, locale).await,
        };
        // Texts from the far end were masked where they were read; this catches any that
        // reached the outcome another way.
        match self.redact() {
            Some(r) => r.result(result),
            None => result,
        }
    }

    /// The channel's secrets, masked in every text of a send's outcome ([`Delivery::body`],
    /// [`SendError`] messages): URL paths and queries (robot keys, tokens), configured header
    /// values, bot tokens, signing secrets, API keys, the SMTP password. None for the console.
    pub fn redact(&self) -> Option<&http::Redact> {
        Some(match self {
            Channel::Console(_) => return None,
            Channel::Webhook(c) => c.redact(),
            Channel::TencentSms(c) => c.redact(),
            Channel::Email(c) => c.redact(),
            Channel::Wecom(c) => c.redact(),
            Channel::Dingtalk(c) => c.redact(),
            Channel::Feishu(c) => c.redact(),
            Channel::Slack(c) => c.redact(),
            Channel::Telegram(c) => c.redact(),
            Channel::Alertmanager(c) => c.redact(),
        })
    }
}

/// What the far end answered to a delivered alert.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivery {
    /// The HTTP status (None for channels without one, like the console).
    pub status: Option<u16>,
    /// The start of the response body (at most [`SHORT_BODY`] characters), for the record,
    /// with the channel's secrets masked (see [`http::Redact`]).
    pub body: String,
}

/// How many characters of a response body a [`Delivery`] or [`SendError`] keeps.
pub const SHORT_BODY: usize = 300;

/// Why a send failed, and whether trying again can help. A message quoting the far end has
/// the channel's secrets masked (see [`http::Redact`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// A temporary failure: network error, timeout, 408, 429, 5xx. Retry later (not before
    /// `retry_after` when the far end said so).
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying the same request will fail the same way (a 4xx other than 408/429): give up
    /// on this alert and tell the operator.
    #[error("{message}")]
    Fatal { message: String },
}

impl SendError {
    pub fn retryable(message: impl Into<String>) -> SendError {
        SendError::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn fatal(message: impl Into<String>) -> SendError {
        SendError::Fatal {
            message: message.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable { .. })
    }

    pub fn message(&self) -> &str {
        match self {
            SendError::Retryable { message, .. } | SendError::Fatal { message } => message,
        }
    }

    /// The far end's `Retry-After`, when it sent one with a retryable answer.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Retryable { retry_after, .. } => *retry_after,
            SendError::Fatal { .. } => None,
        }
    }
}

/// A channel's settings are wrong. The message names the setting, never a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configs_by_type() {
        let c = ChannelConfig::from_value(json!({"type": "console"})).unwrap();
        assert_eq!(c, ChannelConfig::Console(ConsoleConfig {}));
        assert_eq!(c.kind(), "console");
        assert_eq!(c.build().unwrap().kind(), "console");

        let c =
            ChannelConfig::from_value(json!({"type": "webhook", "url": "http://127.0.0.1:1/x"}))
                .unwrap();
        let ChannelConfig::Webhook(w) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(w.url, "http://127.0.0.1:1/x");
        assert_eq!(w.timeout, webhook::DEFAULT_TIMEOUT);
        assert!(w.headers.is_empty());
        assert_eq!(c.build().unwrap().kind(), "webhook");
    }

    #[test]
    fn webhook_key_is_an_alias_for_url() {
        let a = ChannelConfig::from_value(
            json!({"type": "webhook", "webhook": "http://127.0.0.1:1/x"}),
        )
        .unwrap();
        let b =
            ChannelConfig::from_value(json!({"type": "webhook", "url": "http://127.0.0.1:1/x"}))
                .unwrap();
        assert_eq!(a, b);
        let both = ChannelConfig::from_value(json!({
            "type": "webhook", "url": "http://127.0.0.1:1/x", "webhook": "http://127.0.0.1:1/y"
        }))
        .unwrap_err();
        assert!(both.0.contains("duplicate field"), "{both}");
    }

    #[test]
    fn unknown_fields_and_types_are_rejected() {
        let e = ChannelConfig::from_value(json!({"type": "console", "colour": true})).unwrap_err();
        assert!(e.0.contains("unknown field `colour`"), "{e}");
        let e = ChannelConfig::from_value(
            json!({"type": "webhook", "url": "http://127.0.0.1/", "header": {}}),
        )
        .unwrap_err();
        assert!(e.0.contains("unknown field `header`"), "{e}");
        let e = ChannelConfig::from_value(json!({"type": "pager"})).unwrap_err();
        assert!(e.0.contains("unknown variant `pager`"), "{e}");
        let e = ChannelConfig::from_value(json!({"type": "webhook"})).unwrap_err();
        assert!(e.0.contains("missing field `url`"), "{e}");
        let e = ChannelConfig::from_value(
            json!({"type": "webhook", "url": "http://127.0.0.1/", "timeout": "soon"}),
        )
        .unwrap_err();
        assert!(e.0.contains("timeout"), "{e}");
    }

    #[test]
    fn send_errors() {
        let r = SendError::retryable("HTTP 503");
        assert!(r.is_retryable());
        assert_eq!(r.to_string(), "HTTP 503");
        assert_eq!(r.retry_after(), None);
        let f = SendError::fatal("HTTP 400: bad key");
        assert!(!f.is_retryable());
        assert_eq!(f.message(), "HTTP 400: bad key");
    }
}
