//! The stored state document: v1 written and read, the unversioned documents of the previous
//! release (tests/golden/) read to the same state, anything else refused with a clear error.

use chrono::{DateTime, Duration, TimeZone, Utc};
use watchpost_alerting::{
    AlertPolicy, DocError, EventKind, MonitorState, STATE_VERSION, Status, Tick, decide,
    state_from_json, state_to_json,
};

fn golden(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ticks and policy the golden files were written with (see tests/golden/README.md).
fn t(minute: i64, nanos: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 8, 0, 0).unwrap()
        + Duration::minutes(minute)
        + Duration::nanoseconds(nanos)
}

fn tick(at: DateTime<Utc>, failing: bool) -> Tick {
    Tick {
        at,
        locations: 1,
        failing: failing as u32,
        reasons: if failing {
            vec![
                "local: status 503 != 200".into(),
                "local: total 1430ms > 1000ms".into(),
            ]
        } else {
            vec![]
        },
    }
}

fn policy() -> AlertPolicy {
    AlertPolicy {
        channels: vec!["hook".into()],
        repeat: Some(std::time::Duration::from_secs(600)),
        ..AlertPolicy::default()
    }
}

fn replay(ticks: &[(i64, i64)], failing: bool, muted: bool) -> MonitorState {
    let mut state = None;
    for &(m, n) in ticks {
        state = Some(decide("homepage", state, &tick(t(m, n), failing), &policy(), muted).state);
    }
    state.unwrap_or_default()
}

/// Each golden file and the state the engine produces from the ticks that wrote it.
fn goldens() -> Vec<(&'static str, MonitorState)> {
    vec![
        ("state-pending.json", MonitorState::default()),
        ("state-up.json", replay(&[(0, 120_553_000)], false, false)),
        (
            "state-down-reminded.json",
            replay(
                &[
                    (1, 7_000_000),
                    (2, 981_114_250),
                    (13, 4_000_000),
                    (24, 0),
                    (25, 500),
                ],
                true,
                false,
            ),
        ),
        (
            "state-maintenance.json",
            replay(&[(1, 0), (2, 250_000_000)], true, true),
        ),
    ]
}

#[test]
fn documents_of_the_previous_release_load_to_the_same_state() {
    for (name, want) in goldens() {
        let text = golden(name);
        assert!(!text.contains("\"v\""), "{name} must stay unversioned");
        let got = state_from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
    // What the files hold, spelled out, so a change to the replay can't hide a bad read.
    let down = state_from_json(&golden("state-down-reminded.json")).unwrap();
    assert_eq!(down.status, Status::Down);
    assert_eq!(down.consecutive_failures, 5);
    let inc = down.incident.unwrap();
    assert_eq!(inc.id, "homepage:1795507320981");
    assert!(inc.notified);
    assert_eq!(inc.reminders, 2);
    assert_eq!(inc.opened_at, t(2, 981_114_250));
    assert_eq!(inc.last_notified_at, Some(t(24, 0)));
    assert_eq!(inc.reasons.len(), 2);
    assert_eq!(down.last_tick, Some(t(25, 500)));
    let muted = state_from_json(&golden("state-maintenance.json")).unwrap();
    let inc = muted.incident.unwrap();
    assert!(!inc.notified);
    assert_eq!(inc.last_notified_at, None);
    let up = state_from_json(&golden("state-up.json")).unwrap();
    assert_eq!(
        (up.status, up.consecutive_successes, up.incident),
        (Status::Up, 1, None)
    );
}

#[test]
fn a_loaded_state_carries_on_where_it_stopped() {
    // Down and reminded: the next reminder is due 10 minutes after the last, and recovery
    // sends the Resolved of the same incident.
    let down = state_from_json(&golden("state-down-reminded.json")).unwrap();
    let d = decide(
        "homepage",
        Some(down.clone()),
        &tick(t(34, 0), true),
        &policy(),
        false,
    );
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].kind, EventKind::Reminder);
    assert_eq!(d.events[0].key, "homepage:1795507320981:reminder-3");
    let d = decide(
        "homepage",
        Some(down),
        &tick(t(26, 0), false),
        &policy(),
        false,
    );
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].kind, EventKind::Resolved);
    assert_eq!(d.events[0].key, "homepage:1795507320981:resolved");
    // Opened during maintenance: the first failing tick after the window announces it.
    let muted = state_from_json(&golden("state-maintenance.json")).unwrap();
    let d = decide(
        "homepage",
        Some(muted),
        &tick(t(3, 0), true),
        &policy(),
        false,
    );
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].kind, EventKind::Down);
    assert_eq!(d.events[0].key, "homepage:1795507320250:down");
}

#[test]
fn v1_is_written_with_its_version_first_and_reads_back() {
    assert_eq!(STATE_VERSION, 1);
    for (name, state) in goldens() {
        let json = state_to_json(&state);
        assert!(json.starts_with("{\"v\":1,"), "{name}: {json}");
        assert_eq!(state_from_json(&json).unwrap(), state, "{name}");
        // v1 holds the same fields as the unversioned form, plus `v`.
        let mut v1: serde_json::Value = serde_json::from_str(&json).unwrap();
        v1.as_object_mut().unwrap().remove("v");
        let old: serde_json::Value = serde_json::from_str(&golden(name)).unwrap();
        assert_eq!(v1, old, "{name}");
    }
}

#[test]
fn a_newer_version_is_refused_with_a_clear_message() {
    let json = state_to_json(&MonitorState::default()).replacen("\"v\":1", "\"v\":2", 1);
    let err = state_from_json(&json).unwrap_err();
    assert_eq!(err, DocError::Newer { found: 2 });
    let text = err.to_string();
    assert!(text.contains("version 2"), "{text}");
    assert!(text.contains("newer watchpost"), "{text}");
    assert!(text.contains("up to 1"), "{text}");
}

#[test]
fn anything_else_is_an_error_never_a_panic() {
    let v1 = state_to_json(&MonitorState::default());
    type Expect = fn(&DocError) -> bool;
    let cases: Vec<(String, Expect)> = vec![
        ("".into(), |e| matches!(e, DocError::NotJson(_))),
        ("{\"v\":1".into(), |e| matches!(e, DocError::NotJson(_))),
        ("[1,2]".into(), |e| matches!(e, DocError::NotAnObject)),
        ("null".into(), |e| matches!(e, DocError::NotAnObject)),
        ("{\"v\":0}".into(), |e| matches!(e, DocError::BadVersion(_))),
        ("{\"v\":\"1\"}".into(), |e| {
            matches!(e, DocError::BadVersion(_))
        }),
        ("{\"v\":1.5}".into(), |e| {
            matches!(e, DocError::BadVersion(_))
        }),
        ("{\"v\":-1}".into(), |e| {
            matches!(e, DocError::BadVersion(_))
        }),
        (v1.replace("\"pending\"", "\"sideways\""), |e| {
            matches!(e, DocError::Invalid { format: "v1", .. })
        }),
        (v1.replacen('{', "{\"extra\":true,", 1), |e| {
            matches!(e, DocError::Invalid { format: "v1", .. })
        }),
        (v1.replace(",\"consecutive_failures\":0", ""), |e| {
            matches!(e, DocError::Invalid { format: "v1", .. })
        }),
        ("{\"v\":1}".into(), |e| {
            matches!(e, DocError::Invalid { format: "v1", .. })
        }),
        ("{\"status\":\"up\"}".into(), |e| {
            matches!(
                e,
                DocError::Invalid {
                    format: "unversioned",
                    ..
                }
            )
        }),
    ];
    for (text, expected) in &cases {
        let err = state_from_json(text).unwrap_err();
        assert!(expected(&err), "{text:?}: {err:?}");
        assert!(!err.to_string().is_empty());
    }
    // A long bad version is shown shortened.
    let long = format!("{{\"v\":\"{}\"}}", "x".repeat(500));
    let err = state_from_json(&long).unwrap_err().to_string();
    assert!(err.len() < 200, "{err}");
    // Deep nesting is refused by the JSON reader, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(state_from_json(&deep), Err(DocError::NotJson(_))));
}

#[test]
fn the_unversioned_form_ignores_unknown_fields_as_before() {
    let mut old: serde_json::Value = serde_json::from_str(&golden("state-up.json")).unwrap();
    old["something_newer"] = serde_json::json!([1, 2]);
    let got = state_from_json(&old.to_string()).unwrap();
    assert_eq!(got, state_from_json(&golden("state-up.json")).unwrap());
}

#[test]
fn the_policy_lives_here_with_its_defaults() {
    let p = AlertPolicy::default();
    assert_eq!(
        p,
        AlertPolicy {
            channels: Vec::new(),
            failure_threshold: 2,
            success_threshold: 1,
            send_resolved: true,
            repeat: None,
            quorum: 1,
        }
    );
}

#[test]
fn the_probes_own_state_rides_along_unchanged() {
    use watchpost_alerting::{MonitorState, decide, state_from_json, state_to_json};
    let policy = watchpost_alerting::AlertPolicy::default();
    let state = MonitorState {
        probe: Some(serde_json::json!({"window": [1, 2, 3]})),
        ..MonitorState::default()
    };
    let tick = watchpost_alerting::Tick {
        at: chrono::Utc::now(),
        locations: 1,
        failing: 0,
        reasons: vec![],
    };
    let d = decide("m", Some(state.clone()), &tick, &policy, false);
    assert_eq!(d.state.probe, state.probe, "decide carries it unchanged");
    let text = state_to_json(&d.state);
    assert!(text.contains("\"probe\":{\"window\":[1,2,3]}"), "{text}");
    assert_eq!(state_from_json(&text).unwrap(), d.state);
    // No probe state: not written.
    assert!(!state_to_json(&MonitorState::default()).contains("probe"));
}
