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
//! A monitor checked from several probe locations has a row per location, each with its
//! region and ISP when known ([`LocationRow::region`], [`LocationRow::isp`]: the table gets
//! `Region`/`地区` and `ISP`/`运营商` columns when some row has one) and possibly
//! [`LocationRow::missing`]: the location did not report for the tick, shown as
//! `MISSING`/`未上报` with empty values — neither passing nor failing. The summary of a down
//! alert or reminder with more than one location names the failing ones, of how many
//! reported, and the missing ones ([`Alert::locations_sentence`]).
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
///
/// `region`, `isp` and `missing` are left out of the stored document when unset (and read as
/// unset from a document without them), so a single-location alert is stored as before.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LocationRow {
    /// `local` or a probe agent's name (`gz-telecom`, `广东佛山[电信]`).
    pub location: String,
    /// Whether this location passed its conditions (false when it is [`LocationRow::missing`]).
    pub ok: bool,
    /// Every metric the check measured there (`dns`, `connect`, `tls`, ..., `status`,
    /// `cert_days`, `query`), in the probe's order.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// The probe's error (`connect refused: ...`), when the check failed on the network.
    #[serde(default)]
    pub error: Option<String>,
    /// Where the location is (`广东佛山`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The network it probes from (`电信`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isp: Option<String>,
    /// The location did not report for this tick: it neither passed nor failed (`ok` is
    /// false, `metrics` empty, `error` None). Messages show it as missing (`MISSING` / `未上报`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
}

impl LocationRow {
    /// A location that did not report for this tick ([`LocationRow::missing`]).
    pub fn not_reported(location: impl Into<String>) -> LocationRow {
        LocationRow {
            location: location.into(),
            missing: true,
            ..LocationRow::default()
        }
    }

    /// Whether it reported and failed its conditions (a missing location did not).
    pub fn failed(&self) -> bool {
        !self.ok && !self.missing
    }

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

    /// What happened, in a sentence; with more than one location, followed by which
    /// locations fail, of how many that reported, and which did not report (see
    /// [`Alert::locations_sentence`]).
    pub fn summary(&self, locale: Locale) -> String {
        let kind = self.kind_sentence(locale);
        match self.locations_sentence(locale) {
            Some(l) if locale == Locale::En => format!("{kind} {l}"),
            Some(l) => format!("{kind}{l}"),
            None => kind,
        }
    }

    /// For a down alert or a reminder with more than one location row (some failing or
    /// missing), the locations in a sentence — how many of those that reported fail, which
    /// (the first [`NAMED_LOCATIONS`]), and which did not report:
    ///
    /// - `Failing at 2 of 3 reporting locations: gz-telecom, hrb-unicom (1 missing:
    ///   sh-mobile).`
    /// - `2/3 个上报地点失败：gz-telecom、hrb-unicom（1 个未上报：sh-mobile）。`
    ///
    /// Without a failing location: `Failing at 0 of 2 reporting locations (1 missing:
    /// sh-mobile).`; when none reported: `No location reported (3 missing: a, b, c).` /
    /// `没有地点上报（3 个未上报：a、b、c）。`
    pub fn locations_sentence(&self, locale: Locale) -> Option<String> {
        let down = matches!(self.kind, AlertKind::Down | AlertKind::Reminder);
        if !down || self.locations.len() < 2 {
            return None;
        }
        let names = |pick: fn(&LocationRow) -> bool| -> Vec<String> {
            self.locations
                .iter()
                .filter(|l| pick(l))
                .map(|l| one_line(&l.location))
                .collect()
        };
        let failing = names(LocationRow::failed);
        let missing = names(|l| l.missing);
        if failing.is_empty() && missing.is_empty() {
            return None;
        }
        let reported = self.locations.len() - missing.len();
        let (f, k) = (failing.len(), missing.len());
        Some(match locale {
            Locale::En => {
                let mut s = if reported == 0 {
                    "No location reported".to_string()
                } else {
                    let plural = if reported == 1 { "" } else { "s" };
                    format!("Failing at {f} of {reported} reporting location{plural}")
                };
                if f > 0 {
                    s.push_str(&format!(": {}", name_list(&failing, locale)));
                }
                if k > 0 {
                    s.push_str(&format!(" ({k} missing: {})", name_list(&missing, locale)));
                }
                s.push('.');
                s
            }
            Locale::ZhCn => {
                let mut s = if reported == 0 {
                    "没有地点上报".to_string()
                } else {
                    format!("{f}/{reported} 个上报地点失败")
                };
                if f > 0 {
                    s.push_str(&format!("：{}", name_list(&failing, locale)));
                }
                if k > 0 {
                    s.push_str(&format!(
                        "（{k} 个未上报：{}）",
                        name_list(&missing, locale)
                    ));
                }
                s.push('。');
                s
            }
        })
    }

    /// What happened, in one sentence.
    fn kind_sentence(&self, locale: Locale) -> String {
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

/// How many locations [`Alert::locations_sentence`] names in each list; the others are
/// counted (`a, b, c, d, e and 2 more` / `a、b、c、d、e 等 7 个`).
pub const NAMED_LOCATIONS: usize = 5;

/// `names` joined: `a, b` / `a、b`, the first [`NAMED_LOCATIONS`] of a longer list followed
/// by `and N more` / `等 TOTAL 个`.
fn name_list(names: &[String], locale: Locale) -> String {
    let shown = &names[..names.len().min(NAMED_LOCATIONS)];
    let more = names.len() - shown.len();
    match locale {
        Locale::En if more > 0 => format!("{} and {more} more", shown.join(", ")),
        Locale::En => shown.join(", "),
        Locale::ZhCn if more > 0 => format!("{} 等 {} 个", shown.join("、"), names.len()),
        Locale::ZhCn => shown.join("、"),
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
mod tests {
    use super::samples::*;
    use super::*;

    #[test]
    fn the_summary_names_failing_and_missing_locations() {
        let a = multi_location();
        assert_eq!(
            a.summary(Locale::En),
            "homepage is DOWN. Failing at 1 of 2 reporting locations: hrb-unicom \
             (1 missing: sh-mobile)."
        );
        assert_eq!(
            a.summary(Locale::ZhCn),
            "监控 homepage 发生故障。1/2 个上报地点失败：hrb-unicom（1 个未上报：sh-mobile）。"
        );
        // The title stays the monitor's.
        assert_eq!(a.title(Locale::En), "[DOWN] homepage");

        let mut r = a.clone();
        r.kind = AlertKind::Reminder;
        r.at = at(3, 30, 5);
        assert_eq!(
            r.summary(Locale::En),
            "homepage is still DOWN (for 30m 5s). Failing at 1 of 2 reporting locations: \
             hrb-unicom (1 missing: sh-mobile)."
        );

        // Two failing, one missing, none passing.
        let mut b = a.clone();
        b.locations[0].ok = false;
        assert_eq!(
            b.locations_sentence(Locale::En).unwrap(),
            "Failing at 2 of 2 reporting locations: gz-telecom, hrb-unicom (1 missing: \
             sh-mobile)."
        );
        assert_eq!(
            b.locations_sentence(Locale::ZhCn).unwrap(),
            "2/2 个上报地点失败：gz-telecom、hrb-unicom（1 个未上报：sh-mobile）。"
        );

        // Only a missing one.
        let mut c = a.clone();
        c.locations[1].ok = true;
        assert_eq!(
            c.locations_sentence(Locale::En).unwrap(),
            "Failing at 0 of 2 reporting locations (1 missing: sh-mobile)."
        );
        // One reporting location.
        c.locations[0] = LocationRow::not_reported("gz-telecom");
        c.locations[1].ok = false;
        assert_eq!(
            c.locations_sentence(Locale::En).unwrap(),
            "Failing at 1 of 1 reporting location: hrb-unicom (2 missing: gz-telecom, sh-mobile)."
        );
        // None reported.
        c.locations[1] = LocationRow::not_reported("hrb-unicom");
        assert_eq!(
            c.locations_sentence(Locale::En).unwrap(),
            "No location reported (3 missing: gz-telecom, hrb-unicom, sh-mobile)."
        );
        assert_eq!(
            c.locations_sentence(Locale::ZhCn).unwrap(),
            "没有地点上报（3 个未上报：gz-telecom、hrb-unicom、sh-mobile）。"
        );
    }

    #[test]
    fn no_locations_sentence_for_one_location_a_recovery_or_a_test() {
        // One `local` row: the summary is as it always was.
        assert_eq!(tls_down().locations_sentence(Locale::En), None);
        assert_eq!(tls_down().summary(Locale::En), "smtps is DOWN.");
        assert_eq!(tls_down().summary(Locale::ZhCn), "监控 smtps 发生故障。");
        let mut one = multi_location();
        one.locations.truncate(2);
        one.locations.remove(0);
        assert_eq!(one.summary(Locale::En), "homepage is DOWN.");
        // A recovery does not list locations.
        let mut r = multi_location();
        r.kind = AlertKind::Resolved;
        assert_eq!(
            r.summary(Locale::En),
            "homepage has RECOVERED (was down for 0s)."
        );
        assert_eq!(r.locations_sentence(Locale::ZhCn), None);
        // Every location passing: nothing to say.
        let mut ok = multi_location();
        ok.locations.truncate(2);
        ok.locations[1].ok = true;
        assert_eq!(ok.locations_sentence(Locale::En), None);
    }

    #[test]
    fn long_lists_of_locations_are_cut() {
        let a = sample_rows("homepage", "p", 12);
        assert_eq!(
            a.locations_sentence(Locale::En).unwrap(),
            "Failing at 12 of 12 reporting locations: p-0000, p-0001, p-0002, p-0003, p-0004 \
             and 7 more."
        );
        assert_eq!(
            a.locations_sentence(Locale::ZhCn).unwrap(),
            "12/12 个上报地点失败：p-0000、p-0001、p-0002、p-0003、p-0004 等 12 个。"
        );
    }
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
                    ..LocationRow::default()
                },
                LocationRow {
                    location: "广东佛山[电信]".into(),
                    ok: false,
                    metrics: http_metrics(200, [12.0, 27.0, 55.0, 1310.0, 17.0, 1430.0]),
                    error: None,
                    ..LocationRow::default()
                },
                LocationRow {
                    location: "hrb-unicom".into(),
                    ok: false,
                    metrics: vec![ms("dns", 2.1), ms("total", 3.5)],
                    error: Some("connect refused: connection refused".into()),
                    ..LocationRow::default()
                },
            ],
            url: Some("https://www.example.com/".into()),
            timezone: None,
            notes: Vec::new(),
        }
    }

    /// A down HTTP alert from three probe locations with region and ISP: `gz-telecom`
    /// passes, `hrb-unicom` fails (no ISP known), `sh-mobile` did not report.
    pub fn multi_location() -> Alert {
        Alert {
            failures: vec![failed("hrb-unicom", "total", ">", "1000ms", "1430ms")],
            locations: vec![
                LocationRow {
                    location: "gz-telecom".into(),
                    ok: true,
                    metrics: http_metrics(200, [1.2, 0.08, 3.4, 140.5, 100.2, 250.8]),
                    region: Some("广东佛山".into()),
                    isp: Some("电信".into()),
                    ..LocationRow::default()
                },
                LocationRow {
                    location: "hrb-unicom".into(),
                    ok: false,
                    metrics: http_metrics(200, [12.0, 27.0, 55.0, 1310.0, 17.0, 1430.0]),
                    region: Some("黑龙江哈尔滨".into()),
                    ..LocationRow::default()
                },
                LocationRow {
                    region: Some("上海".into()),
                    isp: Some("移动".into()),
                    ..LocationRow::not_reported("sh-mobile")
                },
            ],
            ..down()
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
                ..LocationRow::default()
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
                    ..LocationRow::default()
                })
                .collect(),
            url: Some("https://www.example.com/?a=1&b=2".into()),
            timezone: None,
            notes: Vec::new(),
        }
    }
}
