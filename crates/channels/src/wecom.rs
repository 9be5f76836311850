//! `type: wecom`: a WeCom (企业微信) group robot.
//!
//! ```yaml
//! channels:
//!   ops-wecom:
//!     type: wecom
//!     webhook: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${WECOM_KEY}"
//!     mentions: ["13800001111", "@all"]     # optional: mobile numbers to @, or "@all"
//!     mentioned_users: [wangqing]           # optional: WeCom userids to @, or "@all"
//!     timeout: 10s                          # default 10s, each request
//!     ca_file: /etc/watchpost/private-ca.pem  # optional, for a private gateway
//! ```
//!
//! The webhook URL is the robot's only credential (its `key`): it is never shown in logs,
//! errors or `Debug` output, only `scheme://host:port`.
//!
//! # Requests
//!
//! `POST webhook` with `Content-Type: application/json`, one new connection per message:
//!
//! ```json
//! {"msgtype":"markdown","markdown":{"content":"### 【故障】homepage\n\n监控 homepage 发生故障。\n..."}}
//! ```
//!
//! The content is [`Alert::markdown_lite`] (WeCom's `markdown` renders headings, bold, links
//! and code spans, but no tables). Several alerts queued for the robot go out as one message
//! ([`digest_markdown_lite`]: a [`crate::digest_title`] heading, then each alert, separated by
//! `---`). Content is limited to 4096 bytes of UTF-8 (a Chinese character takes 3): a longer
//! one is split at line ends (a single longer line between characters) into messages that
//! each start with a `(k/n)` line and fit.
//!
//! A `markdown` message can't @ anyone by mobile number, so when `mentions` or
//! `mentioned_users` is set, a `text` message follows with the title (at most 2048 bytes) and
//! the lists:
//!
//! ```json
//! {"msgtype":"text","text":{"content":"【故障】homepage","mentioned_list":["wangqing"],"mentioned_mobile_list":["13800001111"]}}
//! ```
//!
//! Why not send everything as `text`, which can @ people? Alerts carry a per-location list that
//! reads far better rendered, and one extra short message only when someone is to be notified
//! costs little of the 20-a-minute allowance.
//!
//! # Rate limit
//!
//! 20 messages a minute per robot (WeCom counts failed sends too). Every message counts — each
//! part of a split one and the mention text — and a send takes all of its messages from the
//! allowance at once or fails *retryably* before sending anything (see [`crate::limit`]); the
//! outbox then merges what is queued into one message.
//!
//! # Answer
//!
//! WeCom answers `{"errcode":0,"errmsg":"ok"}`; `errcode` decides, not the text:
//! - `0`: delivered;
//! - `45009` (over the 20-a-minute limit): retryable, not before 60 s;
//! - `-1` (system busy): retryable;
//! - anything else (`93000` invalid key, `40008` bad message type, `45002`/`40058` too long,
//!   ...): fatal, as `wecom: errcode N: errmsg`.
//!
//! HTTP 408, 429 and 5xx are retryable, other non-2xx fatal; network errors and timeouts
//! retryable. A 2xx whose body is not WeCom's JSON is retryable: something other than WeCom
//! answered and the message may not have arrived.
//!
//! When a message of several fails after the first ones went through, the send fails with an
//! error saying which were delivered; the retry sends all of them again (the group may see
//! the first parts twice — better than a truncated alert).

use crate::http::{Answer, Endpoint, Redact, default_timeout, redact_url, timeout};
use crate::limit::RateLimit;
use crate::message::{Alert, Locale, digest_markdown_lite, digest_title};
use crate::robot::{self, Verdict};
use crate::split::{split_numbered, truncate_bytes, utf8_cost};
use crate::{ConfigError, Delivery, SendError};
use serde::Deserialize;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::http::DEFAULT_TIMEOUT;
/// The most bytes of UTF-8 a `markdown` message's content may have.
pub const CONTENT_MAX: usize = 4096;
/// The most bytes of UTF-8 a `text` message's content may have.
pub const TEXT_MAX: usize = 2048;
/// Messages a minute per robot.
pub const PER_MINUTE: u32 = 20;
/// The wait after `errcode 45009` (the limit is per minute).
pub const FREQ_LIMIT_WAIT: Duration = Duration::from_secs(60);

const KIND: &str = "wecom";

/// `{type: wecom, webhook, mentions, mentioned_users, timeout, ca_file}`. `Debug` hides the
/// webhook's path and query (the key) and shows only how many people are mentioned.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WecomConfig {
    /// The robot's URL, key included.
    pub webhook: String,
    /// Mobile numbers to @ (`mentioned_mobile_list`), or `@all`.
    #[serde(default)]
    pub mentions: Vec<String>,
    /// WeCom userids to @ (`mentioned_list`), or `@all`.
    #[serde(default)]
    pub mentioned_users: Vec<String>,
    /// Each request, from connecting to the last byte of the answer.
    #[serde(default = "default_timeout", deserialize_with = "timeout")]
    pub timeout: Duration,
    /// PEM certificates to trust besides the webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for WecomConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomConfig")
            .field("webhook", &redact_url(&self.webhook))
            .field("mentions", &self.mentions.len())
            .field("mentioned_users", &self.mentioned_users.len())
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// A built WeCom robot: URL checked, TLS set up, its rate limit.
pub struct Wecom {
    endpoint: Endpoint,
    mentions: Vec<String>,
    mentioned_users: Vec<String>,
    timeout: Duration,
    limit: RateLimit,
}

impl std::fmt::Debug for Wecom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wecom")
            .field("to", &self.endpoint.shown())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Wecom {
    /// Check `config` (the URL, mobile numbers, userids, `ca_file`) and build the channel.
    pub fn new(config: &WecomConfig) -> Result<Wecom, ConfigError> {
        let endpoint = Endpoint::new(&config.webhook, config.ca_file.as_deref(), "wecom: webhook")?;
        robot::check_mobiles(&config.mentions, "wecom: mentions", true)?;
        for user in &config.mentioned_users {
            if user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError(format!(
                    "wecom: mentioned_users: {user:?} is not a userid (no spaces) or \"@all\""
                )));
            }
        }
        Ok(Wecom {
            endpoint,
            mentions: config.mentions.clone(),
            mentioned_users: config.mentioned_users.clone(),
            timeout: config.timeout,
            limit: RateLimit::per_minute(PER_MINUTE),
        })
    }

    /// The messages (JSON bodies) that deliver `alerts` together: the markdown, split into
    /// `(k/n)` parts when over [`CONTENT_MAX`], then the mention text when configured.
    pub fn messages(&self, alerts: &[Alert], locale: Locale) -> Vec<serde_json::Value> {
        let content = digest_markdown_lite(alerts, locale);
        let marker = |k: usize, n: usize| format!("({k}/{n})\n");
        let numbering = |n: usize| if n == 1 { 0 } else { marker(n, n).len() };
        let pieces = split_numbered(&content, CONTENT_MAX, utf8_cost, numbering);
        let n = pieces.len();
        let mut out: Vec<serde_json::Value> = pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let content = if n == 1 {
                    piece.to_string()
                } else {
                    format!("{}{piece}", marker(i + 1, n))
                };
                json!({"msgtype": "markdown", "markdown": {"content": content}})
            })
            .collect();
        if !self.mentions.is_empty() || !self.mentioned_users.is_empty() {
            let title = digest_title(alerts, locale);
            out.push(json!({
                "msgtype": "text",
                "text": {
                    "content": truncate_bytes(&title, TEXT_MAX),
                    "mentioned_list": self.mentioned_users,
                    "mentioned_mobile_list": self.mentions,
                }
            }));
        }
        out
    }

    /// Deliver `alerts` (at least one) as one message (or its parts), in `locale`: within the
    /// rate limit, each message one request, in order.
    pub async fn send(&self, alerts: &[Alert], locale: Locale) -> Result<Delivery, SendError> {
        if alerts.is_empty() {
            return Ok(Delivery::default());
        }
        let messages = self.messages(alerts, locale);
        self.limit.take(messages.len() as u32, KIND)?;
        robot::post_all(
            KIND,
            &self.endpoint,
            self.timeout,
            None,
            &Redact::new(),
            &messages,
            classify,
        )
        .await
    }
}

impl Wecom {
    /// The secrets masked in texts from the robot's answers (the key in the URL).
    pub fn redact(&self) -> &Redact {
        self.endpoint.redact()
    }
}

/// WeCom's answer: `errcode` (see the module docs).
pub fn classify(answer: &Answer) -> Result<Delivery, SendError> {
    robot::classify(KIND, answer, robot::errcode, |code, _| match code {
        0 => Verdict::Delivered,
        45009 => Verdict::Retry(Some(FREQ_LIMIT_WAIT)),
        -1 => Verdict::Retry(None),
        _ => Verdict::Fatal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> WecomConfig {
        WecomConfig {
            webhook: url.into(),
            mentions: Vec::new(),
            mentioned_users: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        }
    }

    #[test]
    fn bad_settings() {
        let e = Wecom::new(&config("ftp://qyapi.weixin.qq.com/send?key=SECRETKEY")).unwrap_err();
        assert!(e.0.starts_with("wecom: webhook: scheme \"ftp\""), "{e}");
        assert!(!e.0.contains("SECRET"), "{e}");
        let mut c = config("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k");
        c.mentions = vec!["138-0000-1111".into()];
        let e = Wecom::new(&c).unwrap_err();
        assert!(
            e.0.starts_with("wecom: mentions: \"138-0000-1111\" is not a mobile number"),
            "{e}"
        );
        c.mentions = vec!["@all".into(), "13800001111".into()];
        c.mentioned_users = vec!["wang qing".into()];
        let e = Wecom::new(&c).unwrap_err();
        assert!(
            e.0.starts_with("wecom: mentioned_users: \"wang qing\""),
            "{e}"
        );
        c.mentioned_users = vec!["wangqing".into(), "@all".into()];
        Wecom::new(&c).unwrap();
    }

    #[test]
    fn debug_hides_the_key() {
        let mut c = config("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRETKEY");
        c.mentions = vec!["13800001111".into()];
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("SECRET") && !shown.contains("13800001111"),
            "{shown}"
        );
        assert!(shown.contains("qyapi.weixin.qq.com:443"), "{shown}");
        let w = Wecom::new(&c).unwrap();
        let shown = format!("{w:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
