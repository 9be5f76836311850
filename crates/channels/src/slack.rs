//! `type: slack`: a Slack incoming webhook, one Block Kit message per send.
//!
//! ```yaml
//! channels:
//!   ops-slack:
//!     type: slack
//!     webhook: "https://hooks.slack.com/services/T000/B000/${SLACK_HOOK}"   # `url:` works too
//!     timeout: 10s                                 # default 10s, the whole request
//!     ca_file: /etc/watchpost/private-ca.pem       # optional, for a private gateway
//! ```
//!
//! The webhook URL is the secret: error messages and `Debug` show its scheme, host and port
//! only.
//!
//! # Request
//!
//! `POST` the URL with `Content-Type: application/json` and
//!
//! ```json
//! {"text": "[DOWN] homepage\nhomepage is DOWN.",
//!  "blocks": [
//!    {"type": "header", "text": {"type": "plain_text", "text": "[DOWN] homepage"}},
//!    {"type": "section", "text": {"type": "mrkdwn", "text": "homepage is DOWN.\n\n*Time:* 2026-01-02T03:00:00Z\n*URL:* <https://www.example.com/|https://www.example.com/>\n*Incident:* `homepage:1767322800000`"}},
//!    {"type": "section", "text": {"type": "mrkdwn", "text": "*Failing conditions*\n• `total 1430ms &gt; 1000ms`"}},
//!    {"type": "section", "text": {"type": "mrkdwn", "text": "*Locations*\n```\nLocation  Result  Status  DNS  ...\n```"}}]}
//! ```
//!
//! `text` is the notification fallback (title and summary). Text in `mrkdwn` is Slack's own
//! markup, not Markdown: `*bold*`, `<url|label>`, and `&`, `<`, `>` written as `&amp;`,
//! `&lt;`, `&gt;` wherever they are meant literally (a monitor called `<b>&x` shows as such).
//! Slack has no tables: the per-location table of the message model (verdict and the check
//! kind's metrics: every HTTP phase, a tls check's certificate days, ...) is laid out as
//! aligned plain text in a preformatted block.
//!
//! Several alerts sent together (see [`crate::Channel::merges`]) make one message: the
//! [`digest_title`] as header, then each alert's sections, divided by `divider` blocks.
//!
//! # Limits
//!
//! Slack rejects (`invalid_blocks`, HTTP 400) a header over [`MAX_HEADER`] characters, a
//! section text over [`MAX_SECTION`], a message over [`MAX_BLOCKS`] blocks, and, in practice,
//! messages whose blocks hold much more than about 13,000 characters (`msg_blocks_too_long`);
//! it cuts `text` at 40,000. So headers are shortened with `…`, long failure lists and tables
//! are split over several sections (each table part in its own preformatted block, the
//! header row repeated), and when a message would exceed [`MAX_BLOCKS`] blocks or
//! [`MAX_MESSAGE_CHARS`] characters the rest goes in a second message (its header marked
//! `(2/2)`). Nothing is dropped except the tail of a single line longer than a whole
//! section. Sends are held to [one message a second](crate::limit) per channel, the rate
//! Slack documents for incoming webhooks.
//!
//! # Answer
//!
//! - 2xx (Slack says `ok`): delivered.
//! - 429: retryable, not before its `Retry-After`; 5xx and 408: retryable.
//! - Other 4xx: fatal, naming Slack's plain-text code — `invalid_payload`, `no_text`,
//!   `invalid_blocks` (400), `action_prohibited`, `invalid_token`,
//!   `posting_to_general_channel_denied` (403), `no_service`, `no_team`, `channel_not_found`
//!   (404), `channel_is_archived` (410) — with what it usually means.
//! - A 2xx JSON answer `{"ok": false, "error": CODE}` (a gateway speaking Slack's Web API
//!   dialect): fatal with CODE (retryable for `rate_limited`).
//! - Network errors and no answer within `timeout`: retryable.
//!
//! When the alerts need two messages and the second fails, a retry sends both again.

use crate::http::{Answer, Endpoint, Redact, default_timeout, redact_url, timeout};
use crate::limit::RateLimit;
use crate::message::model::FactKind;
use crate::message::{Alert, Locale, digest_title, html_text, one_line, plain};
use crate::{ConfigError, Delivery, SendError};
use http::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// Most characters of a header block's text.
pub const MAX_HEADER: usize = 150;
/// Most characters of a section block's text.
pub const MAX_SECTION: usize = 3000;
/// Most blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Most characters of block text watchpost puts in one message (Slack's unpublished
/// `msg_blocks_too_long` threshold is around 13,000).
pub const MAX_MESSAGE_CHARS: usize = 12_000;
/// Most characters of the fallback `text` (Slack cuts at 40,000; a notification shows far
/// less).
const MAX_FALLBACK: usize = 3000;

/// `{type: slack, webhook, timeout, ca_file}`. `Debug` hides the webhook's path.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming webhook URL, `https://hooks.slack.com/services/T.../B.../...`. Key
    /// `webhook`, or `url`.
    #[serde(alias = "url")]
    pub webhook: String,
    /// The whole request, from connecting to the last byte of the answer.
    #[serde(default = "default_timeout", deserialize_with = "timeout")]
    pub timeout: Duration,
    /// PEM certificates to trust besides the webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field("webhook", &redact_url(&self.webhook))
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// A built Slack channel.
pub struct Slack {
    endpoint: Endpoint,
    timeout: Duration,
    limit: RateLimit,
}

impl std::fmt::Debug for Slack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slack")
            .field("to", &self.endpoint.shown())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Slack {
    /// Check `config` (an absolute `http(s)` URL with a host, a readable `ca_file`) and build
    /// the channel.
    pub fn new(config: &SlackConfig) -> Result<Slack, ConfigError> {
        let endpoint = Endpoint::new(&config.webhook, config.ca_file.as_deref(), "slack: webhook")?;
        Ok(Slack {
            endpoint,
            timeout: config.timeout,
            limit: RateLimit::per_second(1),
        })
    }

    /// Post `alerts` (at least one) as one message, or more when Slack's limits force it.
    pub async fn send(&self, alerts: &[Alert], locale: Locale) -> Result<Delivery, SendError> {
        let messages = payloads(alerts, locale);
        if messages.is_empty() {
            return Ok(Delivery::default());
        }
        self.limit.take(messages.len() as u32, "slack")?;
        let mut delivery = Delivery::default();
        for message in messages {
            let body = serde_json::to_vec(&message).expect("a JSON value serializes");
            let answer = self
                .endpoint
                .post(None, &HeaderMap::new(), body, self.timeout)
                .await?;
            delivery = classify(&answer)?;
        }
        Ok(delivery)
    }
}

impl Slack {
    /// The secrets masked in texts from Slack's answers (the hook's path).
    pub fn redact(&self) -> &Redact {
        self.endpoint.redact()
    }
}

/// Classify Slack's answer (see the module docs).
fn classify(answer: &Answer) -> Result<Delivery, SendError> {
    let status = answer.status;
    if status.is_success() {
        let json = answer.json();
        let refused = json
            .as_ref()
            .filter(|j| j.get("ok") == Some(&Value::Bool(false)));
        if let Some(o) = refused {
            let code = answer.text(o.get("error").and_then(Value::as_str).unwrap_or("unknown"));
            let message = format!("slack: {}", explain(&code));
            return Err(if code == "rate_limited" || code == "ratelimited" {
                SendError::Retryable {
                    message,
                    retry_after: answer.retry_after(),
                }
            } else {
                SendError::fatal(message)
            });
        }
        return Ok(answer.delivery());
    }
    let code = answer.short_body();
    let mut message = format!("slack: HTTP {status}");
    if !code.is_empty() {
        message.push_str(": ");
        message.push_str(&explain(&code));
    }
    let n = status.as_u16();
    if n == 408 || n == 429 || status.is_server_error() {
        Err(SendError::Retryable {
            message,
            retry_after: answer.retry_after(),
        })
    } else {
        Err(SendError::fatal(message))
    }
}

/// A Slack error code, with what it usually means when we know.
fn explain(code: &str) -> String {
    let hint = match code {
        "invalid_payload"
        | "no_text"
        | "invalid_blocks"
        | "invalid_blocks_format"
        | "msg_blocks_too_long"
        | "too_many_attachments" => {
            "Slack refused the message; please report this as a watchpost bug"
        }
        "no_service" | "no_service_id" | "no_team" | "team_not_found" => {
            "the webhook URL is wrong, or the webhook or its app was removed"
        }
        "invalid_token" | "token_revoked" | "token_expired" => {
            "the webhook's token is invalid or was revoked"
        }
        "team_disabled" => "the Slack workspace is disabled",
        "channel_not_found" => "the webhook's channel was deleted",
        "channel_is_archived" => "the webhook's channel is archived",
        "action_prohibited" => "a workspace admin restricted posting to this channel",
        "posting_to_general_channel_denied" => "only admins may post to this channel",
        "user_not_found" => "the webhook's user no longer exists",
        "rate_limited" | "ratelimited" => "too many messages",
        _ => return code.to_string(),
    };
    format!("{code} ({hint})")
}

/// The message bodies for `alerts`: usually one; more only when Slack's block limits force
/// it.
pub fn payloads(alerts: &[Alert], locale: Locale) -> Vec<Value> {
    if alerts.is_empty() {
        return Vec::new();
    }
    let head = digest_title(alerts, locale);
    let many = alerts.len() > 1;

    // Pack the blocks (without the header) into messages, keeping an alert's blocks together
    // when they fit in one message.
    let room_blocks = MAX_BLOCKS - 1;
    let room_chars = MAX_MESSAGE_CHARS - MAX_HEADER;
    let mut messages: Vec<Vec<Block>> = vec![Vec::new()];
    for (i, alert) in alerts.iter().enumerate() {
        let mut blocks = Vec::new();
        if i > 0 {
            blocks.push(Block::Divider);
        }
        blocks.extend(alert_blocks(alert, locale, many));
        let cost: usize = blocks.iter().map(Block::chars).sum();
        let current = messages.last().expect("one message at least");
        let used: usize = current.iter().map(Block::chars).sum();
        if !current.is_empty()
            && (current.len() + blocks.len() > room_blocks || used + cost > room_chars)
        {
            messages.push(Vec::new());
        }
        for block in blocks {
            let current = messages.last_mut().expect("one message at least");
            let used: usize = current.iter().map(Block::chars).sum();
            if !current.is_empty()
                && (current.len() + 1 > room_blocks || used + block.chars() > room_chars)
            {
                messages.push(Vec::new());
            }
            let current = messages.last_mut().expect("one message at least");
            if current.is_empty() && matches!(block, Block::Divider) {
                continue;
            }
            current.push(block);
        }
    }

    let n = messages.len();
    messages
        .into_iter()
        .enumerate()
        .map(|(i, blocks)| {
            let title = if n > 1 {
                format!("{head} ({}/{n})", i + 1)
            } else {
                head.clone()
            };
            // The fallback: the title and each alert's summary, in this message or not.
            let mut text = html_text(&title);
            for alert in alerts {
                text.push('\n');
                text.push_str(&html_text(&alert.summary(locale)));
            }
            let mut all = vec![json!({
                "type": "header",
                "text": {"type": "plain_text", "text": cut(&title, MAX_HEADER)},
            })];
            all.extend(blocks.iter().map(Block::to_json));
            json!({"text": cut(&text, MAX_FALLBACK), "blocks": all})
        })
        .collect()
}

enum Block {
    Section(String),
    Divider,
}

impl Block {
    fn chars(&self) -> usize {
        match self {
            Block::Section(t) => t.chars().count(),
            Block::Divider => 0,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Block::Section(t) => json!({"type": "section", "text": {"type": "mrkdwn", "text": t}}),
            Block::Divider => json!({"type": "divider"}),
        }
    }
}

/// One alert's sections: summary and facts; failing conditions; the location table. With
/// `titled`, the first section starts with the alert's title (the header is the digest's).
fn alert_blocks(alert: &Alert, locale: Locale, titled: bool) -> Vec<Block> {
    let m = alert.model(locale);
    let colon = m.colon();
    let mut lines = Vec::new();
    if titled {
        lines.push(bold(&m.title));
    }
    lines.push(html_text(&m.summary));
    lines.push(String::new());
    for note in &m.notes {
        let label = format!("{}{colon}", m.note_label);
        lines.push(format!("{} {}", bold(&label), html_text(note)));
        lines.push(String::new());
    }
    for fact in &m.facts {
        let value = match fact.kind {
            FactKind::Url => link(&fact.value),
            FactKind::Code => code(&fact.value),
            FactKind::Text => html_text(&fact.value),
        };
        lines.push(format!(
            "{} {value}",
            bold(&format!("{}{colon}", fact.label))
        ));
    }
    let mut blocks: Vec<Block> = sections("", &lines)
        .into_iter()
        .map(Block::Section)
        .collect();

    if let Some(failures) = &m.failures {
        let lines: Vec<String> = failures
            .items
            .iter()
            .map(|f| format!("• {}", code(f)))
            .collect();
        let heading = bold(failures.heading);
        blocks.extend(sections(&heading, &lines).into_iter().map(Block::Section));
    }

    if let Some(table) = &m.table {
        let aligned = plain::aligned(table);
        let header = html_text(&aligned.header);
        let rows: Vec<String> = aligned.rows.iter().map(|r| html_text(r)).collect();
        let heading = bold(table.heading);
        blocks.extend(
            table_sections(&heading, &header, &rows)
                .into_iter()
                .map(Block::Section),
        );
    }
    blocks
}

/// `lines` (already mrkdwn) under `heading` in as few section texts of at most
/// [`MAX_SECTION`] characters as they fit in; a single longer line is cut.
fn sections(heading: &str, lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = heading.to_string();
    for line in lines {
        let line = cut(line, MAX_SECTION - 1);
        let needed = if current.is_empty() { 0 } else { 1 } + line.chars().count();
        if !current.is_empty() && current.chars().count() + needed > MAX_SECTION {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    let current = current.trim_end().to_string();
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The table in preformatted blocks of at most [`MAX_SECTION`] characters, the first under
/// `heading`, each starting with the `header` row.
fn table_sections(heading: &str, header: &str, rows: &[String]) -> Vec<String> {
    const FENCE: &str = "```";
    let wrap = |head: &str, body: &[&str]| {
        let mut text = String::new();
        if !head.is_empty() {
            text.push_str(head);
            text.push('\n');
        }
        text.push_str(FENCE);
        text.push('\n');
        text.push_str(header);
        for row in body {
            text.push('\n');
            text.push_str(row);
        }
        text.push('\n');
        text.push_str(FENCE);
        text
    };
    let overhead = |head: &str| wrap(head, &[]).chars().count();
    let mut out = Vec::new();
    let mut body: Vec<&str> = Vec::new();
    let mut used = overhead(heading);
    let mut head = heading;
    let room = |head: &str| MAX_SECTION.saturating_sub(overhead(head) + 1).max(1);
    let cut_rows: Vec<String> = rows.iter().map(|r| cut(r, room(heading))).collect();
    for row in &cut_rows {
        let cost = row.chars().count() + 1;
        if !body.is_empty() && used + cost > MAX_SECTION {
            out.push(wrap(head, &body));
            body.clear();
            head = "";
            used = overhead(head);
        }
        body.push(row);
        used += cost;
    }
    if !body.is_empty() || out.is_empty() {
        out.push(wrap(head, &body));
    }
    out
}

fn bold(s: &str) -> String {
    format!("*{}*", html_text(&one_line(s)))
}

/// Inline code, when the text can be one (no backtick inside); escaped text otherwise.
fn code(s: &str) -> String {
    if s.is_empty() || s.contains('`') {
        html_text(s)
    } else {
        format!("`{}`", html_text(s))
    }
}

/// `<url|url>` for a plain http(s) URL, escaped text otherwise.
fn link(url: &str) -> String {
    let plain = (url.starts_with("http://") || url.starts_with("https://"))
        && !url.contains(|c: char| c.is_whitespace() || c == '|' || c == '<' || c == '>');
    if plain {
        let url = html_text(url);
        format!("<{url}|{url}>")
    } else {
        html_text(url)
    }
}

/// At most `max` characters, the last one `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    // Don't leave half an entity behind.
    if let Some(amp) = out.rfind('&').filter(|&i| !out[i..].contains(';')) {
        out.truncate(amp);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FailedCondition;
    use crate::message::sample_rows;

    fn alert(monitor: &str, rows: usize) -> Alert {
        sample_rows(monitor, "location", rows)
    }

    fn sections_of(message: &Value) -> Vec<String> {
        message["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "section")
            .map(|b| b["text"]["text"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn escaping_and_links() {
        assert_eq!(html_text("<b>&\"x\""), "&lt;b&gt;&amp;\"x\"");
        assert_eq!(
            link("https://x.example/?a=1&b=2"),
            "<https://x.example/?a=1&amp;b=2|https://x.example/?a=1&amp;b=2>"
        );
        assert_eq!(link("https://x.example/a|b"), "https://x.example/a|b");
        assert_eq!(code("a`b<"), "a`b&lt;");
        assert_eq!(code("a<b"), "`a&lt;b`");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("ab&amp;cd", 6), "ab…");
        assert_eq!(cut("abc", 3), "abc");
    }

    #[test]
    fn a_big_table_is_split_over_sections_within_limits() {
        let a = alert("homepage", 300);
        let messages = payloads(std::slice::from_ref(&a), Locale::En);
        assert_eq!(messages.len(), 2, "300 rows are about 15,000 characters");
        let mut rows = 0;
        for m in &messages {
            let blocks = m["blocks"].as_array().unwrap();
            assert!(blocks.len() <= MAX_BLOCKS);
            let header = blocks[0]["text"]["text"].as_str().unwrap();
            assert!(header.chars().count() <= MAX_HEADER);
            let total: usize = sections_of(m).iter().map(|s| s.chars().count()).sum();
            assert!(total <= MAX_MESSAGE_CHARS, "{total}");
            for s in sections_of(m) {
                assert!(s.chars().count() <= MAX_SECTION, "{}", s.len());
                if s.contains("```") {
                    assert!(s.ends_with("\n```"), "{s}");
                    assert!(s.contains("```\nLocation"), "the header row repeats: {s}");
                    // (The summary names the first failing locations too.)
                    rows += s.matches("location-").count();
                }
            }
        }
        assert_eq!(rows, 300, "no row lost");
        assert_eq!(
            messages[1]["blocks"][0]["text"]["text"],
            "[DOWN] homepage (2/2)"
        );
    }

    #[test]
    fn many_alerts_spill_over_the_block_limit() {
        // 3 sections per alert, a divider between: 20 alerts need 79 blocks.
        let alerts: Vec<Alert> = (0..20).map(|i| alert(&format!("m{i}"), 1)).collect();
        let messages = payloads(&alerts, Locale::ZhCn);
        assert_eq!(messages.len(), 2);
        let mut titles = 0;
        for m in &messages {
            let blocks = m["blocks"].as_array().unwrap();
            assert!(blocks.len() <= MAX_BLOCKS, "{}", blocks.len());
            assert_ne!(blocks[1]["type"], "divider");
            titles += sections_of(m)
                .iter()
                .filter(|s| s.starts_with("*【故障】m"))
                .count();
        }
        assert_eq!(titles, 20);
        assert_eq!(
            messages[0]["blocks"][0]["text"]["text"],
            "【watchpost】20 条告警：故障 20 (1/2)"
        );
    }

    #[test]
    fn a_long_failure_list_is_split_and_a_huge_line_cut() {
        let mut a = alert("m", 0);
        a.failures = (0..100)
            .map(|i| {
                FailedCondition::from_text(format!("condition {i} failed: {}", "x".repeat(60)))
            })
            .collect();
        a.failures
            .push(FailedCondition::from_text("y".repeat(5000)));
        let messages = payloads(&[a], Locale::En);
        assert_eq!(messages.len(), 1);
        let s = sections_of(&messages[0]);
        assert!(s.len() >= 4, "{}", s.len());
        assert!(s.iter().all(|t| t.chars().count() <= MAX_SECTION));
        assert_eq!(
            s.iter().map(|t| t.matches("• ").count()).sum::<usize>(),
            101
        );
        assert!(s.last().unwrap().ends_with('…'));
    }

    #[test]
    fn every_http_phase_and_a_tls_alerts_certificate_days() {
        use crate::message::samples::{down, tls_down};
        let m = &payloads(&[down()], Locale::En)[0];
        let table = sections_of(m)
            .into_iter()
            .find(|s| s.contains("```"))
            .unwrap();
        assert!(
            table.contains(
                "Location        Result  Status     DNS  Connect     TLS    Wait  Download   Total  Error\n"
            ),
            "{table}"
        );
        for (locale, header, row) in [
            (
                Locale::En,
                "Location  Result  Connect     TLS   Total  Cert days",
                "local     FAIL     11.0ms  35.2ms  47.1ms       9.5d",
            ),
            (
                Locale::ZhCn,
                "位置   结果  连接耗时  TLS握手  总耗时  证书剩余",
                "local  异常    11.0ms   35.2ms  47.1ms      9.5d",
            ),
        ] {
            let m = &payloads(&[tls_down()], locale)[0];
            let s = sections_of(m);
            let table = s.iter().find(|s| s.contains("```")).unwrap();
            assert!(
                table.ends_with(&format!("```\n{header}\n{row}\n```")),
                "{table}"
            );
            // A tls:// target is not made a link.
            assert!(s[0].contains(" tls://mail.example.com:465\n"), "{}", s[0]);
            assert!(
                s.iter()
                    .any(|t| t.contains("• `local: cert_days 9.5d &gt; 14`"))
            );
        }
    }

    #[test]
    fn long_headers_are_cut() {
        let a = alert(&"长".repeat(300), 1);
        let m = &payloads(&[a], Locale::ZhCn)[0];
        let header = m["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), MAX_HEADER);
        assert!(header.ends_with('…'));
    }

    #[test]
    fn region_isp_and_a_missing_location_in_the_table() {
        let a = crate::message::samples::multi_location();
        let messages = payloads(std::slice::from_ref(&a), Locale::En);
        assert_eq!(messages.len(), 1);
        let sections = sections_of(&messages[0]);
        assert!(
            sections[0].starts_with(
                "homepage is DOWN. Failing at 1 of 2 reporting locations: hrb-unicom \
                 (1 missing: sh-mobile).\n\n"
            ),
            "{}",
            sections[0]
        );
        let table = sections.iter().find(|s| s.contains("```")).unwrap();
        assert!(
            table.ends_with(
                "```\n\
                 Location    Region        ISP   Result   Status     DNS  Connect     TLS    Wait  Download   Total\n\
                 gz-telecom  广东佛山      电信  OK          200   1.2ms  0.080ms   3.4ms   140ms     100ms   251ms\n\
                 hrb-unicom  黑龙江哈尔滨  -     FAIL        200  12.0ms   27.0ms  55.0ms  1310ms    17.0ms  1430ms\n\
                 sh-mobile   上海          移动  MISSING\n\
                 ```"
            ),
            "{table}"
        );
        let zh = payloads(std::slice::from_ref(&a), Locale::ZhCn);
        let sections = sections_of(&zh[0]);
        assert!(
            sections[0].starts_with(
                "监控 homepage 发生故障。1/2 个上报地点失败：hrb-unicom（1 个未上报：sh-mobile）。\n"
            ),
            "{}",
            sections[0]
        );
        let table = sections.iter().find(|s| s.contains("```")).unwrap();
        assert!(
            table.contains("\nsh-mobile   上海          移动    未上报\n```"),
            "{table}"
        );
        // The notification fallback names the failing locations too.
        assert_eq!(
            zh[0]["text"],
            "【故障】homepage\n监控 homepage 发生故障。1/2 个上报地点失败：hrb-unicom（1 个未上报：sh-mobile）。"
        );
    }
}
