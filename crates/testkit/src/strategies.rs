//! Proptest strategies for text that looks like a condition (`total < 800ms`), shared by the
//! never-panic tests of the condition parser (crates/conditions/tests/never_panic.rs) and of
//! the check kinds' operands (crates/probes/tests/conditions_never_panic.rs).

use proptest::prelude::*;

/// Operand names every kind's tests draw from: the HTTP kind's, the families' prefixes alone,
/// a header, and a name no kind has.
const OPERANDS: [&str; 16] = [
    "status",
    "dns",
    "connect",
    "tls",
    "wait",
    "download",
    "ttfb",
    "total",
    "size",
    "speed",
    "body",
    "cert_days",
    "header.",
    "json.",
    "header.content-type",
    "状态",
];

/// An operand: one of the common names or of `extra`, a `json.` path, a `header.` name, or
/// any short text.
pub fn operand(extra: &[&'static str]) -> impl Strategy<Value = String> + use<> {
    let names: Vec<&'static str> = OPERANDS.iter().chain(extra).copied().collect();
    prop_oneof![
        prop::sample::select(names).prop_map(str::to_string),
        "json\\.[a-z\\[\\]0-9.]{0,12}",
        "header\\.[a-zA-Z-]{0,8}",
        "\\PC{0,6}",
    ]
}

/// An operator, real or nearly (`=`, `~`, `containsx`, none).
pub fn op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "contains",
        "!contains",
        "matches",
        "=",
        "~",
        "",
        "containsx",
    ])
}

/// A value: a number with or without a unit, a quoted string (perhaps unterminated), a
/// regular expression, or any short text.
pub fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{0,25}(\\.[0-9]{0,4})?(us|ms|s|m|h|d|B|KB|MiB|GiB|TiB|KB/s|x)?",
        "\"([^\"\\\\]|\\\\.){0,8}\"?( extra)?",
        "'[^']{0,8}'?",
        "/[a-z(\\[+*?.]{0,8}/",
        "\\PC{0,10}",
    ]
}

/// `OPERAND OP VALUE` with odd spacing (tabs, an ideographic space, none), the operand drawn
/// by [`operand`] with `extra` names.
pub fn condition_like(extra: &[&'static str]) -> impl Strategy<Value = String> + use<> {
    (
        "[ \t\u{3000}]{0,2}",
        operand(extra),
        "[ ]{0,2}",
        op(),
        "[ ]{0,2}",
        value(),
    )
        .prop_map(|(a, o, b, p, c, v)| format!("{a}{o}{b}{p}{c}{v}"))
}

/// A body to judge conditions on: empty, nested JSON, a JSON array, not JSON, a JSON null
/// member, or one of `extra`.
pub fn sample_body(extra: &[&'static str]) -> impl Strategy<Value = &'static str> + use<> {
    let bodies = [
        "",
        "{\"a\":{\"b\":[1,2,{\"c\":\"up\"}]}}",
        "[1,2]",
        "not json",
        "{\"a\":null}",
    ];
    prop::sample::select(bodies.iter().chain(extra).copied().collect::<Vec<_>>())
}

/// What a parse error of `text` must be: a `message` that says something, and a `column`
/// (counted in characters) inside the text or just past its end.
pub fn error_inside(text: &str, message: &str, column: usize) -> Result<(), TestCaseError> {
    prop_assert!(!message.is_empty());
    prop_assert!(
        column <= text.chars().count(),
        "column {column} past the end of {text:?}"
    );
    Ok(())
}
