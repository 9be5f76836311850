//! `type: dingtalk`: a DingTalk (钉钉) custom group robot.
//!
//! ```yaml
//! channels:
//!   ops-dingtalk:
//!     type: dingtalk
//!     webhook: "https://oapi.dingtalk.com/robot/send?access_token=${DT_TOKEN}"
//!     secret: "${DT_SECRET}"          # optional: the robot's 加签 secret (SEC...)
//!     at_mobiles: ["13800001111"]     # optional: members to @ by mobile number
//!     at_all: false                   # optional: @ everyone (default false)
//!     timeout: 10s                    # default 10s, each request
//!     ca_file: /etc/watchpost/private-ca.pem  # optional, for a private gateway
//! ```
//!
//! The access token (in the URL) and the secret are never shown in logs, errors or `Debug`
//! output. A robot secured by keywords needs one of them in every message: the titles start
//! with `【故障】`/`【恢复】`/... (zh-CN) or `[DOWN]`/`[RESOLVED]`/... (en), and
//! `watchpost` appears in merged ones.
//!
//! # Requests
//!
//! `POST webhook` with `Content-Type: application/json`. With a `secret`, each send appends
//! `timestamp=<unix ms>&sign=<urlencode(base64(HMAC-SHA256(key = secret,
//! message = timestamp + "\n" + secret)))>` to the query ([`sign`]; DingTalk accepts a
//! timestamp within an hour of its clock). The body:
//!
//! ```json
//! {"msgtype":"markdown",
//!  "markdown":{"title":"【故障】homepage","text":"### 【故障】homepage\n\n...\n\n@13800001111"},
//!  "at":{"atMobiles":["13800001111"],"isAtAll":false}}
//! ```
//!
//! `text` is [`Alert::markdown_lite`]; several alerts queued for the robot go out as one message
//! ([`digest_markdown_lite`], titled with [`crate::digest_title`]). DingTalk only highlights an
//! @-mention whose `@mobile` also appears in the text, so the mobiles are appended to it.
//! DingTalk refuses messages over 20000 bytes (`460101 message too long, exceed 20000 bytes`);
//! a body that would be larger is split at line ends into several, each at most
//! [`BODY_MAX`] bytes of JSON, titled `title (k/n)` and starting with a `title (k/n)` line (so
//! every part carries the keywords of a keyword-secured robot); only the first @-mentions.
//!
//! # Rate limit
//!
//! 20 messages a minute per robot; DingTalk throttles a robot that sends more for 10 minutes.
//! Every part counts, a send takes all of them at once or fails retryably before sending
//! (see [`crate::limit`]).
//!
//! # Answer
//!
//! `{"errcode":0,"errmsg":"ok"}`; `errcode` decides:
//! - `0`: delivered;
//! - `130101` (`send too fast, exceed 20 times per minute`), `410100`, or an `errmsg` saying
//!   "send too fast": retryable, not before 10 minutes (the throttle's length);
//! - `90030` (`webhook over limit`, the organisation's robot quota): retryable after an hour;
//! - `-1` (system busy): retryable;
//! - `310000` (signature, keyword or IP check failed — the errmsg says which; also a clock
//!   more than an hour off) and anything else (`300001` bad token, `460101` too long, ...):
//!   fatal, as `dingtalk: errcode N: errmsg`.
//!
//! HTTP 408, 429, 5xx, network errors and timeouts are retryable; other non-2xx statuses fatal;
//! a 2xx that isn't DingTalk's JSON retryable. When a later part of a split message fails, the
//! error says which parts were delivered; a retry sends them all again.

use crate::http::{Answer, Endpoint, Redact, default_timeout, redact_url, timeout};
use crate::limit::RateLimit;
use crate::message::{Alert, Locale, digest_markdown_lite, digest_title};
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
/// The most bytes a request body may have (DingTalk: 20000; the whole body is measured).
pub const BODY_MAX: usize = 20_000;
/// Messages a minute per robot.
pub const PER_MINUTE: u32 = 20;
/// How long DingTalk throttles a robot that went over its limit.
pub const THROTTLE_WAIT: Duration = Duration::from_secs(10 * 60);
/// The wait after `90030 webhook over limit`.
pub const QUOTA_WAIT: Duration = Duration::from_secs(60 * 60);

const KIND: &str = "dingtalk";

/// `{type: dingtalk, webhook, secret, at_mobiles, at_all, timeout, ca_file}`. `Debug` hides
/// the webhook's path and query (the token) and the secret.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingtalkConfig {
    /// The robot's URL, access token included.
    pub webhook: String,
    /// The 加签 secret: requests are signed when set.
    #[serde(default)]
    pub secret: Option<String>,
    /// Mobile numbers of members to @.
    #[serde(default)]
    pub at_mobiles: Vec<String>,
    /// @ everyone in the group.
    #[serde(default)]
    pub at_all: bool,
    /// Each request, from connecting to the last byte of the answer.
    #[serde(default = "default_timeout", deserialize_with = "timeout")]
    pub timeout: Duration,
    /// PEM certificates to trust besides the webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for DingtalkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DingtalkConfig")
            .field("webhook", &redact_url(&self.webhook))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("at_mobiles", &self.at_mobiles.len())
            .field("at_all", &self.at_all)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `base64(HMAC-SHA256(key = secret, message = timestamp_ms + "\n" + secret))`, before URL
/// encoding.
pub fn sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The query a signed request carries: `timestamp=...&sign=...` (URL-encoded).
pub fn signed_query(secret: &str, timestamp_ms: i64) -> String {
    let sign: String =
        url::form_urlencoded::byte_serialize(sign(secret, timestamp_ms).as_bytes()).collect();
    format!("timestamp={timestamp_ms}&sign={sign}")
}

/// A built DingTalk robot.
pub struct Dingtalk {
    endpoint: Endpoint,
    secret: Option<String>,
    at_mobiles: Vec<String>,
    at_all: bool,
    timeout: Duration,
    limit: RateLimit,
    clock: Clock,
}

impl std::fmt::Debug for Dingtalk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dingtalk")
            .field("to", &self.endpoint.shown())
            .field("signed", &self.secret.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Dingtalk {
    /// Check `config` (the URL, the secret, mobile numbers, `ca_file`) and build the channel.
    pub fn new(config: &DingtalkConfig) -> Result<Dingtalk, ConfigError> {
        let endpoint = Endpoint::new(
            &config.webhook,
            config.ca_file.as_deref(),
            "dingtalk: webhook",
        )?;
        robot::check_secret(&config.secret, "dingtalk: secret")?;
        robot::check_mobiles(&config.at_mobiles, "dingtalk: at_mobiles", false)?;
        // The signature itself goes in the query of each request, masked from there.
        let endpoint = endpoint.with_secrets(&config.secret);
        Ok(Dingtalk {
            endpoint,
            secret: config.secret.clone(),
            at_mobiles: config.at_mobiles.clone(),
            at_all: config.at_all,
            timeout: config.timeout,
            limit: RateLimit::per_minute(PER_MINUTE),
            clock: robot::system_clock(),
        })
    }

    /// Sign with the time from `clock` instead of the system's (tests).
    pub fn with_clock(mut self, clock: Clock) -> Dingtalk {
        self.clock = clock;
        self
    }

    fn body(&self, title: &str, text: &str, mention: bool) -> serde_json::Value {
        let (mobiles, all) = if mention {
            (self.at_mobiles.as_slice(), self.at_all)
        } else {
            (&[][..], false)
        };
        json!({
            "msgtype": "markdown",
            "markdown": {"title": title, "text": text},
            "at": {"atMobiles": mobiles, "isAtAll": all},
        })
    }

    /// The JSON bodies that deliver `alerts` together: one, or `(k/n)` parts when the body
    /// would exceed [`BODY_MAX`].
    pub fn messages(&self, alerts: &[Alert], locale: Locale) -> Vec<serde_json::Value> {
        let title = digest_title(alerts, locale);
        let text = digest_markdown_lite(alerts, locale);
        let mention: String = self.at_mobiles.iter().map(|m| format!(" @{m}")).collect();
        let mention = match mention.trim_start() {
            "" => String::new(),
            m => format!("\n\n{m}"),
        };
        // Every part starts with the title, so a robot secured by keywords accepts each.
        let marker = |k: usize, n: usize| format!("{title} ({k}/{n})\n");
        let numbered_title = |k: usize, n: usize| format!("{title} ({k}/{n})");
        let size = |v: serde_json::Value| serde_json::to_vec(&v).map_or(0, |b| b.len());
        // What a part costs besides its share of the text: the JSON around it, the title, the
        // numbering and the mention.
        let overhead = |n: usize| {
            if n == 1 {
                size(self.body(&title, &mention, true))
            } else {
                let text = format!("{}{mention}", marker(n, n));
                size(self.body(&numbered_title(n, n), &text, true))
            }
        };
        let pieces = split_numbered(&text, BODY_MAX, json_cost, overhead);
        let n = pieces.len();
        if n == 1 {
            return vec![self.body(&title, &format!("{text}{mention}"), true)];
        }
        pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let first = i == 0;
                let text = format!(
                    "{}{}{}",
                    marker(i + 1, n),
                    piece,
                    if first { mention.as_str() } else { "" }
                );
                self.body(&numbered_title(i + 1, n), &text, first)
            })
            .collect()
    }

    /// Deliver `alerts` (at least one) as one message (or its parts), in `locale`: within the
    /// rate limit, signed when a secret is set, each part one request, in order.
    pub async fn send(&self, alerts: &[Alert], locale: Locale) -> Result<Delivery, SendError> {
        if alerts.is_empty() {
            return Ok(Delivery::default());
        }
        let messages = self.messages(alerts, locale);
        self.limit.take(messages.len() as u32, KIND)?;
        let query = self
            .secret
            .as_ref()
            .map(|s| signed_query(s, (self.clock)().timestamp_millis()));
        robot::post_all(
            KIND,
            &self.endpoint,
            self.timeout,
            query.as_deref(),
            &Redact::new(),
            &messages,
            classify,
        )
        .await
    }
}

impl Dingtalk {
    /// The secrets masked in texts from the robot's answers: the access token in the URL, the
    /// signing secret (and each request's signature).
    pub fn redact(&self) -> &Redact {
        self.endpoint.redact()
    }
}

/// DingTalk's answer: `errcode` (see the module docs).
pub fn classify(answer: &Answer) -> Result<Delivery, SendError> {
    robot::classify(KIND, answer, robot::errcode, |code, message| match code {
        0 => Verdict::Delivered,
        130101 | 410100 => Verdict::Retry(Some(THROTTLE_WAIT)),
        _ if message.to_ascii_lowercase().contains("send too fast") => {
            Verdict::Retry(Some(THROTTLE_WAIT))
        }
        90030 => Verdict::Retry(Some(QUOTA_WAIT)),
        -1 => Verdict::Retry(None),
        _ => Verdict::Fatal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_vector() {
        assert_eq!(
            sign("this is secret", 1577808000000),
            "ijHEivi6YiCNPZOq4hZstmvZ3sPfbioAiMhP30ae7W0="
        );
        assert_eq!(
            signed_query("this is secret", 1577808000000),
            "timestamp=1577808000000&sign=ijHEivi6YiCNPZOq4hZstmvZ3sPfbioAiMhP30ae7W0%3D"
        );
    }

    #[test]
    fn url_encoding_covers_plus_and_slash() {
        // Find a timestamp whose signature has `+` or `/`, and check they are encoded.
        let (ts, raw) = (0..200)
            .map(|i| (i, sign("SECx", 1_700_000_000_000 + i)))
            .find(|(_, s)| s.contains('+') && s.contains('/'))
            .expect("some signature has both");
        let q = signed_query("SECx", 1_700_000_000_000 + ts);
        let encoded = q.split_once("&sign=").unwrap().1;
        assert!(!encoded.contains(['+', '/', '=']), "{encoded}");
        let decoded: String = url::form_urlencoded::parse(format!("s={encoded}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned();
        assert_eq!(decoded, raw);
    }

    fn config() -> DingtalkConfig {
        DingtalkConfig {
            webhook: "https://oapi.dingtalk.com/robot/send?access_token=SECRETTOKEN".into(),
            secret: Some("SECRETSIGN".into()),
            at_mobiles: vec!["13800001111".into()],
            at_all: false,
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        }
    }

    #[test]
    fn bad_settings_and_debug() {
        let shown = format!("{:?}", config());
        assert!(
            !shown.contains("SECRET") && !shown.contains("13800001111"),
            "{shown}"
        );
        let d = Dingtalk::new(&config()).unwrap();
        assert!(!format!("{d:?}").contains("SECRET"));

        let mut c = config();
        c.secret = Some(String::new());
        let e = Dingtalk::new(&c).unwrap_err();
        assert!(e.0.starts_with("dingtalk: secret: is empty"), "{e}");
        let mut c = config();
        c.at_mobiles = vec!["@all".into()];
        let e = Dingtalk::new(&c).unwrap_err();
        assert!(e.0.contains("at_all: true"), "{e}");
        let mut c = config();
        c.webhook = "oapi.dingtalk.com/robot/send?access_token=SECRETTOKEN".into();
        let e = Dingtalk::new(&c).unwrap_err();
        assert!(e.0.starts_with("dingtalk: webhook: not a valid URL"), "{e}");
        assert!(!e.0.contains("SECRET"), "{e}");
    }
}
