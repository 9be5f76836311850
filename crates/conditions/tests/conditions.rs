use std::borrow::Cow;
use std::collections::HashMap;
use watchpost_conditions::{Actual, Condition, OperandKind, Subject};

/// A subject with fixed values, to test the grammar and the explanations on their own.
struct Fake(HashMap<&'static str, Actual<'static>>);

impl Subject for Fake {
    fn operand_kind(operand: &str) -> Option<OperandKind> {
        Some(match operand {
            "status" => OperandKind::Number,
            "total" | "connect" => OperandKind::Duration,
            "size" => OperandKind::Bytes,
            "speed" => OperandKind::Rate,
            "body" => OperandKind::Text,
            o if o.starts_with("header.") => OperandKind::Text,
            _ => return None,
        })
    }
    fn operand_names() -> &'static [&'static str] {
        &[
            "status",
            "total",
            "connect",
            "size",
            "speed",
            "body",
            "header.NAME",
        ]
    }
    fn actual(&self, operand: &str) -> Actual<'_> {
        self.0.get(operand).cloned().unwrap_or(Actual::Missing)
    }
}

fn subject() -> Fake {
    Fake(HashMap::from([
        ("status", Actual::Number(500.0)),
        ("total", Actual::Duration(1430.2)),
        ("connect", Actual::Duration(0.08)),
        ("size", Actual::Bytes(20_000.0)),
        ("speed", Actual::Rate(50_000.0)),
        (
            "body",
            Actual::Text(Cow::Borrowed("service degraded: db down")),
        ),
        ("header.retry-after", Actual::Text(Cow::Borrowed("120"))),
    ]))
}

fn check(text: &str) -> Result<(), String> {
    Condition::parse::<Fake>(text)
        .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
        .check(&subject())
}

#[test]
fn failing_conditions_explain_actual_vs_expected() {
    assert_eq!(
        check("total < 1000ms").unwrap_err(),
        "total 1430ms > 1000ms"
    );
    assert_eq!(check("status == 200").unwrap_err(), "status 500 != 200");
    assert_eq!(check("status != 500").unwrap_err(), "status 500 == 500");
    assert_eq!(
        check("body contains \"ok\"").unwrap_err(),
        "body does not contain \"ok\""
    );
    assert_eq!(
        check("body !contains 'db down'").unwrap_err(),
        "body contains \"db down\""
    );
    assert_eq!(
        check("body matches /^ok/").unwrap_err(),
        "body does not match /^ok/"
    );
    assert_eq!(check("size < 10KB").unwrap_err(), "size 20.0KB > 10.0KB");
    assert!(
        check("header.x-missing == yes")
            .unwrap_err()
            .contains("is missing")
    );
}

#[test]
fn passing_conditions() {
    for text in [
        "status >= 500",
        "status<=599",
        "total < 1.5s",
        "total>=1430ms",
        "connect < 1ms",
        "size <= 20000",
        "size < 1MiB",
        "speed > 40KB/s",
        "body contains \"degraded\"",
        "body !contains \"maintenance\"",
        "body matches \"db (up|down)\"",
        "header.retry-after > 60",
        "header.retry-after == 120",
        "header.x-missing !contains anything",
    ] {
        assert_eq!(check(text), Ok(()), "{text}");
    }
}

#[test]
fn parse_errors_name_the_problem_and_column() {
    let cases = [
        ("total < 800", 8, "add a unit"),
        ("bogus == 1", 0, "unknown operand \"bogus\""),
        ("status = 200", 7, "expected an operator"),
        ("status contains \"x\"", 16, "works on text"),
        ("body matches \"(\"", 13, "bad regular expression"),
        ("status ==", 9, "missing value"),
        ("total < 5 parsecs", 8, "unknown duration unit"),
        ("size > 10 bananas", 7, "unknown size unit"),
        ("status == \"200", 10, "unterminated string"),
        ("", 0, "empty condition"),
        // Columns count characters, not bytes, after wide text.
        ("\u{3000}total < 800", 9, "add a unit"),
        ("header.x-名前 < 5 parsecs", 14, "needs a number"),
        ("header.状态 ~ 1", 10, "expected an operator"),
    ];
    for (text, col, needle) in cases {
        let err = Condition::parse::<Fake>(text).unwrap_err();
        assert!(err.message.contains(needle), "{text:?}: {}", err.message);
        assert_eq!(err.column, col, "{text:?}: {}", err.message);
    }
}
