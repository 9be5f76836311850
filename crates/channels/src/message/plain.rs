//! Plain text: for e-mail's text part, SMS-like channels and the console.

use super::Locale;
use super::model::{Message, Table};
use unicode_width::UnicodeWidthStr;

/// Title, summary, notes, facts (labels aligned in English), the failures and the aligned
/// per-location table.
pub fn render(m: &Message) -> String {
    let colon = m.colon();
    let mut out = String::new();
    out.push_str(&m.title);
    out.push('\n');
    out.push_str(&m.summary);
    out.push_str("\n\n");
    if !m.notes.is_empty() {
        for note in &m.notes {
            out.push_str(m.note_label);
            out.push_str(colon);
            if m.locale == Locale::En {
                out.push(' ');
            }
            out.push_str(note);
            out.push('\n');
        }
        out.push('\n');
    }

    let label_width = m.facts.iter().map(|f| f.label.width()).max().unwrap_or(0);
    for fact in &m.facts {
        match m.locale {
            Locale::En => {
                let pad = label_width - fact.label.width();
                out.push_str(&format!(
                    "{}:{}  {}\n",
                    fact.label,
                    " ".repeat(pad),
                    fact.value
                ));
            }
            Locale::ZhCn => out.push_str(&format!("{}：{}\n", fact.label, fact.value)),
        }
    }

    if let Some(failures) = &m.failures {
        out.push('\n');
        out.push_str(failures.heading);
        out.push_str(colon);
        out.push('\n');
        for item in &failures.items {
            out.push_str("  - ");
            out.push_str(item);
            out.push('\n');
        }
    }

    if let Some(table) = &m.table {
        out.push('\n');
        out.push_str(table.heading);
        out.push_str(colon);
        out.push('\n');
        for line in table_lines(table) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// A table as aligned text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aligned {
    /// The header line.
    pub header: String,
    /// One line per row.
    pub rows: Vec<String>,
}

impl Aligned {
    /// The header, then the rows.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.header.as_str()).chain(self.rows.iter().map(String::as_str))
    }
}

/// [`aligned`], as lines: the header first.
pub fn table_lines(table: &Table) -> Vec<String> {
    aligned(table).lines().map(str::to_string).collect()
}

/// The table as aligned text: text columns left-aligned, numeric ones right-aligned, two
/// spaces apart, by display width (CJK characters count as two); no trailing spaces.
pub fn aligned(table: &Table) -> Aligned {
    let header = table.header();
    let numeric = table.numeric();
    let rows: Vec<Vec<String>> = table.rows.iter().map(|r| r.texts(table)).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in &rows {
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
        s
    };
    Aligned {
        header: line(&header),
        rows: rows.iter().map(|r| line(r)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::samples::*;
    use super::super::{Alert, AlertKind, Locale, local_time};
    use chrono::{TimeZone, Utc};
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn plain_en_down_shows_every_http_phase() {
        let text = down().plain(Locale::En);
        let expected = "\
[DOWN] homepage
homepage is DOWN. Failing at 2 of 3 reporting locations: 广东佛山[电信], hrb-unicom.

Time:        2026-01-02 03:00:00 +00:00
Down since:  2026-01-02 03:00:00 +00:00
URL:         https://www.example.com/
Incident:    homepage:1767322800000

Failing conditions:
  - 广东佛山[电信]: total 1430ms > 1000ms
  - hrb-unicom: connect refused: connection refused

Locations:
Location        Result  Status     DNS  Connect     TLS    Wait  Download   Total  Error
local           OK         200   1.2ms  0.080ms   3.4ms   140ms     100ms   251ms
广东佛山[电信]  FAIL       200  12.0ms   27.0ms  55.0ms  1310ms    17.0ms  1430ms
hrb-unicom      FAIL         -   2.1ms        -       -       -         -   3.5ms  connect refused: connection refused
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn plain_zh_down_shows_every_http_phase() {
        let text = down().plain(Locale::ZhCn);
        let expected = "\
【故障】homepage
监控 homepage 发生故障。2/3 个上报地点失败：广东佛山[电信]、hrb-unicom。

时间：2026-01-02 03:00:00 +00:00
故障开始：2026-01-02 03:00:00 +00:00
地址：https://www.example.com/
事件编号：homepage:1767322800000

失败条件：
  - 广东佛山[电信]: total 1430ms > 1000ms
  - hrb-unicom: connect refused: connection refused

各地探测：
位置            结果  状态码  DNS解析  连接耗时  TLS握手  等待响应  下载耗时  总耗时  错误
local           正常     200    1.2ms   0.080ms    3.4ms     140ms     100ms   251ms
广东佛山[电信]  异常     200   12.0ms    27.0ms   55.0ms    1310ms    17.0ms  1430ms
hrb-unicom      异常       -    2.1ms         -        -         -         -   3.5ms  connect refused: connection refused
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn a_tls_alert_shows_its_own_metrics() {
        let en = tls_down().plain(Locale::En);
        assert!(
            en.contains(
                "Location  Result  Connect     TLS   Total  Cert days\n\
                 local     FAIL     11.0ms  35.2ms  47.1ms       9.5d\n"
            ),
            "{en}"
        );
        assert!(en.contains("  - local: cert_days 9.5d > 14\n"), "{en}");
        assert!(
            en.contains("URL:         tls://mail.example.com:465\n"),
            "{en}"
        );
        let zh = tls_down().plain(Locale::ZhCn);
        assert!(
            zh.contains("位置   结果  连接耗时  TLS握手  总耗时  证书剩余\n"),
            "{zh}"
        );
        assert!(zh.contains("9.5d\n"), "{zh}");
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
    fn no_table_without_locations_and_no_error_column_without_errors() {
        let mut a = down();
        a.locations.truncate(2);
        let text = a.plain(Locale::En);
        assert!(
            text.contains(
                "Location        Result  Status     DNS  Connect     TLS    Wait  Download   Total\n"
            ),
            "{text}"
        );
        assert!(!text.contains("Error"), "{text}");
        a.locations.clear();
        assert!(!a.plain(Locale::En).contains("Locations"));
        assert!(!a.markdown(Locale::ZhCn).contains('|'));
        assert_eq!(a.plain_table(Locale::En), "");
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
            en.contains("Was failing:\n  - 广东佛山[电信]: total 1430ms > 1000ms"),
            "{en}"
        );
        let zh = a.plain(Locale::ZhCn);
        assert!(
            zh.contains("监控 homepage 已恢复（故障持续 1小时12分钟）。"),
            "{zh}"
        );
        assert!(zh.contains("持续时长：1小时12分钟\n"), "{zh}");
        assert!(
            zh.contains("故障原因：\n  - 广东佛山[电信]: total 1430ms > 1000ms"),
            "{zh}"
        );

        a.kind = AlertKind::Reminder;
        a.at = at(3, 30, 5);
        let en = a.plain(Locale::En);
        assert!(en.contains("homepage is still DOWN (for 30m 5s)."), "{en}");
        let zh = a.plain(Locale::ZhCn);
        assert!(zh.contains("仍处于故障状态（已持续 30分钟5秒）"), "{zh}");
        assert!(zh.contains("故障开始：2026-01-02 03:00:00 +00:00"), "{zh}");
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
        let quiet = Alert::test("ops", None, at(1, 2, 3)).plain(Locale::En);
        assert!(!quiet.contains("Message"), "{quiet}");
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
                "[DOWN] homepage\nhomepage is DOWN. Failing at 2 of 3 reporting locations: \
                 广东佛山[电信], hrb-unicom.\n\nNote: watchpost could not run 12 checks \
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
        assert!(!down().plain(Locale::En).contains("Note"));
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
        let july = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(
            local_time(july, Some("Europe/Berlin")),
            "2026-07-01 14:00:00 +02:00"
        );
        a.since = None;
        assert_eq!(a.since_local(), None);
    }

    #[test]
    fn several_locations_with_region_isp_and_a_missing_one() {
        let a = multi_location();
        let en = a.plain(Locale::En);
        let expected = "\
[DOWN] homepage
homepage is DOWN. Failing at 1 of 2 reporting locations: hrb-unicom (1 missing: sh-mobile).

Time:        2026-01-02 03:00:00 +00:00
Down since:  2026-01-02 03:00:00 +00:00
URL:         https://www.example.com/
Incident:    homepage:1767322800000

Failing conditions:
  - hrb-unicom: total 1430ms > 1000ms

Locations:
Location    Region        ISP   Result   Status     DNS  Connect     TLS    Wait  Download   Total
gz-telecom  广东佛山      电信  OK          200   1.2ms  0.080ms   3.4ms   140ms     100ms   251ms
hrb-unicom  黑龙江哈尔滨  -     FAIL        200  12.0ms   27.0ms  55.0ms  1310ms    17.0ms  1430ms
sh-mobile   上海          移动  MISSING
";
        assert_eq!(en, expected, "\n{en}");
        let zh = a.plain(Locale::ZhCn);
        assert!(
            zh.starts_with(
                "【故障】homepage\n监控 homepage 发生故障。1/2 个上报地点失败：hrb-unicom\
                 （1 个未上报：sh-mobile）。\n\n"
            ),
            "{zh}"
        );
        assert!(
            zh.ends_with(
                "各地探测：\n\
                 位置        地区          运营商  结果    状态码  DNS解析  连接耗时  TLS握手  等待响应  下载耗时  总耗时\n\
                 gz-telecom  广东佛山      电信    正常       200    1.2ms   0.080ms    3.4ms     140ms     100ms   251ms\n\
                 hrb-unicom  黑龙江哈尔滨  -       异常       200   12.0ms    27.0ms   55.0ms    1310ms    17.0ms  1430ms\n\
                 sh-mobile   上海          移动    未上报\n"
            ),
            "{zh}"
        );
    }

    #[test]
    fn a_region_or_isp_column_only_when_some_row_has_one() {
        let mut a = multi_location();
        for l in &mut a.locations {
            l.isp = None;
        }
        let text = a.plain_table(Locale::En);
        assert!(
            text.starts_with("Location    Region        Result   Status"),
            "{text}"
        );
        for l in &mut a.locations {
            l.region = None;
        }
        let text = a.plain_table(Locale::En);
        assert!(text.starts_with("Location    Result   Status"), "{text}");
        assert!(text.ends_with("\nsh-mobile   MISSING\n"), "{text}");
    }
}
