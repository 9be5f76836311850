//! The alert itself and how it reads: a title, a plain-text body (aligned table, for e-mail,
//! SMS-like channels and the console) and a Markdown body (for chat robots), in Chinese or
//! English.
//!
//! An [`Alert`] is plain data: the alert engine builds it when it decides to notify, it is
//! stored as JSON in the outbox between commit and delivery, and every channel renders it at
//! delivery time in the configured [`Locale`].
//!
//! Times people read are shown in the alert's [`Alert::timezone`] (the config's `timezone:`)
//! with their offset, `2026-11-30 11:30:29 +08:00` (UTC, or an unknown zone, shows
//! `+00:00`): see [`Alert::local_time`]. Fields for machines (the webhook payload's `at` and
//! `since`, Alertmanager's `startsAt`/`endsAt`, the e-mail `Date` header) stay RFC 3339 UTC.
//!
//! [`Alert::notes`] are watchpost's own remarks about the alert (`watchpost could not run 12
//! checks since …: too many open files`): every rendering shows them apart from the
//! monitor's facts, one line each, as `Note: …` / `注意：…`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use unicode_width::UnicodeWidthStr;
use watchpost_units::format_ms;

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
    /// HTTP status, when a response arrived.
    #[serde(default)]
    pub status: Option<u16>,
    /// Start → last body byte, milliseconds (总耗时).
    #[serde(default)]
    pub total_ms: Option<f64>,
    /// TCP handshake, milliseconds (连接耗时).
    #[serde(default)]
    pub connect_ms: Option<f64>,
    /// First → last response byte, milliseconds (下载耗时).
    #[serde(default)]
    pub download_ms: Option<f64>,
    /// The probe's error (`connect refused: ...`), when the check failed on the network.
    #[serde(default)]
    pub error: Option<String>,
}

/// A notification, as stored in the outbox and rendered by channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    /// The monitor's name.
    pub monitor: String,
    /// The incident this alert belongs to.
    pub incident_id: String,
    /// When the alert was decided (the tick's time).
    pub at: DateTime<Utc>,
    /// When the incident opened.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// What failed, actual vs expected: `total 1430ms > 1000ms`, `connect refused: ...`.
    /// For a test alert: its message.
    #[serde(default)]
    pub failures: Vec<String>,
    /// Per-location results of the tick.
    #[serde(default)]
    pub locations: Vec<LocationRow>,
    /// What the monitor checks (shown as a link), when it has a URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The IANA time zone (`Asia/Shanghai`) that times in messages are shown in; UTC when
    /// none (or when the name is not a known zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// watchpost's own remarks about this alert (something it could not do that bears on
    /// it), shown as separate `Note:` lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
            failures: message.into_iter().collect(),
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

    /// The full message as plain text: title, summary, facts, failing conditions and an
    /// aligned per-location table (CJK characters count as two columns).
    pub fn plain(&self, locale: Locale) -> String {
        let t = Texts::of(locale);
        let mut out = String::new();
        out.push_str(&self.title(locale));
        out.push('\n');
        out.push_str(&self.summary(locale));
        out.push_str("\n\n");
        let notes = self.note_lines(locale);
        if !notes.is_empty() {
            for note in notes {
                out.push_str(&note);
                out.push('\n');
            }
            out.push('\n');
        }

        let facts = self.facts(locale);
        let label_width = facts.iter().map(|(l, _)| l.width()).max().unwrap_or(0);
        for (label, value) in &facts {
            match locale {
                Locale::En => {
                    let pad = label_width - label.width();
                    out.push_str(&format!("{label}:{}  {value}\n", " ".repeat(pad)));
                }
                Locale::ZhCn => out.push_str(&format!("{label}：{value}\n")),
            }
        }

        if !self.failures.is_empty() {
            out.push('\n');
            out.push_str(self.failures_label(locale));
            out.push_str(t.colon);
            out.push('\n');
            for failure in &self.failures {
                out.push_str("  - ");
                out.push_str(&one_line(failure));
                out.push('\n');
            }
        }

        if !self.locations.is_empty() {
            out.push('\n');
            out.push_str(t.locations);
            out.push_str(t.colon);
            out.push('\n');
            let (header, rows, numeric) = self.table(locale);
            out.push_str(&aligned_table(&header, &rows, &numeric));
        }
        out
    }

    /// The full message as Markdown (CommonMark + GFM tables): a heading, summary, facts as a
    /// list, failing conditions as code spans and a per-location table.
    pub fn markdown(&self, locale: Locale) -> String {
        let t = Texts::of(locale);
        let mut out = String::new();
        out.push_str("### ");
        out.push_str(&md_text(&self.title(locale)));
        out.push_str("\n\n");
        out.push_str(&md_text(&self.summary(locale)));
        out.push_str("\n\n");
        for note in &self.notes {
            // A paragraph each (a blank line between), so robots keep them apart.
            out.push_str(&format!("**{}{}** {}\n\n", t.note, t.colon, md_text(note)));
        }

        for (label, value) in self.facts(locale) {
            let value = if label == t.url {
                md_url(&value)
            } else if label == t.incident {
                md_code(&value)
            } else {
                md_text(&value)
            };
            out.push_str(&format!("- **{label}{}** {value}\n", t.colon));
        }

        if !self.failures.is_empty() {
            out.push('\n');
            out.push_str(&format!("**{}**\n\n", self.failures_label(locale)));
            for failure in &self.failures {
                out.push_str("- ");
                out.push_str(&md_code(&one_line(failure)));
                out.push('\n');
            }
        }

        if !self.locations.is_empty() {
            out.push('\n');
            out.push_str(&format!("**{}**\n\n", t.locations));
            let (header, rows, numeric) = self.table(locale);
            let cell = |s: &str| s.replace('|', "\\|");
            out.push('|');
            for h in &header {
                out.push_str(&format!(" {} |", cell(h)));
            }
            out.push_str("\n|");
            for &n in &numeric {
                out.push_str(if n { " --: |" } else { " :-- |" });
            }
            out.push('\n');
            for row in &rows {
                out.push('|');
                for (i, c) in row.iter().enumerate() {
                    // The location name and error are free text; the rest is ours.
                    let c = if i == 0 || i >= 5 {
                        md_text(c)
                    } else {
                        c.clone()
                    };
                    out.push_str(&format!(" {} |", cell(&c)));
                }
                out.push('\n');
            }
        }
        out
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

    /// Label/value lines: time, incident start (both in [`Alert::timezone`]) and duration, URL,
    /// incident id.
    pub fn facts(&self, locale: Locale) -> Vec<(&'static str, String)> {
        let t = Texts::of(locale);
        let mut facts = vec![(t.time, self.local_time(self.at))];
        if let Some(since) = self.since {
            facts.push((t.since, self.local_time(since)));
            if matches!(self.kind, AlertKind::Reminder | AlertKind::Resolved) {
                facts.push((t.duration, human_duration(self.at - since, locale)));
            }
        }
        if let Some(url) = &self.url {
            facts.push((t.url, one_line(url)));
        }
        if self.kind != AlertKind::Test {
            facts.push((t.incident, one_line(&self.incident_id)));
        }
        facts
    }

    /// The heading over the per-location table: `Locations` / `各地探测`.
    pub fn locations_label(locale: Locale) -> &'static str {
        Texts::of(locale).locations
    }

    /// The heading over [`Alert::failures`]: failing conditions, what was failing, or the
    /// test message.
    pub fn failures_label(&self, locale: Locale) -> &'static str {
        let t = Texts::of(locale);
        match self.kind {
            AlertKind::Down | AlertKind::Reminder => t.failing,
            AlertKind::Resolved => t.was_failing,
            AlertKind::Test => t.message,
        }
    }

    /// The per-location table as aligned plain text (empty without locations).
    pub fn plain_table(&self, locale: Locale) -> String {
        if self.locations.is_empty() {
            return String::new();
        }
        let (header, rows, numeric) = self.table(locale);
        aligned_table(&header, &rows, &numeric)
    }

    /// Markdown for robots that render only the basics (WeCom `markdown`, DingTalk, Feishu):
    /// a heading, bold, lists, code spans and links, but no tables — each location is one list
    /// line instead (`- **local**: FAIL 200 · Total 1.43s · Connect 27ms · Download 17ms`).
    ///
    /// The URL is an inline link (`[https://…](https://…)`): these robots don't know
    /// autolinks, and WeCom drops `<https://…>` as an unknown tag.
    pub fn markdown_lite(&self, locale: Locale) -> String {
        let t = Texts::of(locale);
        let mut full = self.markdown(locale);
        if let Some(url) = &self.url {
            let url = one_line(url);
            let auto = md_url(&url);
            if auto.starts_with('<') {
                let link = if url.contains(['(', ')', '[', ']']) {
                    md_code(&url)
                } else {
                    format!("[{url}]({url})")
                };
                full = full.replacen(&format!("** {auto}\n"), &format!("** {link}\n"), 1);
            }
        }
        // Everything before the table is shared with the full rendering.
        let mut out = match full.find(&format!("**{}**\n\n|", t.locations)) {
            Some(i) => full[..i].to_string(),
            None => return full,
        };
        out.push_str(&format!("**{}**\n\n", t.locations));
        let (header, rows, _) = self.table(locale);
        for row in &rows {
            out.push_str(&format!("- **{}**{} {}", md_text(&row[0]), t.colon, row[1]));
            for (i, cell) in row.iter().enumerate().skip(2) {
                if cell.is_empty() || cell == "-" {
                    continue;
                }
                let cell = if i >= 5 { md_text(cell) } else { cell.clone() };
                out.push_str(&format!(" · {} {cell}", header[i]));
            }
            out.push('\n');
        }
        out
    }

    /// Header, rows and which columns are numeric. The error column is there only when some
    /// location has an error.
    pub fn table(&self, locale: Locale) -> (Vec<String>, Vec<Vec<String>>, Vec<bool>) {
        let t = Texts::of(locale);
        let with_error = self.locations.iter().any(|l| l.error.is_some());
        let mut header: Vec<String> = t.columns.iter().map(|s| s.to_string()).collect();
        let mut numeric = vec![false, false, true, true, true];
        if with_error {
            header.push(t.error_column.to_string());
            numeric.push(false);
        }
        let ms = |v: Option<f64>| v.map(format_ms).unwrap_or_else(|| "-".to_string());
        let rows = self
            .locations
            .iter()
            .map(|l| {
                let verdict = if l.ok { t.ok } else { t.fail };
                let status = match l.status {
                    Some(code) => format!("{verdict} {code}"),
                    None => verdict.to_string(),
                };
                let mut row = vec![
                    one_line(&l.location),
                    status,
                    ms(l.total_ms),
                    ms(l.connect_ms),
                    ms(l.download_ms),
                ];
                if with_error {
                    row.push(l.error.as_deref().map(one_line).unwrap_or_default());
                }
                row
            })
            .collect();
        (header, rows, numeric)
    }
}

/// The title of several alerts sent as one message (a robot's queue merged to stay within
/// its rate limit): the alert's own title for one, otherwise `[watchpost] 3 alerts: 2 DOWN,
/// 1 RESOLVED` / `【watchpost】3 条告警：故障 2，恢复 1`.
pub fn digest_title(alerts: &[Alert], locale: Locale) -> String {
    if let [one] = alerts {
        return one.title(locale);
    }
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for a in alerts {
        let word = a.status_word(locale);
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some((_, n)) => *n += 1,
            None => counts.push((word, 1)),
        }
    }
    match locale {
        Locale::En => format!(
            "[watchpost] {} alerts: {}",
            alerts.len(),
            counts
                .iter()
                .map(|(w, n)| format!("{n} {w}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Locale::ZhCn => format!(
            "【watchpost】{} 条告警：{}",
            alerts.len(),
            counts
                .iter()
                .map(|(w, n)| format!("{w} {n}"))
                .collect::<Vec<_>>()
                .join("，")
        ),
    }
}

/// Several alerts as one robot message, in the [`Alert::markdown_lite`] style: the alert's own
/// rendering for one; otherwise a `## ` heading with the [`digest_title`], then each alert's
/// rendering in order, separated by rules (`---`).
pub fn digest_markdown_lite(alerts: &[Alert], locale: Locale) -> String {
    if let [one] = alerts {
        return one.markdown_lite(locale);
    }
    let mut out = format!("## {}\n\n", md_text(&digest_title(alerts, locale)));
    for (i, alert) in alerts.iter().enumerate() {
        if i > 0 {
            // A blank line first: `---` right under a text line would make it a heading.
            out.push_str("\n---\n\n");
        }
        out.push_str(&alert.markdown_lite(locale));
    }
    out
}

/// Fixed words of one locale.
struct Texts {
    colon: &'static str,
    note: &'static str,
    time: &'static str,
    since: &'static str,
    duration: &'static str,
    url: &'static str,
    incident: &'static str,
    failing: &'static str,
    was_failing: &'static str,
    message: &'static str,
    locations: &'static str,
    columns: [&'static str; 5],
    error_column: &'static str,
    ok: &'static str,
    fail: &'static str,
}

const EN: Texts = Texts {
    colon: ":",
    note: "Note",
    time: "Time",
    since: "Down since",
    duration: "Duration",
    url: "URL",
    incident: "Incident",
    failing: "Failing conditions",
    was_failing: "Was failing",
    message: "Message",
    locations: "Locations",
    columns: ["Location", "Status", "Total", "Connect", "Download"],
    error_column: "Error",
    ok: "OK",
    fail: "FAIL",
};

const ZH_CN: Texts = Texts {
    colon: "：",
    note: "注意",
    time: "时间",
    since: "故障开始",
    duration: "持续时长",
    url: "地址",
    incident: "事件编号",
    failing: "失败条件",
    was_failing: "故障原因",
    message: "内容",
    locations: "各地探测",
    columns: ["位置", "状态", "总耗时", "连接耗时", "下载耗时"],
    error_column: "错误",
    ok: "正常",
    fail: "异常",
};

impl Texts {
    /// The colon between a label and its text: `: ` or `：` (the full-width one carries its
    /// own space).
    fn colon_space(&self) -> &'static str {
        if self.colon == ":" { ": " } else { self.colon }
    }

    fn of(locale: Locale) -> &'static Texts {
        match locale {
            Locale::En => &EN,
            Locale::ZhCn => &ZH_CN,
        }
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

/// Left-aligned text columns and right-aligned numeric ones, two spaces apart, by display
/// width; no trailing spaces.
fn aligned_table(header: &[String], rows: &[Vec<String>], numeric: &[bool]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.width());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i] - c.width());
            if i > 0 {
                s.push_str("  ");
            }
            if numeric[i] {
                s.push_str(&pad);
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&pad);
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(header);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// Escape the CommonMark punctuation that would change inline text (emphasis, code, HTML,
/// strikethrough) so it reads literally. Brackets, `#` and `>` are left alone: they only mean
/// something in positions our text never takes, and chat robots with partial Markdown
/// support (WeCom, DingTalk) would show the backslashes. `|` is escaped by the table code.
pub(crate) fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '<' | '~') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A code span that holds any text: the fence is longer than any backtick run inside.
pub(crate) fn md_code(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    if s.starts_with('`') || s.ends_with('`') {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
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

/// An autolink when the URL is plain, a code span otherwise.
pub(crate) fn md_url(s: &str) -> String {
    if (s.starts_with("http://") || s.starts_with("https://"))
        && !s.contains(|c: char| c.is_whitespace() || c == '<' || c == '>')
    {
        format!("<{s}>")
    } else {
        md_code(s)
    }
}

/// A down alert of `monitor` (incident `monitor:1`) failing at `rows` locations named
/// `{location}-0000`, `{location}-0001`, …: for the channels' splitting tests.
#[cfg(test)]
pub(crate) fn sample_rows(monitor: &str, location: &str, rows: usize) -> Alert {
    use chrono::TimeZone;
    let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap();
    Alert {
        kind: AlertKind::Down,
        monitor: monitor.into(),
        incident_id: format!("{monitor}:1"),
        at,
        since: Some(at),
        failures: vec!["total 1430ms > 1000ms".into()],
        locations: (0..rows)
            .map(|i| LocationRow {
                location: format!("{location}-{i:04}"),
                ok: false,
                status: Some(200),
                total_ms: Some(1430.0),
                connect_ms: Some(27.0),
                download_ms: Some(17.0),
                error: None,
            })
            .collect(),
        url: Some("https://www.example.com/?a=1&b=2".into()),
        timezone: None,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, h, m, s).unwrap()
    }

    fn down() -> Alert {
        Alert {
            kind: AlertKind::Down,
            monitor: "homepage".into(),
            incident_id: "homepage:1767322800000".into(),
            at: at(3, 0, 0),
            since: Some(at(3, 0, 0)),
            failures: vec![
                "total 1430ms > 1000ms".into(),
                "hrb-unicom: connect refused: connection refused".into(),
            ],
            locations: vec![
                LocationRow {
                    location: "local".into(),
                    ok: true,
                    status: Some(200),
                    total_ms: Some(250.8),
                    connect_ms: Some(0.08),
                    download_ms: Some(100.2),
                    error: None,
                },
                LocationRow {
                    location: "广东佛山[电信]".into(),
                    ok: false,
                    status: Some(200),
                    total_ms: Some(1430.0),
                    connect_ms: Some(27.0),
                    download_ms: Some(17.0),
                    error: None,
                },
                LocationRow {
                    location: "hrb-unicom".into(),
                    ok: false,
                    status: None,
                    total_ms: None,
                    connect_ms: Some(3.5),
                    download_ms: None,
                    error: Some("connect refused: connection refused".into()),
                },
            ],
            url: Some("https://www.example.com/".into()),
            timezone: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn titles() {
        let mut a = down();
        assert_eq!(a.title(Locale::En), "[DOWN] homepage");
        assert_eq!(a.title(Locale::ZhCn), "【故障】homepage");
        a.kind = AlertKind::Reminder;
        assert_eq!(a.title(Locale::En), "[REMINDER] homepage");
        assert_eq!(a.title(Locale::ZhCn), "【提醒】homepage");
        a.kind = AlertKind::Resolved;
        assert_eq!(a.title(Locale::En), "[RESOLVED] homepage");
        assert_eq!(a.title(Locale::ZhCn), "【恢复】homepage");
        a.kind = AlertKind::Test;
        assert_eq!(a.title(Locale::En), "[TEST] homepage");
        assert_eq!(a.title(Locale::ZhCn), "【测试】homepage");
    }

    #[test]
    fn plain_en_down() {
        let text = down().plain(Locale::En);
        let expected = "\
[DOWN] homepage
homepage is DOWN.

Time:        2026-01-02 03:00:00 +00:00
Down since:  2026-01-02 03:00:00 +00:00
URL:         https://www.example.com/
Incident:    homepage:1767322800000

Failing conditions:
  - total 1430ms > 1000ms
  - hrb-unicom: connect refused: connection refused

Locations:
Location        Status     Total  Connect  Download  Error
local           OK 200     251ms  0.080ms     100ms
广东佛山[电信]  FAIL 200  1430ms   27.0ms    17.0ms
hrb-unicom      FAIL           -    3.5ms         -  connect refused: connection refused
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn plain_zh_down() {
        let text = down().plain(Locale::ZhCn);
        let expected = "\
【故障】homepage
监控 homepage 发生故障。

时间：2026-01-02 03:00:00 +00:00
故障开始：2026-01-02 03:00:00 +00:00
地址：https://www.example.com/
事件编号：homepage:1767322800000

失败条件：
  - total 1430ms > 1000ms
  - hrb-unicom: connect refused: connection refused

各地探测：
位置            状态      总耗时  连接耗时  下载耗时  错误
local           正常 200   251ms   0.080ms     100ms
广东佛山[电信]  异常 200  1430ms    27.0ms    17.0ms
hrb-unicom      异常           -     3.5ms         -  connect refused: connection refused
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn plain_table_columns_line_up_by_display_width() {
        // Without the error column the last column is right-aligned, so every line of the
        // table ends at the same display column, Chinese (double-width) text included.
        let mut a = down();
        a.locations.truncate(2);
        for locale in [Locale::ZhCn, Locale::En] {
            let text = a.plain(locale);
            let table: Vec<&str> = text.lines().rev().take(3).collect();
            let widths: Vec<usize> = table.iter().map(|l| l.width()).collect();
            assert!(
                widths.windows(2).all(|w| w[0] == w[1]),
                "{widths:?}\n{text}"
            );
        }
    }

    #[test]
    fn resolved_and_reminder_show_the_duration() {
        let mut a = down();
        a.kind = AlertKind::Resolved;
        a.at = at(4, 12, 30);
        let en = a.plain(Locale::En);
        assert!(
            en.contains("homepage has RECOVERED (was down for 1h 12m)."),
            "{en}"
        );
        assert!(en.contains("Duration:    1h 12m\n"), "{en}");
        assert!(
            en.contains("Was failing:\n  - total 1430ms > 1000ms"),
            "{en}"
        );
        let zh = a.plain(Locale::ZhCn);
        assert!(
            zh.contains("监控 homepage 已恢复（故障持续 1小时12分钟）。"),
            "{zh}"
        );
        assert!(zh.contains("持续时长：1小时12分钟\n"), "{zh}");
        assert!(zh.contains("故障原因：\n  - total 1430ms > 1000ms"), "{zh}");

        a.kind = AlertKind::Reminder;
        a.at = at(3, 30, 5);
        let en = a.plain(Locale::En);
        assert!(en.contains("homepage is still DOWN (for 30m 5s)."), "{en}");
        let zh = a.plain(Locale::ZhCn);
        assert!(zh.contains("仍处于故障状态（已持续 30分钟5秒）"), "{zh}");
        assert!(zh.contains("故障开始：2026-01-02 03:00:00 +00:00"), "{zh}");
    }

    #[test]
    fn human_durations() {
        let d = chrono::TimeDelta::seconds;
        assert_eq!(human_duration(d(0), Locale::En), "0s");
        assert_eq!(human_duration(d(45), Locale::En), "45s");
        assert_eq!(human_duration(d(3600), Locale::En), "1h");
        assert_eq!(human_duration(d(3605), Locale::En), "1h");
        assert_eq!(human_duration(d(750), Locale::En), "12m 30s");
        assert_eq!(
            human_duration(d(2 * 86_400 + 3 * 3600 + 9), Locale::En),
            "2d 3h"
        );
        assert_eq!(human_duration(d(750), Locale::ZhCn), "12分钟30秒");
        assert_eq!(human_duration(d(86_400 + 60), Locale::ZhCn), "1天");
        assert_eq!(human_duration(d(-5), Locale::ZhCn), "0秒");
    }

    /// Cells of a GFM table row, split on unescaped pipes.
    fn md_cells(line: &str) -> Vec<String> {
        assert!(line.starts_with('|') && line.ends_with('|'), "{line}");
        let mut cells = Vec::new();
        let mut cur = String::new();
        let mut escaped = false;
        for c in line[1..].chars() {
            if c == '|' && !escaped {
                cells.push(cur.trim().to_string());
                cur.clear();
            } else {
                cur.push(c);
            }
            escaped = c == '\\' && !escaped;
        }
        cells
    }

    fn md_table(md: &str) -> Vec<Vec<String>> {
        md.lines()
            .filter(|l| l.starts_with('|'))
            .map(md_cells)
            .collect()
    }

    #[test]
    fn markdown_zh_table_is_well_formed() {
        let md = down().markdown(Locale::ZhCn);
        let table = md_table(&md);
        assert_eq!(table.len(), 2 + 3, "{md}");
        assert_eq!(
            table[0],
            ["位置", "状态", "总耗时", "连接耗时", "下载耗时", "错误"]
        );
        assert_eq!(table[1], [":--", ":--", "--:", "--:", "--:", ":--"]);
        assert!(table.iter().all(|r| r.len() == 6), "{md}");
        assert_eq!(
            table[2],
            ["local", "正常 200", "251ms", "0.080ms", "100ms", ""]
        );
        assert_eq!(
            table[3],
            [
                "广东佛山[电信]",
                "异常 200",
                "1430ms",
                "27.0ms",
                "17.0ms",
                ""
            ]
        );
        assert!(md.starts_with("### 【故障】homepage\n\n监控 homepage 发生故障。\n"));
        assert!(
            md.contains("- **时间：** 2026-01-02 03:00:00 +00:00\n"),
            "{md}"
        );
        assert!(
            md.contains("- **地址：** <https://www.example.com/>\n"),
            "{md}"
        );
        assert!(
            md.contains("**失败条件**\n\n- `total 1430ms > 1000ms`\n"),
            "{md}"
        );
        // The table is separated from the paragraph before it.
        assert!(md.contains("\n\n| 位置 |"), "{md}");
    }

    #[test]
    fn markdown_en_table_is_well_formed() {
        let md = down().markdown(Locale::En);
        let table = md_table(&md);
        assert_eq!(
            table[0],
            [
                "Location", "Status", "Total", "Connect", "Download", "Error"
            ]
        );
        assert!(table.iter().all(|r| r.len() == 6), "{md}");
        assert_eq!(
            table[4],
            [
                "hrb-unicom",
                "FAIL",
                "-",
                "3.5ms",
                "-",
                "connect refused: connection refused"
            ]
        );
        assert!(
            md.contains("- **Incident:** `homepage:1767322800000`\n"),
            "{md}"
        );
        assert!(md.contains("- `hrb-unicom: connect refused: connection refused`\n"));
    }

    #[test]
    fn markdown_survives_pipes_backticks_and_newlines() {
        let mut a = down();
        a.failures = vec!["body contains \"a|b\" but got `x`\nnext".into()];
        a.locations.truncate(1);
        a.locations[0].location = "a|b*c".into();
        a.locations[0].error = Some("line1\nline2 | x".into());
        let md = a.markdown(Locale::En);
        assert!(
            md.contains("- ``body contains \"a|b\" but got `x` next``\n"),
            "{md}"
        );
        let table = md_table(&md);
        assert!(table.iter().all(|r| r.len() == 6), "{md}");
        assert_eq!(table[2][0], "a\\|b\\*c");
        assert_eq!(table[2][5], "line1 line2 \\| x");
        assert!(!a.plain(Locale::En).contains("line1\n"));
    }

    #[test]
    fn no_table_without_locations_and_no_error_column_without_errors() {
        let mut a = down();
        a.locations.truncate(2);
        let text = a.plain(Locale::En);
        assert!(
            text.contains("Location        Status     Total  Connect  Download\n"),
            "{text}"
        );
        assert!(!text.contains("Error"), "{text}");
        a.locations.clear();
        assert!(!a.plain(Locale::En).contains("Locations"));
        assert!(!a.markdown(Locale::ZhCn).contains('|'));
    }

    #[test]
    fn markdown_lite_lists_locations_and_links_the_url() {
        let md = down().markdown_lite(Locale::ZhCn);
        assert!(!md.contains('|'), "{md}");
        assert!(
            md.contains("- **地址：** [https://www.example.com/](https://www.example.com/)\n"),
            "{md}"
        );
        assert!(
            md.contains("- **广东佛山[电信]**： 异常 200 · 总耗时 1430ms · 连接耗时 27.0ms"),
            "{md}"
        );
        let mut a = down();
        a.url = Some("https://example.com/a(b)".into());
        let md = a.markdown_lite(Locale::En);
        assert!(
            md.contains("- **URL:** `https://example.com/a(b)`\n"),
            "{md}"
        );
        a.locations.clear();
        a.url = Some("http://127.0.0.1:9/".into());
        let md = a.markdown_lite(Locale::En);
        assert!(
            md.contains("[http://127.0.0.1:9/](http://127.0.0.1:9/)"),
            "{md}"
        );
    }

    #[test]
    fn digests_join_alerts_with_rules() {
        let a = down();
        assert_eq!(
            digest_markdown_lite(std::slice::from_ref(&a), Locale::En),
            a.markdown_lite(Locale::En)
        );
        let mut b = down();
        b.kind = AlertKind::Resolved;
        let md = digest_markdown_lite(&[a.clone(), b.clone()], Locale::En);
        let expected = format!(
            "## [watchpost] 2 alerts: 1 DOWN, 1 RESOLVED\n\n{}\n---\n\n{}",
            a.markdown_lite(Locale::En),
            b.markdown_lite(Locale::En)
        );
        assert_eq!(md, expected);
    }

    #[test]
    fn test_alert() {
        let a = Alert::test("ops-wecom", Some("hello".into()), at(1, 2, 3));
        assert_eq!(a.title(Locale::ZhCn), "【测试】ops-wecom");
        let zh = a.plain(Locale::ZhCn);
        assert_eq!(
            zh,
            "【测试】ops-wecom\n这是一条来自 watchpost 的测试告警，无需处理。\n\n时间：2026-01-02 01:02:03 +00:00\n\n内容：\n  - hello\n"
        );
        let en = a.plain(Locale::En);
        assert!(en.contains("This is a test alert from watchpost"), "{en}");
        assert!(en.contains("Message:\n  - hello\n"), "{en}");
        assert!(!en.contains("Incident"), "{en}");
    }

    #[test]
    fn json_round_trip_and_defaults() {
        let a = down();
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains("\"kind\":\"down\""), "{json}");
        let back: Alert = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        let minimal: Alert = serde_json::from_str(
            r#"{"kind":"resolved","monitor":"m","incident_id":"i","at":"2026-01-02 03:00:00 +00:00"}"#,
        )
        .unwrap();
        assert_eq!(minimal.kind, AlertKind::Resolved);
        assert!(minimal.failures.is_empty() && minimal.locations.is_empty());
        assert_eq!(minimal.since, None);
    }

    #[test]
    fn idempotency_key_is_stable_and_distinct() {
        let a = down();
        assert_eq!(
            a.idempotency_key(),
            "homepage:1767322800000:down:1767322800000"
        );
        let mut b = a.clone();
        b.kind = AlertKind::Resolved;
        assert_ne!(a.idempotency_key(), b.idempotency_key());
        let stored: Alert = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(stored.idempotency_key(), a.idempotency_key());
    }

    #[test]
    fn times_are_shown_in_the_configured_zone_with_the_offset() {
        let mut a = down();
        a.kind = AlertKind::Resolved;
        a.at = at(3, 30, 29);
        a.timezone = Some("Asia/Shanghai".into());
        let en = a.plain(Locale::En);
        assert!(
            en.contains("Time:        2026-01-02 11:30:29 +08:00\n"),
            "{en}"
        );
        assert!(
            en.contains("Down since:  2026-01-02 11:00:00 +08:00\n"),
            "{en}"
        );
        assert!(!en.contains("03:30:29"), "{en}");
        let zh = a.markdown(Locale::ZhCn);
        assert!(
            zh.contains("- **时间：** 2026-01-02 11:30:29 +08:00\n"),
            "{zh}"
        );
        let lite = a.markdown_lite(Locale::ZhCn);
        assert!(
            lite.contains("- **故障开始：** 2026-01-02 11:00:00 +08:00\n"),
            "{lite}"
        );
        assert_eq!(a.at_local(), "2026-01-02 11:30:29 +08:00");
        assert_eq!(
            a.since_local().as_deref(),
            Some("2026-01-02 11:00:00 +08:00")
        );

        let t = at(3, 30, 29);
        assert_eq!(local_time(t, None), "2026-01-02 03:30:29 +00:00");
        assert_eq!(local_time(t, Some("UTC")), "2026-01-02 03:30:29 +00:00");
        assert_eq!(
            local_time(t, Some("Mars/Olympus")),
            "2026-01-02 03:30:29 +00:00"
        );
        assert_eq!(
            local_time(t, Some("America/New_York")),
            "2026-01-01 22:30:29 -05:00"
        );
        assert_eq!(
            local_time(t, Some("Asia/Kolkata")),
            "2026-01-02 09:00:29 +05:30"
        );
        // Summer time where the zone has it.
        let july = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(
            local_time(july, Some("Europe/Berlin")),
            "2026-07-01 14:00:00 +02:00"
        );
        a.since = None;
        assert_eq!(a.since_local(), None);
    }

    #[test]
    fn the_zone_and_notes_are_stored_only_when_set() {
        let a = down();
        let json = serde_json::to_string(&a).unwrap();
        assert!(
            !json.contains("timezone") && !json.contains("notes"),
            "{json}"
        );
        let mut b = down();
        b.timezone = Some("Asia/Shanghai".into());
        b.notes = vec!["n1".into()];
        let json = serde_json::to_string(&b).unwrap();
        assert!(json.contains("\"timezone\":\"Asia/Shanghai\""), "{json}");
        assert!(json.contains("\"notes\":[\"n1\"]"), "{json}");
        let back: Alert = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
    }

    fn with_note() -> Alert {
        let mut a = down();
        a.timezone = Some("Asia/Shanghai".into());
        a.notes = vec![
            "watchpost could not run 12 checks since 2026-01-02 10:50:00 +08:00: too many \
             open files"
                .into(),
            "second\nnote with `code` and *stars*".into(),
        ];
        a
    }

    #[test]
    fn notes_in_plain_text_stand_apart() {
        let a = with_note();
        let en = a.plain(Locale::En);
        assert!(
            en.starts_with(
                "[DOWN] homepage\nhomepage is DOWN.\n\nNote: watchpost could not run 12 checks \
                 since 2026-01-02 10:50:00 +08:00: too many open files\nNote: second note with \
                 `code` and *stars*\n\nTime:"
            ),
            "{en}"
        );
        let zh = a.plain(Locale::ZhCn);
        assert!(
            zh.contains("\n\n注意：watchpost could not run 12 checks since"),
            "{zh}"
        );
        assert!(zh.contains("\n注意：second note with"), "{zh}");
        assert_eq!(
            a.note_lines(Locale::En)[1],
            "Note: second note with `code` and *stars*"
        );
        // No notes, no section.
        assert!(!down().plain(Locale::En).contains("Note"));
    }

    #[test]
    fn notes_in_markdown_are_their_own_paragraphs() {
        let a = with_note();
        let md = a.markdown(Locale::En);
        assert!(
            md.contains(
                "homepage is DOWN.\n\n**Note:** watchpost could not run 12 checks since \
                 2026-01-02 10:50:00 +08:00: too many open files\n\n**Note:** second note with \
                 \\`code\\` and \\*stars\\*\n\n- **Time:**"
            ),
            "{md}"
        );
        let lite = a.markdown_lite(Locale::ZhCn);
        assert!(
            lite.contains("\n\n**注意：** watchpost could not run"),
            "{lite}"
        );
        assert!(lite.contains("\n\n**注意：** second note"), "{lite}");
        let mut b = with_note();
        b.kind = AlertKind::Resolved;
        let digest = digest_markdown_lite(&[a, b], Locale::En);
        assert_eq!(
            digest.matches("**Note:** watchpost could not run").count(),
            2
        );
    }

    #[test]
    fn locales() {
        assert_eq!("zh-CN".parse::<Locale>().unwrap(), Locale::ZhCn);
        assert_eq!("en".parse::<Locale>().unwrap(), Locale::En);
        assert!("fr".parse::<Locale>().unwrap_err().contains("zh-CN or en"));
        assert_eq!(serde_json::to_string(&Locale::ZhCn).unwrap(), "\"zh-CN\"");
        assert_eq!(
            serde_json::from_str::<Locale>("\"en\"").unwrap(),
            Locale::En
        );
        assert_eq!(Locale::default(), Locale::En);
    }
}
