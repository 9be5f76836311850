use std::borrow::Cow;
use std::collections::HashMap;
use watchpost_conditions::{
    Actual, Condition, Failure, Family, OperandKind, Operands, Subject, evaluate, with_defaults,
};

/// The operands of a made-up kind, to test the grammar and the explanations on their own.
static FAKE: Operands = Operands::new(
    &[
        ("status", OperandKind::Number),
        ("total", OperandKind::Duration),
        ("connect", OperandKind::Duration),
        ("size", OperandKind::Bytes),
        ("speed", OperandKind::Rate),
        ("body", OperandKind::Text),
        ("answers", OperandKind::Text),
    ],
    &[Family {
        prefix: "header.",
        shown: "header.NAME",
        kind: OperandKind::Text,
    }],
);

/// A subject with fixed values.
struct Fake(HashMap<&'static str, Actual<'static>>);

impl Subject for Fake {
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
        (
            "answers",
            Actual::List(vec![
                Cow::Borrowed("1.2.3.4"),
                Cow::Borrowed("10 mx.example.com."),
            ]),
        ),
    ]))
}

fn parse(text: &str) -> Condition {
    Condition::parse(text, &FAKE).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn check(text: &str) -> Result<(), String> {
    parse(text).check(&subject()).map_err(|f| f.text)
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
        "answers contains \"1.2.3.4\"",
        "answers == \"1.2.3.4\"",
        "answers contains \"mx.example\"",
        "answers != \"5.6.7.8\"",
        "answers !contains \"5.6.7.8\"",
        "answers matches \"^10 \"",
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
        let err = Condition::parse(text, &FAKE).unwrap_err();
        assert!(err.message.contains(needle), "{text:?}: {}", err.message);
        assert_eq!(err.column, col, "{text:?}: {}", err.message);
    }
}

#[test]
fn unknown_operands_list_what_the_kind_has() {
    let err = Condition::parse("colour == red", &FAKE).unwrap_err();
    assert_eq!(
        err.message,
        "unknown operand \"colour\", the kind has: status, total, connect, size, speed, body, \
         answers, header.NAME"
    );
    assert_eq!(err.column, 0);
    // A family needs a name after its prefix.
    assert!(Condition::parse("header. == x", &FAKE).is_err());
    assert_eq!(FAKE.kind_of("header.x-id"), Some(OperandKind::Text));
    assert_eq!(FAKE.kind_of("total"), Some(OperandKind::Duration));
    assert_eq!(FAKE.kind_of("totals"), None);
}

#[test]
fn failures_are_data() {
    let failures = evaluate(
        &subject(),
        &[
            parse("total < 1000ms"),
            parse("status == 500"),
            parse("header.x-missing == yes"),
            parse("body contains \"ok\""),
            parse("answers contains \"5.6.7.8\""),
        ],
    );
    let want = |operand: &str, op: &str, expected: &str, actual: &str, text: &str| Failure {
        operand: operand.into(),
        op: op.into(),
        expected: expected.into(),
        actual: actual.into(),
        text: text.into(),
        topic: None,
    };
    assert_eq!(
        failures,
        [
            want("total", "<", "1000ms", "1430ms", "total 1430ms > 1000ms"),
            want(
                "header.x-missing",
                "==",
                "yes",
                "missing",
                "header.x-missing is missing (expected == \"yes\")"
            ),
            want(
                "body",
                "contains",
                "ok",
                "service degraded: db down",
                "body does not contain \"ok\""
            ),
            want(
                "answers",
                "contains",
                "5.6.7.8",
                "1.2.3.4, 10 mx.example.com.",
                "answers does not contain \"5.6.7.8\""
            ),
        ]
    );
    assert_eq!(failures[0].to_string(), "total 1430ms > 1000ms");
    let json = serde_json::to_string(&failures[0]).unwrap();
    assert_eq!(
        json,
        r#"{"operand":"total","op":"<","expected":"1000ms","actual":"1430ms","text":"total 1430ms > 1000ms"}"#
    );
    assert_eq!(serde_json::from_str::<Failure>(&json).unwrap(), failures[0]);
    assert_eq!(
        check("answers == \"5.6.7.8\"").unwrap_err(),
        "answers [\"1.2.3.4\", \"10 mx.example.com.\"] has no \"5.6.7.8\""
    );
}

#[test]
fn defaults_stay_unless_a_condition_names_their_operand() {
    let defaults = [parse("status >= 200"), parse("status <= 399")];
    let sources = |cs: &[Condition]| cs.iter().map(|c| c.source.clone()).collect::<Vec<_>>();
    assert_eq!(
        sources(&with_defaults(vec![], &defaults)),
        ["status >= 200", "status <= 399"]
    );
    assert_eq!(
        sources(&with_defaults(vec![parse("total < 1s")], &defaults)),
        ["status >= 200", "status <= 399", "total < 1s"]
    );
    assert_eq!(
        sources(&with_defaults(vec![parse("status == 503")], &defaults)),
        ["status == 503"]
    );
}
