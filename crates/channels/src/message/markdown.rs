//! Markdown: the full rendering (CommonMark + GFM tables) and the robot rendering without
//! tables (WeCom `markdown`, DingTalk, Feishu), and digests of several alerts.

use super::model::{FactKind, Message, Table};
use super::{Alert, Locale, one_line};

/// A `### ` heading, summary, notes as paragraphs, facts as a list (the URL an autolink, the
/// incident a code span), failing conditions as code spans and a per-location table.
pub fn render(m: &Message) -> String {
    let mut out = head(m, TitleStyle::Heading);
    facts(m, md_url, &mut out);
    failures(m, &mut out);
    if let Some(table) = &m.table {
        out.push('\n');
        out.push_str(&format!("**{}**\n\n", table.heading));
        gfm_table(table, &mut out);
    }
    out
}

/// The facts as a list: label in bold, the URL as `url` writes it, the incident a code span.
fn facts(m: &Message, url: fn(&str) -> String, out: &mut String) {
    let colon = m.colon();
    for fact in &m.facts {
        let value = match fact.kind {
            FactKind::Url => url(&fact.value),
            FactKind::Code => md_code(&fact.value),
            FactKind::Text => md_text(&fact.value),
        };
        out.push_str(&format!("- **{}{colon}** {value}\n", fact.label));
    }
}

/// How a robot rendering shows the alert's title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TitleStyle {
    /// A `### ` heading.
    Heading,
    /// A bold line (inside a Feishu card, whose header is the digest's title).
    Bold,
    /// Not at all (a Feishu card of one alert: the header is its title).
    Omit,
}

/// For robots that render only the basics: the title as `title` says, bold, lists, code
/// spans and links, but no tables — each
/// location is one list line (`- **local**: FAIL · Status 200 · DNS 1.20ms · … · Total
/// 1.43s`; `- **gz-telecom**: OK · Region 广东佛山 · ISP 电信 · Status 200 · …`;
/// `- **sh-mobile**: MISSING`).
///
/// The URL is an inline link (`[https://…](https://…)`): these robots don't know autolinks,
/// and WeCom drops `<https://…>` as an unknown tag.
pub fn render_lite(m: &Message, title: TitleStyle) -> String {
    let colon = m.colon();
    let mut out = head(m, title);
    facts(m, md_link, &mut out);
    failures(m, &mut out);
    if let Some(table) = &m.table {
        out.push('\n');
        out.push_str(&format!("**{}**\n\n", table.heading));
        for row in &table.rows {
            out.push_str(&format!(
                "- **{}**{colon} {}",
                md_text(&row.location),
                row.verdict
            ));
            for (label, value) in [
                (table.region_label, &row.region),
                (table.isp_label, &row.isp),
            ] {
                if let (Some(label), Some(value)) = (label, value) {
                    out.push_str(&format!(" · {label} {}", md_text(value)));
                }
            }
            for (column, cell) in table.columns.iter().zip(&row.cells) {
                if let Some(cell) = cell {
                    out.push_str(&format!(" · {} {cell}", column.label));
                }
            }
            if let (Some(label), Some(error)) = (table.error_label, &row.error) {
                out.push_str(&format!(" · {label} {}", md_text(error)));
            }
            out.push('\n');
        }
    }
    out
}

/// Heading, summary and notes.
fn head(m: &Message, title: TitleStyle) -> String {
    let mut out = String::new();
    match title {
        TitleStyle::Heading => out.push_str(&format!("### {}\n\n", md_text(&m.title))),
        TitleStyle::Bold => out.push_str(&format!("**{}**\n\n", md_text(&m.title))),
        TitleStyle::Omit => {}
    }
    out.push_str(&md_text(&m.summary));
    out.push_str("\n\n");
    for note in &m.notes {
        // A paragraph each (a blank line between), so robots keep them apart.
        out.push_str(&format!(
            "**{}{}** {}\n\n",
            m.note_label,
            m.colon(),
            md_text(note)
        ));
    }
    out
}

fn failures(m: &Message, out: &mut String) {
    if let Some(f) = &m.failures {
        out.push('\n');
        out.push_str(&format!("**{}**\n\n", f.heading));
        for item in &f.items {
            out.push_str("- ");
            out.push_str(&md_code(item));
            out.push('\n');
        }
    }
}

fn gfm_table(table: &Table, out: &mut String) {
    let cell = |s: &str| s.replace('|', "\\|");
    out.push('|');
    for h in table.header() {
        out.push_str(&format!(" {} |", cell(&h)));
    }
    out.push_str("\n|");
    for n in table.numeric() {
        out.push_str(if n { " --: |" } else { " :-- |" });
    }
    out.push('\n');
    for row in &table.rows {
        // The location, region, ISP and error are free text; the verdict and the values are
        // ours.
        let cells = row.texts_with(table, md_text);
        out.push('|');
        for c in cells {
            out.push_str(&format!(" {} |", cell(&c)));
        }
        out.push('\n');
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

/// Several alerts as one robot message, in the [`render_lite`] style: the alert's own
/// rendering for one; otherwise a `## ` heading with the [`digest_title`], then each alert's
/// rendering in order, separated by rules (`---`).
pub fn digest_markdown_lite(alerts: &[Alert], locale: Locale) -> String {
    if let [one] = alerts {
        return render_lite(&one.model(locale), TitleStyle::Heading);
    }
    let mut out = format!("## {}\n\n", md_text(&digest_title(alerts, locale)));
    join_lite(alerts, locale, TitleStyle::Heading, &mut out);
    out
}

/// [`digest_markdown_lite`] for a card whose header shows [`digest_title`] (Feishu): one
/// alert without its title; several without the digest heading, each titled in bold.
pub fn digest_card_lite(alerts: &[Alert], locale: Locale) -> String {
    if let [one] = alerts {
        return render_lite(&one.model(locale), TitleStyle::Omit);
    }
    let mut out = String::new();
    join_lite(alerts, locale, TitleStyle::Bold, &mut out);
    out
}

fn join_lite(alerts: &[Alert], locale: Locale, title: TitleStyle, out: &mut String) {
    for (i, alert) in alerts.iter().enumerate() {
        if i > 0 {
            // A blank line first: `---` right under a text line would make it a heading.
            out.push_str("\n---\n\n");
        }
        out.push_str(&render_lite(&alert.model(locale), title));
    }
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

/// Whether `s` is an http(s) URL that can stand in a link as it is.
fn plain_http(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://"))
        && !s.contains(|c: char| c.is_whitespace() || c == '<' || c == '>')
}

/// An autolink when the URL is plain http(s), a code span otherwise.
pub(crate) fn md_url(s: &str) -> String {
    if plain_http(s) {
        format!("<{s}>")
    } else {
        md_code(s)
    }
}

/// An inline link `[url](url)` when the URL is plain http(s) without brackets or
/// parentheses, a code span otherwise.
fn md_link(s: &str) -> String {
    if plain_http(s) && !s.contains(['(', ')', '[', ']']) {
        format!("[{s}]({s})")
    } else {
        md_code(s)
    }
}

#[cfg(test)]
mod tests {
    use super::super::samples::*;
    use super::super::{AlertKind, Locale};
    use super::*;

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
    fn markdown_zh_table_has_every_http_phase() {
        let md = down().markdown(Locale::ZhCn);
        let table = md_table(&md);
        assert_eq!(table.len(), 2 + 3, "{md}");
        let mut header = vec!["位置", "结果"];
        header.extend(HTTP_LABELS_ZH);
        header.push("错误");
        assert_eq!(table[0], header);
        assert_eq!(
            table[1],
            [
                ":--", ":--", "--:", "--:", "--:", "--:", "--:", "--:", "--:", ":--"
            ]
        );
        assert!(table.iter().all(|r| r.len() == 10), "{md}");
        assert_eq!(
            table[3],
            [
                "广东佛山[电信]",
                "异常",
                "200",
                "12.0ms",
                "27.0ms",
                "55.0ms",
                "1310ms",
                "17.0ms",
                "1430ms",
                ""
            ]
        );
        assert!(
            md.starts_with(
                "### 【故障】homepage\n\n监控 homepage 发生故障。\
                 2/3 个上报地点失败：广东佛山[电信]、hrb-unicom。\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("- **时间：** 2026-01-02 03:00:00 +00:00\n"),
            "{md}"
        );
        assert!(
            md.contains("- **地址：** <https://www.example.com/>\n"),
            "{md}"
        );
        assert!(
            md.contains("**失败条件**\n\n- `广东佛山[电信]: total 1430ms > 1000ms`\n"),
            "{md}"
        );
        assert!(md.contains("\n\n| 位置 |"), "{md}");
    }

    #[test]
    fn markdown_en_table_is_well_formed() {
        let md = down().markdown(Locale::En);
        let table = md_table(&md);
        assert_eq!(
            table[0],
            [
                "Location", "Result", "Status", "DNS", "Connect", "TLS", "Wait", "Download",
                "Total", "Error"
            ]
        );
        assert_eq!(
            table[4],
            [
                "hrb-unicom",
                "FAIL",
                "-",
                "2.1ms",
                "-",
                "-",
                "-",
                "-",
                "3.5ms",
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
    fn markdown_shows_a_tls_alerts_cert_days() {
        let md = tls_down().markdown(Locale::En);
        let table = md_table(&md);
        assert_eq!(
            table[0],
            ["Location", "Result", "Connect", "TLS", "Total", "Cert days"]
        );
        assert_eq!(
            table[2],
            ["local", "FAIL", "11.0ms", "35.2ms", "47.1ms", "9.5d"]
        );
        // A tls:// target is no web link.
        assert!(
            md.contains("- **URL:** `tls://mail.example.com:465`\n"),
            "{md}"
        );
        let lite = tls_down().markdown_lite(Locale::En);
        assert!(
            lite.contains(
                "- **local**: FAIL · Connect 11.0ms · TLS 35.2ms · Total 47.1ms · Cert days 9.5d\n"
            ),
            "{lite}"
        );
        let zh = tls_down().markdown(Locale::ZhCn);
        assert_eq!(
            md_table(&zh)[0],
            ["位置", "结果", "连接耗时", "TLS握手", "总耗时", "证书剩余"]
        );
        let lite = tls_down().markdown_lite(Locale::ZhCn);
        assert!(
            lite.contains(
                "- **local**： 异常 · 连接耗时 11.0ms · TLS握手 35.2ms · 总耗时 47.1ms · 证书剩余 9.5d\n"
            ),
            "{lite}"
        );
    }

    #[test]
    fn markdown_survives_pipes_backticks_and_newlines() {
        let mut a = down();
        a.failures = vec![super::super::FailedCondition {
            text: "body contains \"a|b\" but got `x`\nnext".into(),
            ..Default::default()
        }];
        a.locations.truncate(1);
        a.locations[0].location = "a|b*c".into();
        a.locations[0].error = Some("line1\nline2 | x".into());
        let md = a.markdown(Locale::En);
        assert!(
            md.contains("- ``body contains \"a|b\" but got `x` next``\n"),
            "{md}"
        );
        let table = md_table(&md);
        assert!(table.iter().all(|r| r.len() == 10), "{md}");
        assert_eq!(table[2][0], "a\\|b\\*c");
        assert_eq!(table[2][9], "line1 line2 \\| x");
        assert!(!a.plain(Locale::En).contains("line1\n"));
    }

    #[test]
    fn markdown_lite_lists_locations_with_every_phase_and_links_the_url() {
        let md = down().markdown_lite(Locale::ZhCn);
        assert!(!md.contains('|'), "{md}");
        assert!(
            md.contains("- **地址：** [https://www.example.com/](https://www.example.com/)\n"),
            "{md}"
        );
        assert!(
            md.contains(
                "- **广东佛山[电信]**： 异常 · 状态码 200 · DNS解析 12.0ms · 连接耗时 27.0ms · \
                 TLS握手 55.0ms · 等待响应 1310ms · 下载耗时 17.0ms · 总耗时 1430ms\n"
            ),
            "{md}"
        );
        let en = down().markdown_lite(Locale::En);
        assert!(
            en.contains(
                "- **hrb-unicom**: FAIL · DNS 2.1ms · Total 3.5ms · Error connect refused: \
                 connection refused\n"
            ),
            "{en}"
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
        // For a card whose header has the title (Feishu).
        let one = digest_card_lite(std::slice::from_ref(&a), Locale::En);
        assert!(
            one.starts_with(
                "homepage is DOWN. Failing at 2 of 3 reporting locations: 广东佛山[电信], \
                 hrb-unicom.\n\n"
            ),
            "{one}"
        );
        let two = digest_card_lite(&[a.clone(), b], Locale::En);
        assert!(
            two.starts_with("**[DOWN] homepage**\n\nhomepage is DOWN."),
            "{two}"
        );
        assert!(
            two.contains("\n---\n\n**[RESOLVED] homepage**\n\n"),
            "{two}"
        );
        assert!(!two.contains('#'), "{two}");
        // Digests of a tls alert show its certificate.
        let tls = digest_markdown_lite(&[a, tls_down()], Locale::En);
        assert!(tls.contains("Cert days 9.5d"), "{tls}");
    }

    #[test]
    fn notes_in_markdown_are_their_own_paragraphs() {
        let mut a = down();
        a.notes = vec![
            "watchpost could not run 12 checks since 2026-01-02 10:50:00 +08:00: too many \
             open files"
                .into(),
            "second\nnote with `code` and *stars*".into(),
        ];
        let md = a.markdown(Locale::En);
        assert!(
            md.contains(
                "homepage is DOWN. Failing at 2 of 3 reporting locations: 广东佛山[电信], \
                 hrb-unicom.\n\n**Note:** watchpost could not run 12 checks since \
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
        let mut b = a.clone();
        b.kind = AlertKind::Resolved;
        let digest = digest_markdown_lite(&[a, b], Locale::En);
        assert_eq!(
            digest.matches("**Note:** watchpost could not run").count(),
            2
        );
    }

    #[test]
    fn markdown_shows_region_isp_and_a_missing_location() {
        let a = multi_location();
        let md = a.markdown(Locale::En);
        assert!(
            md.starts_with(
                "### [DOWN] homepage\n\nhomepage is DOWN. Failing at 1 of 2 reporting \
                 locations: hrb-unicom (1 missing: sh-mobile).\n"
            ),
            "{md}"
        );
        let table = md_table(&md);
        assert_eq!(
            table[0],
            [
                "Location", "Region", "ISP", "Result", "Status", "DNS", "Connect", "TLS", "Wait",
                "Download", "Total"
            ]
        );
        assert_eq!(
            table[1],
            [
                ":--", ":--", ":--", ":--", "--:", "--:", "--:", "--:", "--:", "--:", "--:"
            ]
        );
        assert_eq!(table[2][..4], ["gz-telecom", "广东佛山", "电信", "OK"]);
        assert_eq!(
            table[3][..5],
            ["hrb-unicom", "黑龙江哈尔滨", "-", "FAIL", "200"]
        );
        assert_eq!(
            table[4],
            [
                "sh-mobile",
                "上海",
                "移动",
                "MISSING",
                "",
                "",
                "",
                "",
                "",
                "",
                ""
            ]
        );

        let zh = a.markdown(Locale::ZhCn);
        assert!(
            zh.contains("监控 homepage 发生故障。1/2 个上报地点失败：hrb-unicom（1 个未上报：sh-mobile）。\n"),
            "{zh}"
        );
        let table = md_table(&zh);
        assert_eq!(table[0][..4], ["位置", "地区", "运营商", "结果"]);
        assert_eq!(
            table[4],
            [
                "sh-mobile",
                "上海",
                "移动",
                "未上报",
                "",
                "",
                "",
                "",
                "",
                "",
                ""
            ]
        );

        let lite = a.markdown_lite(Locale::En);
        assert!(
            lite.contains(
                "- **gz-telecom**: OK · Region 广东佛山 · ISP 电信 · Status 200 · DNS 1.2ms · "
            ),
            "{lite}"
        );
        assert!(
            lite.contains("- **hrb-unicom**: FAIL · Region 黑龙江哈尔滨 · Status 200 · "),
            "{lite}"
        );
        assert!(
            lite.contains("- **sh-mobile**: MISSING · Region 上海 · ISP 移动\n"),
            "{lite}"
        );
        let lite = a.markdown_lite(Locale::ZhCn);
        assert!(
            lite.contains("- **sh-mobile**： 未上报 · 地区 上海 · 运营商 移动\n"),
            "{lite}"
        );
        assert!(
            lite.contains("1/2 个上报地点失败：hrb-unicom（1 个未上报：sh-mobile）。"),
            "{lite}"
        );
    }
}
