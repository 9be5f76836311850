//! Cutting a message that is too long for a robot into parts that each fit.
//!
//! Robots limit a message by *bytes*, not characters (WeCom: 4096 bytes of UTF-8 content, where
//! a Chinese character takes 3), and some by the size of the whole JSON body (DingTalk, Feishu),
//! where a newline or a quote costs two bytes once escaped. So a split is measured with a
//! per-character `cost` ([`utf8_cost`], [`json_cost`]) against a budget.
//!
//! Parts end at line ends whenever a line fits; only a single line longer than the budget is cut
//! inside, and then always between characters, never inside a UTF-8 sequence. The parts are
//! consecutive slices of the text: put back together they are the text, nothing lost or added.

/// The bytes `c` takes in UTF-8.
pub fn utf8_cost(c: char) -> usize {
    c.len_utf8()
}

/// The bytes `c` takes inside a JSON string as `serde_json` writes it: `"`, `\` and the
/// short-escaped controls take two, other controls six (`\u001f`), the rest their UTF-8 length.
pub fn json_cost(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The cost of `text`: the sum of `cost` over its characters.
pub fn cost_of(text: &str, cost: impl Fn(char) -> usize) -> usize {
    text.chars().map(cost).sum()
}

/// Cut `text` into consecutive pieces of at most `max` cost each (one piece when it fits).
/// Lines (each with its `\n`) are kept whole and packed greedily; a line that alone costs more
/// than `max` is cut between characters. A character costing more than `max` (only possible
/// with an absurdly small `max`) becomes a piece of its own.
pub fn split(text: &str, max: usize, cost: impl Fn(char) -> usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    // The piece being built: text[start..end], costing `used`.
    let (mut start, mut end, mut used) = (0usize, 0usize, 0usize);
    for line in text.split_inclusive('\n') {
        let line_start = end;
        let line_cost = cost_of(line, &cost);
        if used + line_cost <= max {
            end += line.len();
            used += line_cost;
            continue;
        }
        if end > start {
            pieces.push(&text[start..end]);
        }
        start = line_start;
        end = line_start;
        used = 0;
        if line_cost <= max {
            end += line.len();
            used = line_cost;
            continue;
        }
        // A line longer than a whole piece: cut it between characters.
        for (i, c) in line.char_indices() {
            let c_cost = cost(c);
            if used + c_cost > max && end > start {
                pieces.push(&text[start..end]);
                start = end;
                used = 0;
            }
            end = line_start + i + c.len_utf8();
            used += c_cost;
        }
    }
    if end > start || pieces.is_empty() {
        pieces.push(&text[start..end]);
    }
    pieces
}

/// Like [`split`], for parts that will be numbered and wrapped: `overhead(n)` is what each
/// part costs besides its piece of `text` when there are `n` parts — the numbering (a
/// `(12/12)` line) and, for a limit on a whole JSON body, the rest of the body. `overhead(1)`
/// is the cost around the text left whole, which is returned as the one piece when it fits.
pub fn split_numbered(
    text: &str,
    max: usize,
    cost: impl Fn(char) -> usize,
    overhead: impl Fn(usize) -> usize,
) -> Vec<&str> {
    if cost_of(text, &cost) + overhead(1) <= max {
        return vec![text];
    }
    // Reserve room for the widest number with `digits` digits; widen when more parts came out.
    let mut widest = 9usize;
    loop {
        // Never a budget so small that nothing fits: a piece holds at least a few characters.
        let budget = max.saturating_sub(overhead(widest)).max(16);
        let pieces = split(text, budget, &cost);
        if pieces.len() <= widest || widest >= usize::MAX / 10 {
            return pieces;
        }
        widest = widest * 10 + 9;
    }
}

/// The longest start of `text` that is at most `max` bytes, cut between characters.
pub fn truncate_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs() {
        assert_eq!(utf8_cost('a'), 1);
        assert_eq!(utf8_cost('中'), 3);
        assert_eq!(utf8_cost('😀'), 4);
        assert_eq!(json_cost('\n'), 2);
        assert_eq!(json_cost('"'), 2);
        assert_eq!(json_cost('\u{1}'), 6);
        assert_eq!(json_cost('中'), 3);
        assert_eq!(json_cost('/'), 1);
        // json_cost agrees with serde_json.
        let text = "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{1}中😀/\u{7f}";
        let encoded = serde_json::to_string(text).unwrap();
        assert_eq!(cost_of(text, json_cost), encoded.len() - 2);
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_bytes("abc", 5), "abc");
        assert_eq!(truncate_bytes("中文", 5), "中");
        assert_eq!(truncate_bytes("中文", 6), "中文");
        assert_eq!(truncate_bytes("中文", 2), "");
    }

    #[test]
    fn fits_in_one_piece() {
        assert_eq!(split("", 10, utf8_cost), vec![""]);
        assert_eq!(split("abc\n", 10, utf8_cost), vec!["abc\n"]);
        let numbered_only = |n: usize| if n == 1 { 0 } else { 100 };
        assert_eq!(
            split_numbered("abc", 3, utf8_cost, numbered_only),
            vec!["abc"]
        );
        // The text fits, but not with what goes around it.
        let around = |n: usize| if n == 1 { 20 } else { 22 };
        let (a, b) = ("a".repeat(20) + "\n", "b".repeat(20) + "\n");
        assert_eq!(
            split_numbered(&format!("{a}{b}"), 60, utf8_cost, around),
            vec![a.as_str(), b.as_str()]
        );
    }

    #[test]
    fn packs_whole_lines() {
        let text = "aaa\nbbb\nccc\nd";
        assert_eq!(split(text, 8, utf8_cost), vec!["aaa\nbbb\n", "ccc\nd"]);
        assert_eq!(
            split(text, 4, utf8_cost),
            vec!["aaa\n", "bbb\n", "ccc\n", "d"]
        );
    }

    #[test]
    fn cuts_a_long_line_between_characters() {
        let text = "ab\n中文中文中文\ncd";
        let pieces = split(text, 7, utf8_cost);
        assert_eq!(pieces, vec!["ab\n", "中文", "中文", "中文\n", "cd"]);
        assert_eq!(pieces.concat(), text);
        for p in &pieces {
            assert!(p.len() <= 7, "{p:?}");
        }
    }

    #[test]
    fn json_escapes_count() {
        // Each line costs 5 escaped: `\"`, `a`, `\n`.
        let text = "\"a\n\"b\n";
        assert_eq!(cost_of(text, json_cost), 10);
        assert_eq!(split(text, 5, json_cost), vec!["\"a\n", "\"b\n"]);
        assert_eq!(split(text, 10, json_cost), vec![text]);
    }

    #[test]
    fn nothing_lost_and_every_piece_fits() {
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&format!(
                "- **广东佛山[电信]{i}**：异常 200 · 总耗时 1.43s\n"
            ));
            if i % 50 == 0 {
                text.push_str(&"很长的一行没有换行".repeat(200));
                text.push('\n');
            }
        }
        for max in [64, 100, 4096] {
            let pieces = split(&text, max, utf8_cost);
            assert_eq!(pieces.concat(), text);
            assert!(pieces.iter().all(|p| p.len() <= max && !p.is_empty()));
            let pieces = split(&text, max, json_cost);
            assert_eq!(pieces.concat(), text);
            assert!(pieces.iter().all(|p| cost_of(p, json_cost) <= max));
        }
    }

    #[test]
    fn numbering_is_reserved_for_the_widest_number() {
        let text = "0123456789\n".repeat(30);
        // `(k/n)\n` costs 6 bytes for n < 10, 8 for n < 100.
        let numbering = |n: usize| format!("({n}/{n})\n").len();
        let pieces = split_numbered(&text, 30, utf8_cost, numbering);
        assert_eq!(pieces.concat(), text);
        let n = pieces.len();
        assert!(n >= 10, "{n}");
        for (k, p) in pieces.iter().enumerate() {
            let part = format!("({}/{n})\n{p}", k + 1);
            assert!(part.len() <= 30, "{part:?}");
        }
    }
}
