//! Property tests: `Condition::parse::<HttpSubject>` answers any text with a condition or an
//! error whose column lies inside the text, never a panic; and whatever parses can be
//! evaluated against a response without a panic.

use proptest::prelude::*;
use watchpost_conditions::{Condition, HttpSubject, evaluate_http, with_default_status};
use watchpost_probes::http::HttpResult;

fn response(body: &str) -> HttpResult {
    HttpResult {
        url: "http://127.0.0.1/".into(),
        final_url: "http://127.0.0.1/".into(),
        status: Some(503),
        http_version: Some("HTTP/1.1"),
        remote_addr: None,
        redirects: 0,
        timings: Default::default(),
        size_bytes: body.len() as u64,
        headers: [("content-type".to_string(), "application/json".to_string())].into(),
        body: body.to_string().into_bytes().into(),
        tls: None,
        error: None,
    }
}

fn operand() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
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
        ])
        .prop_map(str::to_string),
        "json\\.[a-z\\[\\]0-9.]{0,12}",
        "header\\.[a-zA-Z-]{0,8}",
        "\\PC{0,6}",
    ]
}

fn op() -> impl Strategy<Value = &'static str> {
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

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{0,25}(\\.[0-9]{0,4})?(us|ms|s|m|h|d|B|KB|MiB|GiB|TiB|KB/s|x)?",
        "\"([^\"\\\\]|\\\\.){0,8}\"?( extra)?",
        "'[^']{0,8}'?",
        "/[a-z(\\[+*?.]{0,8}/",
        "\\PC{0,10}",
    ]
}

fn condition_like() -> impl Strategy<Value = String> {
    (
        "[ \t\u{3000}]{0,2}",
        operand(),
        "[ ]{0,2}",
        op(),
        "[ ]{0,2}",
        value(),
    )
        .prop_map(|(a, o, b, p, c, v)| format!("{a}{o}{b}{p}{c}{v}"))
}

fn check(text: &str, body: &str) -> Result<(), TestCaseError> {
    match Condition::parse::<HttpSubject>(text) {
        Ok(c) => {
            let _ = evaluate_http(&response(body), &with_default_status(vec![c]));
        }
        Err(e) => {
            prop_assert!(!e.message.is_empty());
            prop_assert!(
                e.column <= text.chars().count(),
                "column {} past the end of {text:?}",
                e.column
            );
        }
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
        text in condition_like(),
        body in prop::sample::select(vec![
            "", "{\"a\":{\"b\":[1,2,{\"c\":\"up\"}]}}", "[1,2]", "not json", "{\"a\":null}",
        ]),
    ) {
        check(&text, body)?;
    }
}
