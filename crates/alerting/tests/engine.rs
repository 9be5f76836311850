//! The alert state machine, tick by tick.

use chrono::{DateTime, Duration, TimeZone, Utc};
use watchpost_alerting::{
    AlertPolicy, Decision, EventKind, IncidentChange, MonitorState, Status, Tick, decide,
    state_from_json, state_to_json,
};

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap() + Duration::minutes(minute)
}

fn tick(minute: i64, failing: u32, locations: u32) -> Tick {
    Tick {
        at: t(minute),
        locations,
        failing,
        reasons: if failing > 0 {
            vec!["status 500 != 200".into()]
        } else {
            vec![]
        },
    }
}

/// Run ticks (minute, failing-of-1) through the engine; return the events per minute.
fn run(
    policy: &AlertPolicy,
    ticks: &[(i64, bool)],
    muted: impl Fn(i64) -> bool,
) -> Vec<(i64, EventKind)> {
    let mut state: Option<MonitorState> = None;
    let mut out = Vec::new();
    for &(minute, fail) in ticks {
        let d: Decision = decide(
            "home",
            state.take(),
            &tick(minute, fail as u32, 1),
            policy,
            muted(minute),
        );
        for e in &d.events {
            out.push((minute, e.kind));
        }
        // Through JSON, as the store keeps it.
        let json = state_to_json(&d.state);
        state = Some(state_from_json(&json).unwrap());
    }
    out
}

fn policy(failure: u32, success: u32, repeat: Option<i64>) -> AlertPolicy {
    AlertPolicy {
        channels: vec!["hook".into()],
        failure_threshold: failure,
        success_threshold: success,
        send_resolved: true,
        repeat: repeat.map(|m| std::time::Duration::from_secs(m as u64 * 60)),
        quorum: 1,
    }
}

#[test]
fn one_down_after_the_threshold_one_resolved_after_recovery() {
    let ticks: Vec<(i64, bool)> = (0..10).map(|m| (m, (2..7).contains(&m))).collect();
    // failing at 2,3,4,5,6; threshold 2 → Down at 3; success threshold 2 → Resolved at 8.
    assert_eq!(
        run(&policy(2, 2, None), &ticks, |_| false),
        [(3, EventKind::Down), (8, EventKind::Resolved)]
    );
}

#[test]
fn a_blip_below_the_threshold_alerts_nobody() {
    let ticks = [(0, false), (1, true), (2, false), (3, true), (4, false)];
    assert!(run(&policy(2, 1, None), &ticks, |_| false).is_empty());
}

#[test]
fn reminders_at_the_repeat_interval() {
    let ticks: Vec<(i64, bool)> = (0..26).map(|m| (m, m < 25)).collect();
    assert_eq!(
        run(&policy(1, 1, Some(10)), &ticks, |_| false),
        [
            (0, EventKind::Down),
            (10, EventKind::Reminder),
            (20, EventKind::Reminder),
            (25, EventKind::Resolved)
        ]
    );
}

#[test]
fn send_resolved_false_stays_quiet_on_recovery() {
    let mut p = policy(1, 1, None);
    p.send_resolved = false;
    assert_eq!(
        run(&p, &[(0, true), (1, false)], |_| false),
        [(0, EventKind::Down)]
    );
}

#[test]
fn quorum_counts_failing_locations() {
    let mut p = policy(1, 1, None);
    p.quorum = 2;
    let one_of_three = decide("home", None, &tick(0, 1, 3), &p, false);
    assert!(one_of_three.events.is_empty());
    assert_eq!(one_of_three.state.status, Status::Up);
    let two_of_three = decide("home", Some(one_of_three.state), &tick(1, 2, 3), &p, false);
    assert_eq!(two_of_three.events.len(), 1);
    assert_eq!(two_of_three.events[0].kind, EventKind::Down);
    assert_eq!(two_of_three.state.status, Status::Down);
}

#[test]
fn maintenance_mutes_but_still_tracks() {
    // Down and back up inside the window: recorded, never notified.
    let inside = |m: i64| (0..10).contains(&m);
    assert!(
        run(
            &policy(1, 1, None),
            &[(1, true), (2, true), (3, false)],
            inside
        )
        .is_empty()
    );
    // Goes down inside the window, still down after it: announced at the first tick after.
    let ticks = [(8, true), (9, true), (10, true), (11, false)];
    assert_eq!(
        run(&policy(1, 1, None), &ticks, inside),
        [(10, EventKind::Down), (11, EventKind::Resolved)]
    );
}

#[test]
fn incidents_open_and_close_with_stable_keys() {
    let p = policy(1, 1, Some(1));
    let d1 = decide("home", None, &tick(0, 1, 1), &p, false);
    let id = match &d1.incident {
        Some(IncidentChange::Open { id, reason, .. }) => {
            assert_eq!(reason, "status 500 != 200");
            id.clone()
        }
        other => panic!("expected an open incident, got {other:?}"),
    };
    assert_eq!(d1.events[0].key, format!("{id}:down"));
    let d2 = decide("home", Some(d1.state.clone()), &tick(1, 1, 1), &p, false);
    assert_eq!(d2.events[0].key, format!("{id}:reminder-1"));
    assert!(d2.incident.is_none());
    let d3 = decide("home", Some(d2.state), &tick(2, 0, 1), &p, false);
    assert_eq!(d3.events[0].key, format!("{id}:resolved"));
    assert_eq!(
        d3.incident,
        Some(IncidentChange::Close {
            id,
            closed_at: t(2)
        })
    );
    assert_eq!(d3.state.status, Status::Up);
    assert!(d3.state.incident.is_none());
}

#[test]
fn replayed_or_racing_ticks_change_nothing_but_a_clock_set_back_does_not_stall() {
    let p = policy(1, 1, None);
    let d1 = decide("home", None, &tick(5, 1, 1), &p, false);
    assert_eq!(d1.events.len(), 1);
    let replay = decide("home", Some(d1.state.clone()), &tick(5, 1, 1), &p, false);
    assert!(replay.events.is_empty());
    assert_eq!(replay.state, d1.state);
    // The older tick of two runs racing: a few seconds older, ignored.
    let mut racing = tick(5, 0, 1);
    racing.at -= Duration::seconds(5);
    let older = decide("home", Some(d1.state.clone()), &racing, &p, false);
    assert!(older.events.is_empty() && older.incident.is_none());
    assert_eq!(older.state, d1.state);
    // The wall clock was set back an hour: the next tick is applied (here it resolves).
    let after_step = decide(
        "home",
        Some(d1.state.clone()),
        &tick(5 - 60, 0, 1),
        &p,
        false,
    );
    assert_eq!(after_step.events.len(), 1);
    assert_eq!(after_step.events[0].kind, EventKind::Resolved);
    assert_eq!(after_step.state.last_tick, Some(t(5 - 60)));
}

#[test]
fn reminders_resume_after_the_clock_is_set_back() {
    let p = policy(1, 1, Some(10));
    let d1 = decide("home", None, &tick(100, 1, 1), &p, false);
    assert_eq!(d1.events[0].kind, EventKind::Down);
    // Clock set back an hour: no reminder yet, and the interval restarts from this tick...
    let d2 = decide("home", Some(d1.state), &tick(40, 1, 1), &p, false);
    assert!(d2.events.is_empty());
    let d3 = decide("home", Some(d2.state), &tick(45, 1, 1), &p, false);
    assert!(d3.events.is_empty());
    // ...so the reminder comes 10 minutes later by the new clock, not after 70.
    let d4 = decide("home", Some(d3.state), &tick(50, 1, 1), &p, false);
    assert_eq!(d4.events.len(), 1);
    assert_eq!(d4.events[0].kind, EventKind::Reminder);
}
