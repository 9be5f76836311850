//! The alert itself and how it reads, in Chinese or English.
//!
//! An [`Alert`] is plain data: the engine builds it when it decides to notify, it is stored in
//! the outbox as a versioned JSON document ([`Alert::to_json`], [`Alert::from_json`]; see
//! [`doc`]) between commit and delivery, and every channel renders it at delivery time in the
//! configured [`Locale`].
//!
//! Rendering goes through one typed model ([`model::Message`], built by [`Alert::model`]): a
//! title, a summary, notes, facts (each marked text, URL or code), the failed conditions and a
//! table of locations (typed columns — one per metric, with a label and a numeric flag — and
//! rows with a verdict, cells and an error). Every renderer lays out that model: plain text
//! ([`plain`]), Markdown and the table-less robot Markdown ([`markdown`]), the HTML e-mail,
//! Slack blocks, Telegram HTML and Alertmanager annotations in their channel modules. None of
//! them reads another one's output.
//!
//! Which metrics are table columns is the alert's [`Alert::columns`] (the check kind's list:
//! HTTP `status, dns, connect, tls, wait, download, total`; tls `connect, tls, total,
//! cert_days`; ...), or every metric the rows carry when it is empty. A column no row has a
//! value for is left out (a plain `http://` check has no TLS phase).
//!
//! Times people read are shown in the alert's [`Alert::timezone`] (the config's `timezone:`)
//! with their offset, `2026-11-30 11:30:29 +08:00` (UTC, or an unknown zone, shows
//! `+00:00`): see [`Alert::local_time`]. Fields for machines (the webhook payload's `at` and
//! `since`, Alertmanager's `startsAt`/`endsAt`, the e-mail `Date` header) stay RFC 3339 UTC.
//!
//! [`Alert::notes`] are watchpost's own remarks about the alert (`watchpost could not run 12
//! checks since …: too many open files`): every rendering shows them apart from the
//! monitor's facts, one line each, as `Note: …` / `注意：…`.

pub mod doc;
pub mod markdown;
pub mod model;
pub mod plain;
pub mod texts;

pub use doc::DocumentError;
pub use markdown::{digest_card_lite, digest_markdown_lite, digest_title};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use texts::Texts;
use watchpost_units::Metric;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// An incident opened.
    Down,
    /// The incident is still open (`repeat`).
    Reminder,
    /// The incident closed.
    Resolved,
    /// `watchpost notify`: checks that a channel works.
    Test,
}

impl AlertKind {
    /// `down`, `reminder`, `resolved`, `test` (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Down => "down",
            AlertKind::Reminder => "reminder",
            AlertKind::Resolved => "resolved",
            AlertKind::Test => "test",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One location's result in the tick that triggered the alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationRow {
    /// `local` or a probe agent's name (`gz-telecom`, `广东佛山[电信]`).
    pub location: String,
    /// Whether this location passed its conditions.
    pub ok: bool,
    /// Every metric the check measured there (`dns`, `connect`, `tls`, ..., `status`,
    /// `cert_days`, `query`), in the probe's order.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// The probe's error (`connect refused: ...`), when the check failed on the network.
    #[serde(default)]
    pub error: Option<String>,
}

impl LocationRow {
    /// The metric called `name`, if measured here.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// One condition that failed: the operand, the comparison and both sides, and the sentence
/// explaining it (`total 1430ms > 1000ms`). A probe error is `{operand: "error", op: "",
/// expected: "", actual: "connect refused: ...", text: the same}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FailedCondition {
    /// Where it failed (`local`, a probe agent); empty when unknown (a document from before
    /// failures were data).
    #[serde(default)]
    pub location: String,
    /// `total`, `status`, `cert_days`, `body`, `header.X`, ... (`error` for a probe error).
    #[serde(default)]
    pub operand: String,
    /// `>`, `==`, `contains`, ...
    #[serde(default)]
    pub op: String,
    /// The condition's side, as written: `1000ms`.
    #[serde(default)]
    pub expected: String,
    /// What was observed, as shown: `1430ms`, `503`, `missing`.
    #[serde(default)]
    pub actual: String,
    /// The explanation: `total 1430ms > 1000ms`.
    #[serde(default)]
    pub text: String,
    /// The Kafka topic a `kafka_lag` monitor's per-topic `lag` failure is about (`orders` for
    /// `lag orders 1523 > 1000`); absent for every other failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl FailedCondition {
    /// A failure known only as a sentence (no location, operand or comparison): `text` and
    /// `actual` are `text`. What a document from before failures were data converts to.
    pub fn from_text(text: impl Into<String>) -> FailedCondition {
        let text = text.into();
        FailedCondition {
            actual: text.clone(),
            text,
            ..FailedCondition::default()
        }
    }

    /// A probe error at `location` as a failure: `{operand: "error", op: "", expected: "",
    /// actual: message, text: message}` (`message` like `connect refused: ...`).
    pub fn probe_error(location: impl Into<String>, message: impl Into<String>) -> FailedCondition {
        let message = message.into();
        FailedCondition {
            location: location.into(),
            operand: "error".into(),
            actual: message.clone(),
            text: message,
            ..FailedCondition::default()
        }
    }

    /// How a message lists it: `LOCATION: TEXT` (just the text without a location), on one
    /// line.
    pub fn line(&self) -> String {
        let text = if self.text.trim().is_empty() {
            [&self.operand, &self.op, &self.expected]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            self.text.clone()
        };
        if self.location.trim().is_empty() {
            one_line(&text)
        } else {
            one_line(&format!("{}: {text}", self.location))
        }
    }
}

/// A notification, as stored in the outbox (see [`doc`]) and rendered by channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub kind: AlertKind,
    /// The monitor's name.
    pub monitor: String,
    /// The incident this alert belongs to.
    pub incident_id: String,
    /// When the alert was decided (the tick's time).
    pub at: DateTime<Utc>,
    /// When the incident opened.
    pub since: Option<DateTime<Utc>>,
    /// The monitor's check kind (`http`, `tcp`, `tls`, `dns`), when known.
    pub check: Option<String>,
    /// The conditions that failed (for a resolved alert: those that were failing).
    pub failures: Vec<FailedCondition>,
    /// A test alert's message (`watchpost notify --message`).
    pub message: Option<String>,
    /// The metric names shown as table columns, in order; empty: every metric the rows have.
    pub columns: Vec<String>,
    /// Per-location results of the tick.
    pub locations: Vec<LocationRow>,
    /// What the monitor checks (shown as a link when it is http(s)).
    pub url: Option<String>,
    /// The IANA time zone (`Asia/Shanghai`) that times in messages are shown in; UTC when
    /// none (or when the name is not a known zone).
    pub timezone: Option<String>,
    /// watchpost's own remarks about this alert (something it could not do that bears on
    /// it), shown as separate `Note:` lines.
    pub notes: Vec<String>,
}

/// The language of alert messages (config `locale: zh-CN | en`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Locale {
    #[serde(rename = "zh-CN", alias = "zh-cn", alias = "zh")]
    ZhCn,
    #[default]
    #[serde(rename = "en")]
    En,
}

impl Locale {
    /// `zh-CN` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::ZhCn => "zh-CN",
            Locale::En => "en",
        }
    }

    /// The colon after a label: `:` or the full-width `：`.
    pub fn colon(self) -> &'static str {
        Texts::of(self).colon
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Locale {
    type Err = String;

    /// `zh-CN` (also `zh-cn`, `zh`) or `en`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zh-CN" | "zh-cn" | "zh" => Ok(Locale::ZhCn),
            "en" => Ok(Locale::En),
            other => Err(format!("locale {other:?} is not supported (zh-CN or en)")),
        }
    }
}

impl Alert {
    /// A test alert for `watchpost notify`: `monitor` names what is being tested (the channel),
    /// `message` is shown in the body.
    pub fn test(monitor: impl Into<String>, message: Option<String>, at: DateTime<Utc>) -> Alert {
        Alert {
            kind: AlertKind::Test,
            monitor: monitor.into(),
            incident_id: format!("test:{}", at.timestamp_millis()),
            at,
            since: None,
            check: None,
            failures: Vec::new(),
            message,
            columns: Vec::new(),
            locations: Vec::new(),
            url: None,
            timezone: None,
            notes: Vec::new(),
        }
    }

    /// `t` as people read it: in [`Alert::timezone`], to the second, with the offset —
    /// `2026-11-30 11:30:29 +08:00`; `+00:00` for UTC, no zone or an unknown zone.
    pub fn local_time(&self, t: DateTime<Utc>) -> String {
        local_time(t, self.timezone.as_deref())
    }

    /// [`Alert::at`] as people read it ([`Alert::local_time`]).
    pub fn at_local(&self) -> String {
        self.local_time(self.at)
    }

    /// [`Alert::since`] as people read it ([`Alert::local_time`]).
    pub fn since_local(&self) -> Option<String> {
        self.since.map(|t| self.local_time(t))
    }

    /// The word in front of each note: `Note` / `注意`.
    pub fn note_label(locale: Locale) -> &'static str {
        Texts::of(locale).note
    }

    /// Each of [`Alert::notes`] on one line, labelled: `Note: …` / `注意：…`.
    pub fn note_lines(&self, locale: Locale) -> Vec<String> {
        let t = Texts::of(locale);
        self.notes
            .iter()
            .map(|n| format!("{}{}{}", t.note, t.colon_space(), one_line(n)))
            .collect()
    }

    /// A key that is the same for every delivery attempt of this alert (it only depends on
    /// the stored fields) and differs between alerts: `INCIDENT:KIND:AT-MILLIS`. Sent as the
    /// webhook's `Idempotency-Key`, so a receiver can drop a retry it already processed.
    pub fn idempotency_key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.incident_id,
            self.kind,
            self.at.timestamp_millis()
        )
    }

    /// How long the incident has been open at `at` (None without `since`).
    pub fn duration(&self) -> Option<chrono::TimeDelta> {
        self.since.map(|since| self.at - since)
    }

    /// `[DOWN] homepage` / `【故障】homepage`.
    pub fn title(&self, locale: Locale) -> String {
        let tag = match (locale, self.kind) {
            (Locale::En, AlertKind::Down) => "[DOWN] ",
            (Locale::En, AlertKind::Reminder) => "[REMINDER] ",
            (Locale::En, AlertKind::Resolved) => "[RESOLVED] ",
            (Locale::En, AlertKind::Test) => "[TEST] ",
            (Locale::ZhCn, AlertKind::Down) => "【故障】",
            (Locale::ZhCn, AlertKind::Reminder) => "【提醒】",
            (Locale::ZhCn, AlertKind::Resolved) => "【恢复】",
            (Locale::ZhCn, AlertKind::Test) => "【测试】",
        };
        format!("{tag}{}", one_line(&self.monitor))
    }

    /// `DOWN`, `STILL DOWN`, `RESOLVED`, `TEST` / `故障`, `仍故障`, `恢复`, `测试`: the kind in a
    /// word, for short messages (SMS templates).
    pub fn status_word(&self, locale: Locale) -> &'static str {
        match (locale, self.kind) {
            (Locale::En, AlertKind::Down) => "DOWN",
            (Locale::En, AlertKind::Reminder) => "STILL DOWN",
            (Locale::En, AlertKind::Resolved) => "RESOLVED",
            (Locale::En, AlertKind::Test) => "TEST",
            (Locale::ZhCn, AlertKind::Down) => "故障",
            (Locale::ZhCn, AlertKind::Reminder) => "仍故障",
            (Locale::ZhCn, AlertKind::Resolved) => "恢复",
            (Locale::ZhCn, AlertKind::Test) => "测试",
        }
    }

    /// One sentence saying what happened.
    pub fn summary(&self, locale: Locale) -> String {
        let m = one_line(&self.monitor);
        let d = self.duration().map(|d| human_duration(d, locale));
        match (locale, self.kind) {
            (Locale::En, AlertKind::Down) => format!("{m} is DOWN."),
            (Locale::En, AlertKind::Reminder) => match d {
                Some(d) => format!("{m} is still DOWN (for {d})."),
                None => format!("{m} is still DOWN."),
            },
            (Locale::En, AlertKind::Resolved) => match d {
                Some(d) => format!("{m} has RECOVERED (was down for {d})."),
                None => format!("{m} has RECOVERED."),
            },
            (Locale::En, AlertKind::Test) => {
                "This is a test alert from watchpost; no action is needed.".to_string()
            }
            (Locale::ZhCn, AlertKind::Down) => format!("监控 {m} 发生故障。"),
            (Locale::ZhCn, AlertKind::Reminder) => match d {
                Some(d) => format!("监控 {m} 仍处于故障状态（已持续 {d}）。"),
                None => format!("监控 {m} 仍处于故障状态。"),
            },
            (Locale::ZhCn, AlertKind::Resolved) => match d {
                Some(d) => format!("监控 {m} 已恢复（故障持续 {d}）。"),
                None => format!("监控 {m} 已恢复。"),
            },
            (Locale::ZhCn, AlertKind::Test) => {
                "这是一条来自 watchpost 的测试告警，无需处理。".to_string()
            }
        }
    }

    /// The typed model every renderer lays out (see [`model`]).
    pub fn model(&self, locale: Locale) -> model::Message {
        model::Message::of(self, locale)
    }

    /// The full message as plain text: title, summary, notes, facts, failing conditions and
    /// an aligned per-location table (CJK characters count as two columns).
    pub fn plain(&self, locale: Locale) -> String {
        plain::render(&self.model(locale))
    }

    /// The per-location table as aligned plain text (empty without locations).
    pub fn plain_table(&self, locale: Locale) -> String {
        match &self.model(locale).table {
            Some(table) => plain::table_lines(table)
                .into_iter()
                .map(|l| l + "\n")
                .collect(),
            None => String::new(),
        }
    }

    /// The full message as Markdown (CommonMark + GFM tables).
    pub fn markdown(&self, locale: Locale) -> String {
        markdown::render(&self.model(locale))
    }

    /// Markdown for robots without tables (WeCom, DingTalk, Feishu): see
    /// [`markdown::render_lite`].
    pub fn markdown_lite(&self, locale: Locale) -> String {
        markdown::render_lite(&self.model(locale), markdown::TitleStyle::Heading)
    }

    /// The document stored in the outbox: `{"v":1,...}` (see [`doc`]).
    pub fn to_json(&self) -> String {
        doc::to_json(self)
    }

    /// Read a stored document: version 1, or the unversioned document of the release before
    /// versioning (converted, see [`doc`]). A newer version is an error saying so.
    pub fn from_json(text: &str) -> Result<Alert, DocumentError> {
        doc::from_json(text)
    }
}

/// `2026-11-30 11:30:29 +08:00`: `t` in the IANA zone `zone` (UTC when `None` or unknown),
/// whole seconds, with the offset.
pub fn local_time(t: DateTime<Utc>, zone: Option<&str>) -> String {
    const FORMAT: &str = "%Y-%m-%d %H:%M:%S %:z";
    match zone.and_then(|z| z.parse::<chrono_tz::Tz>().ok()) {
        Some(tz) => t.with_timezone(&tz).format(FORMAT).to_string(),
        None => t.format(FORMAT).to_string(),
    }
}

/// The two largest units: `1h 5m`, `12m 30s`, `2d 3h` / `1小时5分钟`, `12分钟30秒`.
pub(crate) fn human_duration(d: chrono::TimeDelta, locale: Locale) -> String {
    let secs = d.num_seconds().max(0);
    let parts = [
        (secs / 86_400, "d", "天"),
        (secs / 3_600 % 24, "h", "小时"),
        (secs / 60 % 60, "m", "分钟"),
        (secs % 60, "s", "秒"),
    ];
    let first = parts.iter().position(|p| p.0 > 0).unwrap_or(3);
    let shown: Vec<_> = parts[first..]
        .iter()
        .take(2)
        .enumerate()
        .filter(|(i, p)| *i == 0 || p.0 > 0)
        .map(|(_, p)| p)
        .collect();
    match locale {
        Locale::En => shown
            .iter()
            .map(|(n, en, _)| format!("{n}{en}"))
            .collect::<Vec<_>>()
            .join(" "),
        Locale::ZhCn => shown.iter().map(|(n, _, zh)| format!("{n}{zh}")).collect(),
    }
}

/// Newlines (and other control characters) become spaces: every item stays on one line.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = false;
    for c in s.trim().chars() {
        if c.is_control() || c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

/// `&`, `<` and `>` as `&amp;`, `&lt;` and `&gt;`: all that Slack's mrkdwn and Telegram's
/// HTML need escaped (quotes stay as they are).
pub(crate) fn html_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) use samples::sample_rows;

/// Sample alerts for the renderers' tests.
#[cfg(test)]
pub(crate) mod samples {
    use super::*;
    use chrono::TimeZone;
    use watchpost_units::Unit;

    pub fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, h, m, s).unwrap()
    }

    pub fn ms(name: &'static str, v: f64) -> Metric {
        Metric::new(name, v, Unit::Ms)
    }

    /// An HTTP row: status, then dns, connect, tls, wait, download, total.
    pub fn http_metrics(status: u16, phases: [f64; 6]) -> Vec<Metric> {
        let mut m = vec![Metric::new("status", f64::from(status), Unit::Count)];
        for (name, v) in ["dns", "connect", "tls", "wait", "download", "total"]
            .into_iter()
            .zip(phases)
        {
            m.push(ms(name, v));
        }
        m.push(ms("ttfb", phases[..4].iter().sum()));
        m
    }

    pub const HTTP_COLUMNS: [&str; 7] = [
        "status", "dns", "connect", "tls", "wait", "download", "total",
    ];

    /// The zh-CN labels of [`HTTP_COLUMNS`], as table headers show them.
    pub const HTTP_LABELS_ZH: [&str; 7] = [
        "状态码",
        "DNS解析",
        "连接耗时",
        "TLS握手",
        "等待响应",
        "下载耗时",
        "总耗时",
    ];

    pub fn failed(
        location: &str,
        operand: &str,
        op: &str,
        expected: &str,
        actual: &str,
    ) -> FailedCondition {
        FailedCondition {
            location: location.into(),
            operand: operand.into(),
            op: op.into(),
            expected: expected.into(),
            actual: actual.into(),
            text: format!("{operand} {actual} {op} {expected}"),
            topic: None,
        }
    }

    /// A down HTTP alert from three locations (one Chinese, one with a connect error).
    pub fn down() -> Alert {
        Alert {
            kind: AlertKind::Down,
            monitor: "homepage".into(),
            incident_id: "homepage:1767322800000".into(),
            at: at(3, 0, 0),
            since: Some(at(3, 0, 0)),
            check: Some("http".into()),
            failures: vec![
                failed("广东佛山[电信]", "total", ">", "1000ms", "1430ms"),
                FailedCondition::probe_error("hrb-unicom", "connect refused: connection refused"),
            ],
            message: None,
            columns: HTTP_COLUMNS.iter().map(|s| s.to_string()).collect(),
            locations: vec![
                LocationRow {
                    location: "local".into(),
                    ok: true,
                    metrics: http_metrics(200, [1.2, 0.08, 3.4, 140.5, 100.2, 250.8]),
                    error: None,
                },
                LocationRow {
                    location: "广东佛山[电信]".into(),
                    ok: false,
                    metrics: http_metrics(200, [12.0, 27.0, 55.0, 1310.0, 17.0, 1430.0]),
                    error: None,
                },
                LocationRow {
                    location: "hrb-unicom".into(),
                    ok: false,
                    metrics: vec![ms("dns", 2.1), ms("total", 3.5)],
                    error: Some("connect refused: connection refused".into()),
                },
            ],
            url: Some("https://www.example.com/".into()),
            timezone: None,
            notes: Vec::new(),
        }
    }

    /// A down tls alert: the certificate expires in 9.5 days.
    pub fn tls_down() -> Alert {
        Alert {
            kind: AlertKind::Down,
            monitor: "smtps".into(),
            incident_id: "smtps:1767322800000".into(),
            at: at(3, 0, 0),
            since: Some(at(3, 0, 0)),
            check: Some("tls".into()),
            failures: vec![failed("local", "cert_days", ">", "14", "9.5d")],
            message: None,
            columns: ["connect", "tls", "total", "cert_days"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            locations: vec![LocationRow {
                location: "local".into(),
                ok: false,
                metrics: vec![
                    ms("dns", 0.9),
                    ms("connect", 11.0),
                    ms("tls", 35.2),
                    ms("total", 47.1),
                    Metric::new("cert_days", 9.5, Unit::Days),
                ],
                error: None,
            }],
            url: Some("tls://mail.example.com:465".into()),
            timezone: None,
            notes: Vec::new(),
        }
    }

    /// A down alert of `monitor` (incident `monitor:1`) failing at `rows` locations named
    /// `{location}-0000`, `{location}-0001`, …: for the channels' splitting tests.
    pub fn sample_rows(monitor: &str, location: &str, rows: usize) -> Alert {
        let at = at(3, 0, 0);
        Alert {
            kind: AlertKind::Down,
            monitor: monitor.into(),
            incident_id: format!("{monitor}:1"),
            at,
            since: Some(at),
            check: Some("http".into()),
            failures: vec![failed("", "total", ">", "1000ms", "1430ms")],
            message: None,
            columns: HTTP_COLUMNS.iter().map(|s| s.to_string()).collect(),
            locations: (0..rows)
                .map(|i| LocationRow {
                    location: format!("{location}-{i:04}"),
                    ok: false,
                    metrics: vec![
                        Metric::new("status", 200.0, Unit::Count),
                        ms("connect", 27.0),
                        ms("download", 17.0),
                        ms("total", 1430.0),
                    ],
                    error: None,
                })
                .collect(),
            url: Some("https://www.example.com/?a=1&b=2".into()),
            timezone: None,
            notes: Vec::new(),
        }
    }
}
