//! Property tests: `Condition::parse` answers any text with a condition or an error whose
//! column lies inside the text, never a panic; and whatever parses can be evaluated against a
//! subject without a panic. (crates/probes/tests/conditions_never_panic.rs does the same with
//! the real HTTP operands and observation.)

use proptest::prelude::*;
use std::borrow::Cow;
use watchpost_conditions::{
    Actual, Condition, Family, OperandKind, Operands, Subject, evaluate, with_defaults,
};
use watchpost_testkit::strategies::{condition_like, error_inside, sample_body};

/// HTTP-like operands, with both families.
static OPERANDS: Operands = Operands::new(
    &[
        ("status", OperandKind::Number),
        ("dns", OperandKind::Duration),
        ("connect", OperandKind::Duration),
        ("tls", OperandKind::Duration),
        ("wait", OperandKind::Duration),
        ("download", OperandKind::Duration),
        ("ttfb", OperandKind::Duration),
        ("total", OperandKind::Duration),
        ("size", OperandKind::Bytes),
        ("speed", OperandKind::Rate),
        ("body", OperandKind::Text),
        ("cert_days", OperandKind::Number),
        ("answers", OperandKind::Text),
    ],
    &[
        Family {
            prefix: "header.",
            shown: "header.NAME",
            kind: OperandKind::Text,
        },
        Family {
            prefix: "json.",
            shown: "json.PATH",
            kind: OperandKind::Text,
        },
    ],
);

/// Every operand answers: text ones with the body, lists with its lines, numbers with 503.
struct Response<'a>(&'a str);

impl Subject for Response<'_> {
    fn actual(&self, operand: &str) -> Actual<'_> {
        match OPERANDS.kind_of(operand) {
            Some(OperandKind::Number) => Actual::Number(503.0),
            Some(OperandKind::Duration) => Actual::Duration(12.5),
            Some(OperandKind::Bytes) => Actual::Bytes(self.0.len() as f64),
            Some(OperandKind::Rate) => Actual::Rate(1e6),
            Some(OperandKind::Text) if operand == "answers" => {
                Actual::List(self.0.lines().map(Cow::Borrowed).collect())
            }
            Some(OperandKind::Text) if operand.starts_with("json.") => Actual::Missing,
            Some(OperandKind::Text) => Actual::Text(Cow::Borrowed(self.0)),
            None => Actual::Missing,
        }
    }
}

fn check(text: &str, body: &str) -> Result<(), TestCaseError> {
    match Condition::parse(text, &OPERANDS) {
        Ok(c) => {
            let defaults = [Condition::parse("status >= 200", &OPERANDS).unwrap()];
            let _ = evaluate(&Response(body), &with_defaults(vec![c], &defaults));
        }
        Err(e) => error_inside(text, &e.message, e.column)?,
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn any_text(text in any::<String>(), body in any::<String>()) {
        check(&text, &body)?;
    }

    #[test]
    fn condition_like_text(
        text in condition_like(&["answers"]),
        body in sample_body(&[]),
    ) {
        check(&text, body)?;
    }
}
