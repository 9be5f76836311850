//! Property tests with the real operands: `Condition::parse` against every kind's operands
//! answers any text with a condition or an error whose column lies inside the text, never a
//! panic; and whatever parses can be judged against an observation of that kind (an HTTP
//! response with any body, a DNS reply, a TLS session, a TCP banner) without a panic.

use proptest::prelude::*;
use watchpost_conditions::Condition;
use watchpost_probes::http::HttpResult;
use watchpost_probes::{CheckKind, Detail, Observation};
use watchpost_testkit::strategies::{condition_like, error_inside, sample_body};
use watchpost_units::{Metric, Unit};

fn http(body: &str) -> Observation {
    Observation::from(HttpResult {
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
    })
}

fn other(kind: CheckKind, text: &str) -> Observation {
    let detail = match kind {
        CheckKind::Tcp => Detail::Tcp {
            remote_addr: None,
            banner: Some(text.to_string()),
        },
        CheckKind::Tls => Detail::Tls {
            remote_addr: None,
            tls: None,
        },
        _ => Detail::Dns {
            server: None,
            rcode: Some("NOERROR".into()),
            answers: text.lines().map(str::to_string).collect(),
        },
    };
    Observation {
        kind,
        url: "x".into(),
        metrics: vec![Metric::new("total", 1.5, Unit::Ms)],
        error: None,
        detail,
    }
}

fn check(text: &str, body: &str) -> Result<(), TestCaseError> {
    for kind in CheckKind::ALL {
        match Condition::parse(text, kind.operands()) {
            Ok(c) => {
                let observation = match kind {
                    CheckKind::Http => http(body),
                    _ => other(kind, body),
                };
                let _ = observation.judge(&kind.with_defaults(vec![c]));
            }
            Err(e) => error_inside(text, &e.message, e.column)?,
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_text(text in any::<String>(), body in any::<String>()) {
        check(&text, &body)?;
    }

    #[test]
    fn condition_like_text(
        text in condition_like(&[
            "banner", "rcode", "answers", "query", "verified", "version", "subject",
        ]),
        body in sample_body(&["1.2.3.4\n5.6.7.8"]),
    ) {
        check(&text, body)?;
    }
}

#[test]
fn json_paths_walk_the_body() {
    let o = http(r#"{"a":{"b":[1,2,{"c":"up"}]},"n":null}"#);
    let judge = |t: &str| {
        o.judge(&[Condition::parse(t, CheckKind::Http.operands()).unwrap()])
            .into_iter()
            .map(|f| f.text)
            .collect::<Vec<_>>()
    };
    assert!(judge("json.a.b[0] == 1").is_empty());
    assert!(judge("json.a.b[2].c == up").is_empty());
    assert!(judge("json.a.b[1] > 1").is_empty());
    assert!(judge("header.content-type contains json").is_empty());
    assert_eq!(
        judge("json.n == x"),
        ["json.n is missing (expected == \"x\")"]
    );
    assert_eq!(
        judge("json.a.b[2].c == down"),
        ["json.a.b[2].c \"up\" != \"down\""]
    );
}
