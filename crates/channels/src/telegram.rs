//! `type: telegram`: a Telegram bot posts the alert to a chat (Bot API `sendMessage`, HTML).
//!
//! ```yaml
//! channels:
//!   ops-telegram:
//!     type: telegram
//!     bot_token: "${TG_TOKEN}"          # from @BotFather: 123456789:AA...
//!     chat_id: "-1001234567890"         # a number (string or integer), or "@channelname"
//!     api_base: https://api.telegram.org   # the default; a local Bot API server or a gateway
//!     message_thread_id: 42             # optional: a forum topic
//!     disable_notification: false       # true: deliver silently
//!     timeout: 10s                      # default 10s, per request
//!     ca_file: /etc/watchpost/private-ca.pem   # optional, for a private gateway
//! ```
//!
//! The bot token is a secret: it is checked for shape when the config is loaded (digits, a
//! colon, 30 or more of `A-Za-z0-9_-`) and appears in neither error messages nor `Debug`;
//! errors name the API host (`https://api.telegram.org:443`) only.
//!
//! # Request
//!
//! `POST {api_base}/bot{bot_token}/sendMessage` with `Content-Type: application/json`:
//!
//! ```json
//! {"chat_id": -1001234567890, "text": "<b>[DOWN] homepage</b>\nhomepage is DOWN.\n...",
//!  "parse_mode": "HTML", "link_preview_options": {"is_disabled": true},
//!  "disable_notification": false, "message_thread_id": 42}
//! ```
//!
//! A numeric `chat_id` is sent as a number, `@channelname` as a string;
//! `message_thread_id` only when set. Link previews are off (`link_preview_options`, which
//! replaced `disable_web_page_preview` in Bot API 7.0).
//!
//! The text is Telegram's HTML: the title in `<b>`, labels in `<b>`, the incident id in
//! `<code>`, the per-location table (the aligned plain-text table) in `<pre>`. Everything
//! else is text with `&`, `<` and `>` escaped as `&amp;`, `&lt;`, `&gt;`, so a monitor called
//! `<b>&"x"` shows exactly so. Several alerts sent together (see
//! [`crate::Channel::merges`]) make one text: the [`digest_title`], then each alert.
//!
//! # Limits
//!
//! A message's text may hold at most [`MAX_TEXT`] characters after entity parsing (tags
//! don't count, `&lt;` counts as one) and formats at most [`MAX_ENTITIES`] entities. Longer
//! texts are split at line boundaries into several messages, sent in order; a `<pre>` table
//! cut in two is closed and reopened, so no tag is ever broken, and parts after the first
//! start with the title and `(2/3)`. Characters are counted in UTF-16 code units (an emoji
//! counts two), which never undercounts Telegram's own measure. A single line longer than a
//! whole message is broken inside the line; nothing is dropped.
//!
//! Telegram asks bots to send about one message a second per chat and at most 20 a minute
//! per group, so sends are held to [both](crate::limit) per channel: a send that would
//! exceed them fails retryably with the wait, and the queued alerts then go out merged.
//!
//! # Answer
//!
//! - `{"ok": true, ...}`: delivered.
//! - `{"ok": false, "error_code": 429, "parameters": {"retry_after": N}}`: retryable, not
//!   before N seconds (or the `Retry-After` header); 5xx: retryable.
//! - Other errors are fatal with Telegram's description: 400 (`Bad Request: chat not
//!   found`, `can't parse entities`, a group upgraded to a supergroup — the message says
//!   which `chat_id` to use), 401 (`Unauthorized`: a wrong or revoked token), 403 (the bot
//!   was blocked, kicked, or may not post), 404 (a wrong token or `api_base`).
//! - An answer that is not Bot API JSON is classified by its status (see
//!   [`crate::http::Answer::by_status`]); network errors and timeouts are retryable.
//!
//! When a text needs several messages and a later one fails, a retry sends all of them again.

use crate::http::{Answer, Endpoint, Redact, default_timeout, prefixed, redact_url, timeout};
use crate::limit::RateLimit;
use crate::message::model::FactKind;
use crate::message::{Alert, Locale, digest_title, html_text, one_line, plain};
use crate::{ConfigError, Delivery, SendError};
use http::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// Most characters (UTF-16 code units) of a message's text after entity parsing.
pub const MAX_TEXT: usize = 4096;
/// Most formatting entities (bold, code, pre) watchpost puts in one message.
pub const MAX_ENTITIES: usize = 100;
/// The default `api_base`.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_string()
}

/// A `chat_id:` as written: a number, or a string (a number in quotes, or `@channelname`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatId {
    Number(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for ChatId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ChatId, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ChatId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a chat_id: a number, or a string such as \"-1001234567890\" or \"@channelname\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ChatId, E> {
                Ok(ChatId::Number(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ChatId, E> {
                i64::try_from(v)
                    .map(ChatId::Number)
                    .map_err(|_| E::custom("chat_id: too large"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ChatId, E> {
                Ok(ChatId::Text(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `{type: telegram, bot_token, chat_id, api_base, message_thread_id, disable_notification,
/// timeout, ca_file}`. `Debug` hides the token.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// `123456789:AA...` from @BotFather.
    pub bot_token: String,
    /// The chat, group or channel: `-1001234567890` or `@channelname`.
    pub chat_id: ChatId,
    /// The Bot API server (default `https://api.telegram.org`).
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// A forum topic of the chat.
    #[serde(default)]
    pub message_thread_id: Option<i64>,
    /// Deliver silently.
    #[serde(default)]
    pub disable_notification: bool,
    /// Each request, from connecting to the last byte of the answer.
    #[serde(default = "default_timeout", deserialize_with = "timeout")]
    pub timeout: Duration,
    /// PEM certificates to trust besides the webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("bot_token", &"<redacted>")
            .field("chat_id", &self.chat_id)
            .field("api_base", &redact_url(&self.api_base))
            .field("message_thread_id", &self.message_thread_id)
            .field("disable_notification", &self.disable_notification)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// A built Telegram channel.
pub struct Telegram {
    endpoint: Endpoint,
    chat_id: Value,
    message_thread_id: Option<i64>,
    disable_notification: bool,
    timeout: Duration,
    per_second: RateLimit,
    per_minute: RateLimit,
}

impl std::fmt::Debug for Telegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telegram")
            .field("to", &self.endpoint.shown())
            .field("chat_id", &self.chat_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Telegram {
    /// Check `config` and build the channel: the token's shape, the chat id, `api_base` (an
    /// absolute `http(s)` URL with a host and no query), `ca_file`.
    pub fn new(config: &TelegramConfig) -> Result<Telegram, ConfigError> {
        check_token(&config.bot_token)?;
        let chat_id = chat_id(&config.chat_id)?;
        // Checked on its own first, so errors are about the setting (never the token).
        Endpoint::new(
            &config.api_base,
            config.ca_file.as_deref(),
            "telegram: api_base",
        )?;
        let base = url::Url::parse(&config.api_base)
            .map_err(|e| ConfigError(format!("telegram: api_base: not a valid URL ({e})")))?;
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ConfigError(
                "telegram: api_base: must not have a query or fragment (the path \
                 /bot<token>/sendMessage is appended)"
                    .into(),
            ));
        }
        let url = format!(
            "{}/bot{}/sendMessage",
            config.api_base.trim_end_matches('/'),
            config.bot_token
        );
        // The token is masked whole and its secret part alone (an echo may quote either).
        let secret_part = config.bot_token.split_once(':').map(|(_, s)| s);
        let endpoint = Endpoint::new(&url, config.ca_file.as_deref(), "telegram: api_base")?
            .with_secrets(
                [Some(config.bot_token.as_str()), secret_part]
                    .into_iter()
                    .flatten(),
            );
        Ok(Telegram {
            endpoint,
            chat_id,
            message_thread_id: config.message_thread_id,
            disable_notification: config.disable_notification,
            timeout: config.timeout,
            per_second: RateLimit::per_second(1),
            per_minute: RateLimit::per_minute(20),
        })
    }

    /// The request bodies for `alerts` (at least one): usually one, more when the text is
    /// longer than a message.
    pub fn bodies(&self, alerts: &[Alert], locale: Locale) -> Vec<Value> {
        texts(alerts, locale)
            .into_iter()
            .map(|text| {
                let mut body = json!({
                    "chat_id": self.chat_id,
                    "text": text,
                    "parse_mode": "HTML",
                    "link_preview_options": {"is_disabled": true},
                    "disable_notification": self.disable_notification,
                });
                if let Some(thread) = self.message_thread_id {
                    body["message_thread_id"] = json!(thread);
                }
                body
            })
            .collect()
    }

    /// Send `alerts` (at least one) as one text, split over several messages when long.
    pub async fn send(&self, alerts: &[Alert], locale: Locale) -> Result<Delivery, SendError> {
        let bodies = self.bodies(alerts, locale);
        if bodies.is_empty() {
            return Ok(Delivery::default());
        }
        self.per_second.take(1, "telegram")?;
        self.per_minute.take(bodies.len() as u32, "telegram")?;
        let mut delivery = Delivery::default();
        for body in &bodies {
            let body = serde_json::to_vec(body).expect("a JSON value serializes");
            let answer = self
                .endpoint
                .post(None, &HeaderMap::new(), body, self.timeout)
                .await?;
            delivery = classify(&answer)?;
        }
        if bodies.len() > 1 {
            delivery.body = format!("{} messages; last: {}", bodies.len(), delivery.body);
        }
        Ok(delivery)
    }
}

impl Telegram {
    /// The secrets masked in texts from the Bot API's answers: the bot token (in the URL).
    pub fn redact(&self) -> &Redact {
        self.endpoint.redact()
    }
}

/// `<digits>:<30+ of A-Za-z0-9_->`; the error never shows the value.
fn check_token(token: &str) -> Result<(), ConfigError> {
    let ok = match token.split_once(':') {
        Some((id, secret)) => {
            !id.is_empty()
                && id.len() <= 20
                && id.bytes().all(|b| b.is_ascii_digit())
                && secret.len() >= 30
                && secret.len() <= 100
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ConfigError(
            "telegram: bot_token: not a bot token (expected <bot id>:<secret>, as @BotFather \
             gives it, e.g. 123456789:AAE...)"
                .into(),
        ))
    }
}

/// The chat id as sent: a number, or `@channelname`.
fn chat_id(id: &ChatId) -> Result<Value, ConfigError> {
    let text = match id {
        ChatId::Number(n) => return Ok(json!(n)),
        ChatId::Text(t) => t.trim(),
    };
    if let Ok(n) = text.parse::<i64>() {
        return Ok(json!(n));
    }
    let username = |name: &&str| {
        (4..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if text.strip_prefix('@').filter(username).is_some() {
        return Ok(json!(text));
    }
    Err(ConfigError(format!(
        "telegram: chat_id: {text:?} is neither a chat id (a number such as -1001234567890) \
         nor @channelname"
    )))
}

/// Classify one `sendMessage` answer (see the module docs).
fn classify(answer: &Answer) -> Result<Delivery, SendError> {
    let Some(Value::Object(o)) = answer.json() else {
        return answer.by_status().map_err(|e| prefixed("telegram", e));
    };
    match o.get("ok") {
        Some(Value::Bool(true)) if answer.status.is_success() => return Ok(answer.delivery()),
        Some(Value::Bool(false)) => {}
        _ => return answer.by_status().map_err(|e| prefixed("telegram", e)),
    }
    let code = o
        .get("error_code")
        .and_then(Value::as_u64)
        .unwrap_or(u64::from(answer.status.as_u16()));
    let description = o
        .get("description")
        .and_then(Value::as_str)
        .map(|d| answer.text(d))
        .unwrap_or_else(|| answer.short_body());
    let parameters = o.get("parameters");
    let mut message = format!("telegram: {code} {description}");
    if code == 429 || code >= 500 {
        let retry_after = parameters
            .and_then(|p| p.get("retry_after"))
            .and_then(Value::as_u64)
            .map(Duration::from_secs)
            .or_else(|| answer.retry_after());
        return Err(SendError::Retryable {
            message,
            retry_after,
        });
    }
    let migrated = parameters
        .and_then(|p| p.get("migrate_to_chat_id"))
        .and_then(Value::as_i64);
    let hint = match (code, migrated) {
        (_, Some(id)) => format!("the group is now a supergroup: set chat_id to {id}"),
        (401, _) => "the bot token is wrong or was revoked".into(),
        (403, _) => "the bot was blocked, removed from the chat, or may not post in it".into(),
        (404, _) => "check bot_token and api_base".into(),
        (400, _) if description.contains("chat not found") => {
            "check chat_id, and that the bot was added to the chat".into()
        }
        (400, _) if description.contains("parse entities") => {
            "please report this as a watchpost bug".into()
        }
        _ => String::new(),
    };
    if !hint.is_empty() {
        message.push_str(&format!(" ({hint})"));
    }
    Err(SendError::fatal(message))
}

/// A run of text in one style.
#[derive(Debug, Clone, PartialEq)]
enum Span {
    Text(String),
    Bold(String),
    Code(String),
}

impl Span {
    fn text(&self) -> &str {
        match self {
            Span::Text(t) | Span::Bold(t) | Span::Code(t) => t,
        }
    }

    fn with_text(&self, text: String) -> Span {
        match self {
            Span::Text(_) => Span::Text(text),
            Span::Bold(_) => Span::Bold(text),
            Span::Code(_) => Span::Code(text),
        }
    }

    fn html(&self) -> String {
        match self {
            Span::Text(t) => html_text(t),
            Span::Bold(t) => format!("<b>{}</b>", html_text(t)),
            Span::Code(t) => format!("<code>{}</code>", html_text(t)),
        }
    }
}

/// One line of the message; consecutive `pre` lines form one `<pre>` block.
#[derive(Debug, Clone, PartialEq, Default)]
struct Line {
    spans: Vec<Span>,
    pre: bool,
}

impl Line {
    fn of(spans: Vec<Span>) -> Line {
        Line { spans, pre: false }
    }

    fn blank() -> Line {
        Line::default()
    }

    fn is_blank(&self) -> bool {
        !self.pre && self.spans.iter().all(|s| s.text().is_empty())
    }

    /// Visible length in UTF-16 code units.
    fn units(&self) -> usize {
        self.spans.iter().map(|s| units(s.text())).sum()
    }

    /// Entities of its own: bold and code spans, and a URL Telegram will link (a `<pre>`
    /// block is counted where it opens).
    fn entities(&self) -> usize {
        self.spans
            .iter()
            .filter(|s| match s {
                Span::Text(t) => t.contains("://"),
                Span::Bold(t) | Span::Code(t) => !t.is_empty(),
            })
            .count()
    }

    /// Pieces of at most `max` units each (only a line longer than a message needs this).
    fn split(self, max: usize) -> Vec<Line> {
        if self.units() <= max {
            return vec![self];
        }
        let mut out = Vec::new();
        let mut current = Line {
            spans: Vec::new(),
            pre: self.pre,
        };
        let mut used = 0;
        for span in &self.spans {
            let mut piece = String::new();
            for c in span.text().chars() {
                if used + c.len_utf16() > max {
                    if !piece.is_empty() {
                        current
                            .spans
                            .push(span.with_text(std::mem::take(&mut piece)));
                    }
                    out.push(std::mem::replace(
                        &mut current,
                        Line {
                            spans: Vec::new(),
                            pre: self.pre,
                        },
                    ));
                    used = 0;
                }
                piece.push(c);
                used += c.len_utf16();
            }
            if !piece.is_empty() {
                current.spans.push(span.with_text(piece));
            }
        }
        if !current.spans.is_empty() {
            out.push(current);
        }
        out
    }
}

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// One alert as lines, its title first.
fn alert_lines(alert: &Alert, locale: Locale) -> Vec<Line> {
    let m = alert.model(locale);
    let colon = m.colon();
    let mut lines = vec![
        Line::of(vec![Span::Bold(m.title.clone())]),
        Line::of(vec![Span::Text(m.summary.clone())]),
        Line::blank(),
    ];
    for note in &m.notes {
        lines.push(Line::of(vec![
            Span::Bold(format!("{}{colon}", m.note_label)),
            Span::Text(" ".into()),
            Span::Text(note.clone()),
        ]));
        lines.push(Line::blank());
    }
    for fact in &m.facts {
        // Telegram links a bare URL by itself.
        let value = match fact.kind {
            FactKind::Code => Span::Code(fact.value.clone()),
            FactKind::Text | FactKind::Url => Span::Text(fact.value.clone()),
        };
        lines.push(Line::of(vec![
            Span::Bold(format!("{}{colon}", fact.label)),
            Span::Text(" ".into()),
            value,
        ]));
    }
    if let Some(failures) = &m.failures {
        lines.push(Line::blank());
        lines.push(Line::of(vec![Span::Bold(failures.heading.to_string())]));
        for item in &failures.items {
            lines.push(Line::of(vec![Span::Text(format!("• {item}"))]));
        }
    }
    if let Some(table) = &m.table {
        lines.push(Line::blank());
        lines.push(Line::of(vec![Span::Bold(table.heading.to_string())]));
        for row in plain::table_lines(table) {
            lines.push(Line {
                spans: vec![Span::Text(row)],
                pre: true,
            });
        }
    }
    lines
}

/// The HTML texts for `alerts`: one, or several when one would be too long.
pub fn texts(alerts: &[Alert], locale: Locale) -> Vec<String> {
    let mut lines = Vec::new();
    let head = digest_title(alerts, locale);
    match alerts {
        [] => return Vec::new(),
        [one] => lines.extend(alert_lines(one, locale)),
        many => {
            lines.push(Line::of(vec![Span::Bold(head.clone())]));
            for alert in many {
                lines.push(Line::blank());
                lines.push(Line::of(vec![Span::Text("—".repeat(8))]));
                lines.extend(alert_lines(alert, locale));
            }
        }
    }

    // Parts after the first start with "<b>HEAD (k/n)</b>": keep room for that line.
    let head: String = one_line(&head).chars().take(100).collect();
    let reserve = units(&head) + " (999/999)".len() + 1;
    let budget = MAX_TEXT - reserve;
    let lines: Vec<Line> = lines.into_iter().flat_map(|l| l.split(budget)).collect();

    let mut parts: Vec<Vec<Line>> = vec![Vec::new()];
    let (mut used, mut entities) = (0, 0);
    for line in lines {
        let cost = line.units() + 1;
        let after_pre = parts.last().and_then(|p| p.last()).is_some_and(|l| l.pre);
        let mut cost_entities = line.entities() + usize::from(line.pre && !after_pre);
        let current = parts.last().expect("one part at least");
        if !current.is_empty()
            && (used + cost > budget || entities + cost_entities > MAX_ENTITIES - 1)
        {
            parts.push(Vec::new());
            used = 0;
            entities = 0;
            if line.is_blank() {
                continue;
            }
            cost_entities = line.entities() + usize::from(line.pre);
        }
        used += cost;
        entities += cost_entities;
        parts.last_mut().expect("one part at least").push(line);
    }

    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, mut part)| {
            while part.last().is_some_and(Line::is_blank) {
                part.pop();
            }
            if i > 0 {
                part.insert(
                    0,
                    Line::of(vec![Span::Bold(format!("{head} ({}/{n})", i + 1))]),
                );
            }
            render(&part)
        })
        .collect()
}

/// Lines as Telegram HTML.
fn render(lines: &[Line]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let in_pre = i > 0 && lines[i - 1].pre;
        if i > 0 {
            if in_pre && !line.pre {
                out.push_str("</pre>");
            }
            out.push('\n');
        }
        if line.pre && !in_pre {
            out.push_str("<pre>");
        }
        for span in &line.spans {
            out.push_str(&if line.pre {
                html_text(span.text())
            } else {
                span.html()
            });
        }
    }
    if lines.last().is_some_and(|l| l.pre) {
        out.push_str("</pre>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::sample_rows;

    fn alert(rows: usize) -> Alert {
        sample_rows("homepage", "探测点", rows)
    }

    /// The visible text of Telegram HTML: tags removed, entities decoded.
    pub(crate) fn visible(html: &str) -> String {
        let mut out = String::new();
        let mut rest = html;
        while let Some(i) = rest.find(['<', '&']) {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            if rest.starts_with('<') {
                let end = rest.find('>').expect("a closed tag");
                rest = &rest[end + 1..];
            } else {
                let end = rest.find(';').expect("a closed entity");
                out.push(match &rest[..=end] {
                    "&amp;" => '&',
                    "&lt;" => '<',
                    "&gt;" => '>',
                    other => panic!("unexpected entity {other}"),
                });
                rest = &rest[end + 1..];
            }
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn tokens() {
        check_token("123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-bs").unwrap();
        for bad in [
            "",
            "123456789",
            "abc:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-bs",
            "123:short",
            "123:AAEhBOweik6ad9r/QXMENQjcrGbqCr4K-bs",
            ":AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-bs",
        ] {
            let e = check_token(bad).unwrap_err();
            assert!(
                e.0.starts_with("telegram: bot_token: not a bot token"),
                "{e}"
            );
            if let Some((_, secret)) = bad.split_once(':') {
                assert!(!e.0.contains(secret), "{e}");
            }
        }
    }

    #[test]
    fn chat_ids() {
        assert_eq!(
            chat_id(&ChatId::Text("-1001234567890".into())).unwrap(),
            json!(-1001234567890i64)
        );
        assert_eq!(chat_id(&ChatId::Number(42)).unwrap(), json!(42));
        assert_eq!(
            chat_id(&ChatId::Text("@ops_alerts".into())).unwrap(),
            json!("@ops_alerts")
        );
        for bad in ["ops", "@a b", "@1abc", "", "@x"] {
            let e = chat_id(&ChatId::Text(bad.into())).unwrap_err();
            assert!(e.0.starts_with("telegram: chat_id:"), "{e}");
        }
    }

    #[test]
    fn one_alert_in_html() {
        let a = alert(2);
        let texts = texts(std::slice::from_ref(&a), Locale::En);
        assert_eq!(texts.len(), 1);
        let t = &texts[0];
        assert!(
            t.starts_with(
                "<b>[DOWN] homepage</b>\nhomepage is DOWN. Failing at 2 of 2 reporting locations: \
                 探测点-0000, 探测点-0001.\n\n<b>Time:</b> 2026-01-02 03:00:00 +00:00\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("<b>URL:</b> https://www.example.com/?a=1&amp;b=2\n"),
            "{t}"
        );
        assert!(
            t.contains("<b>Incident:</b> <code>homepage:1</code>\n"),
            "{t}"
        );
        assert!(
            t.contains("<b>Failing conditions</b>\n• total 1430ms &gt; 1000ms\n"),
            "{t}"
        );
        assert!(t.ends_with("</pre>"), "{t}");
        assert_eq!(t.matches("<pre>").count(), 1);
        // The table, unescaped, is the plain table.
        let pre = &t[t.find("<pre>").unwrap() + 5..t.len() - 6];
        assert_eq!(format!("{pre}\n"), a.plain_table(Locale::En));
    }

    #[test]
    fn every_http_phase_and_a_tls_alerts_certificate_days() {
        use crate::message::samples::{down, tls_down};
        let t = &texts(&[down()], Locale::ZhCn)[0];
        assert!(
            t.contains(
                "<pre>位置            结果  状态码  DNS解析  连接耗时  TLS握手  等待响应  下载耗时  总耗时  错误\n"
            ),
            "{t}"
        );
        for (locale, table) in [
            (
                Locale::En,
                "<pre>Location  Result  Connect     TLS   Total  Cert days\n\
                 local     FAIL     11.0ms  35.2ms  47.1ms       9.5d</pre>",
            ),
            (
                Locale::ZhCn,
                "<pre>位置   结果  连接耗时  TLS握手  总耗时  证书剩余\n\
                 local  异常    11.0ms   35.2ms  47.1ms      9.5d</pre>",
            ),
        ] {
            let t = &texts(&[tls_down()], locale)[0];
            assert!(t.ends_with(table), "{t}");
            assert!(t.contains("• local: cert_days 9.5d &gt; 14\n"), "{t}");
        }
    }

    #[test]
    fn long_texts_split_at_lines_within_the_limits() {
        let a = alert(400);
        let texts = texts(std::slice::from_ref(&a), Locale::ZhCn);
        assert!(texts.len() >= 5, "{}", texts.len());
        let mut rows = 0;
        for (i, t) in texts.iter().enumerate() {
            let v = visible(t);
            assert!(units(&v) <= MAX_TEXT, "{}", units(&v));
            assert_eq!(t.matches("<pre>").count(), t.matches("</pre>").count());
            assert_eq!(t.matches("<b>").count(), t.matches("</b>").count());
            if i > 0 {
                assert!(
                    t.starts_with(&format!(
                        "<b>【故障】homepage ({}/{})</b>\n",
                        i + 1,
                        texts.len()
                    )),
                    "{t}"
                );
            }
            // Table rows (the summary names the first failing locations too).
            rows += v.lines().filter(|l| l.starts_with("探测点-")).count();
        }
        assert_eq!(rows, 400);
    }

    #[test]
    fn entity_limit_splits_digests() {
        let alerts: Vec<Alert> = (0..40).map(|_| alert(0)).collect();
        let texts = texts(&alerts, Locale::En);
        assert!(texts.len() >= 2);
        for t in &texts {
            let entities = t.matches("<b>").count() + t.matches("<code>").count();
            assert!(entities <= MAX_ENTITIES, "{entities}");
        }
        let all: String = texts.iter().map(|t| visible(t)).collect();
        assert_eq!(all.matches("homepage is DOWN.").count(), 40);
    }

    #[test]
    fn a_line_longer_than_a_message_is_broken() {
        let mut a = alert(0);
        a.failures = vec![crate::FailedCondition::from_text("😀".repeat(5000))];
        let texts = texts(&[a], Locale::En);
        let mut smileys = 0;
        for t in &texts {
            let v = visible(t);
            assert!(units(&v) <= MAX_TEXT, "{}", units(&v));
            smileys += v.matches('😀').count();
        }
        assert_eq!(smileys, 5000);
    }
}
