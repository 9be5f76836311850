//! `transition`: state round-trip, atomicity, idempotency keys, incidents, concurrency.

#[macro_use]
mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::{Backend, TempDb, TestDb, notification, t};
use serde_json::{Value, json};
use watchpost_store::{IncidentChange, Store, StoreError, Transition};

fn set_state(state: &str) -> impl FnMut(Option<String>) -> Result<Transition, String> + '_ {
    move |_| {
        Ok(Transition {
            state: state.to_string(),
            notifications: vec![],
            incident: None,
        })
    }
}

fn first_transition_sees_none_and_state_round_trips(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert_eq!(store.state("api").unwrap(), None);

    let mut seen = Vec::new();
    let state = r#"{"failing":2,"open":null,"note":"ünïcode ✓"}"#;
    let outcome = store
        .transition("api", &mut |current| {
            seen.push(current);
            Ok(Transition {
                state: state.to_string(),
                notifications: vec![],
                incident: None,
            })
        })
        .unwrap();
    assert_eq!(outcome.version, 1);
    assert_eq!(outcome.notifications_inserted, 0);
    assert!(!outcome.incident_applied);

    store
        .transition("api", &mut |current| {
            seen.push(current);
            Ok(Transition {
                state: r#"{"failing":3}"#.to_string(),
                notifications: vec![],
                incident: None,
            })
        })
        .unwrap();
    assert_eq!(seen, vec![None, Some(state.to_string())]);

    // Another monitor has its own state; a reopened file keeps both.
    store.transition("web", &mut set_state("[1,2]")).unwrap();
    drop(store);
    let store = db.open();
    assert_eq!(
        store.state("api").unwrap().as_deref(),
        Some(r#"{"failing":3}"#)
    );
    assert_eq!(store.state("web").unwrap().as_deref(), Some("[1,2]"));
    assert_eq!(store.state("db").unwrap(), None);
}

fn decide_error_writes_nothing(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    common::queue(&*store, "api", &["first"], t(0));
    let before = store.state("api").unwrap();

    let err = store
        .transition("api", &mut |current| {
            assert_eq!(current.as_deref(), Some("{}"));
            Err("engine says no".to_string())
        })
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Decide(m) if m == "engine says no"),
        "{err}"
    );

    // A decision that is fine but whose state is not JSON is rejected whole too, as is one
    // with a bad payload among good notifications, or an incident for another monitor.
    let bad = [
        Transition {
            state: "{not json".into(),
            notifications: vec![notification("second", t(1))],
            incident: None,
        },
        Transition {
            state: "{}".into(),
            notifications: vec![notification("third", t(1)), {
                let mut n = notification("fourth", t(1));
                n.payload = "oops".into();
                n
            }],
            incident: None,
        },
        Transition {
            state: r#"{"x":1}"#.into(),
            notifications: vec![notification("fifth", t(1))],
            incident: Some(IncidentChange::Open {
                id: "i-1".into(),
                monitor: "web".into(),
                opened_at: t(1),
                reason: "down".into(),
            }),
        },
    ];
    for transition in bad {
        let err = store
            .transition("api", &mut |_| Ok(transition.clone()))
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::InvalidJson { .. } | StoreError::InvalidInput(_)
            ),
            "{err}"
        );
    }

    assert_eq!(store.state("api").unwrap(), before);
    let keys: Vec<_> = store
        .list_outbox()
        .unwrap()
        .into_iter()
        .map(|e| e.idempotency_key)
        .collect();
    assert_eq!(keys, ["first"]);
    assert!(store.incidents("api").unwrap().is_empty());
    assert!(store.incidents("web").unwrap().is_empty());
    // The version did not move either.
    assert_eq!(
        store
            .transition("api", &mut set_state("{}"))
            .unwrap()
            .version,
        2
    );
}

fn state_notifications_and_incident_are_written_together(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let outcome = store
        .transition("api", &mut |_| {
            Ok(Transition {
                state: r#"{"open":"api-1"}"#.into(),
                notifications: vec![notification("api-1/open/ops", t(5))],
                incident: Some(IncidentChange::Open {
                    id: "api-1".into(),
                    monitor: "api".into(),
                    opened_at: t(5),
                    reason: "status 503 != 200 at 2 of 3 locations".into(),
                }),
            })
        })
        .unwrap();
    assert_eq!(outcome.notifications_inserted, 1);
    assert!(outcome.incident_applied);

    let outbox = store.list_outbox().unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].monitor, "api");
    assert_eq!(outbox[0].channel, "ops");
    assert_eq!(outbox[0].created_at, t(5));
    assert_eq!(outbox[0].next_attempt_at, t(5));
    assert_eq!(outbox[0].attempts, 0);
    let incidents = store.incidents("api").unwrap();
    assert_eq!(incidents.len(), 1);
    assert!(incidents[0].is_open());
    assert_eq!(incidents[0].opened_at, t(5));
    assert_eq!(incidents[0].reason, "status 503 != 200 at 2 of 3 locations");

    // Reopening the same id changes nothing; closing works once; closing again or closing an
    // unknown id is reported as not applied, and the state is still written.
    let change = |incident: IncidentChange| {
        store
            .transition("api", &mut |_| {
                Ok(Transition {
                    state: "{}".into(),
                    notifications: vec![],
                    incident: Some(incident.clone()),
                })
            })
            .unwrap()
            .incident_applied
    };
    let open = IncidentChange::Open {
        id: "api-1".into(),
        monitor: "api".into(),
        opened_at: t(9),
        reason: "again".into(),
    };
    let close = |id: &str, at| IncidentChange::Close {
        id: id.into(),
        closed_at: at,
    };
    assert!(!change(open));
    assert!(change(close("api-1", t(60))));
    assert!(!change(close("api-1", t(70))));
    assert!(!change(close("nope", t(70))));
    let incidents = store.incidents("api").unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].reason, "status 503 != 200 at 2 of 3 locations");
    assert_eq!(incidents[0].closed_at, Some(t(60)));
    assert_eq!(store.state("api").unwrap().as_deref(), Some("{}"));

    // Another monitor cannot close api's incident.
    let outcome = store
        .transition("web", &mut |_| {
            Ok(Transition {
                state: "{}".into(),
                notifications: vec![],
                incident: Some(close("api-2", t(80))),
            })
        })
        .unwrap();
    assert!(!outcome.incident_applied);
}

fn duplicate_idempotency_keys_are_ignored(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let outcome = common::queue(&*store, "api", &["a", "b", "a"], t(0));
    assert_eq!(outcome.notifications_inserted, 2);
    assert_eq!(outcome.notifications_ignored, 1);

    // The same keys from a later transition (a replayed decision) and from another monitor.
    let outcome = common::queue(&*store, "api", &["b", "c"], t(1));
    assert_eq!(
        (
            outcome.notifications_inserted,
            outcome.notifications_ignored
        ),
        (1, 1)
    );
    let outcome = common::queue(&*store, "web", &["a"], t(2));
    assert_eq!(
        (
            outcome.notifications_inserted,
            outcome.notifications_ignored
        ),
        (0, 1)
    );

    let outbox = store.list_outbox().unwrap();
    let keys: Vec<_> = outbox.iter().map(|e| e.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    // The first copy wins.
    assert_eq!(outbox[1].created_at, t(0));
    assert_eq!(store.pending_count().unwrap(), 3);
}

/// The engine's rule under test: notify only on the transition that finds no state.
fn notify_first(current: Option<String>) -> Result<Transition, String> {
    let count = match &current {
        None => 0,
        Some(s) => serde_json::from_str::<Value>(s).map_err(|e| e.to_string())?["count"]
            .as_i64()
            .ok_or("no count")?,
    };
    Ok(Transition {
        state: json!({ "count": count + 1 }).to_string(),
        notifications: if current.is_none() {
            vec![notification("api/first", t(0))]
        } else {
            vec![]
        },
        incident: None,
    })
}

fn concurrent_transitions_on_two_connections_notify_once(b: Backend) {
    for round in 0..20 {
        let Some(db) = TestDb::new(b) else {
            return;
        };
        let stores = [db.open(), db.open()];
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = stores
            .iter()
            .map(|store| {
                let (store, barrier) = (store.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    store.transition("api", &mut notify_first).unwrap()
                })
            })
            .collect();
        let mut outcomes: Vec<_> = threads.into_iter().map(|h| h.join().unwrap()).collect();
        outcomes.sort_by_key(|o| o.version);
        assert_eq!(outcomes[0].version, 1, "round {round}");
        assert_eq!(outcomes[1].version, 2, "round {round}");
        assert_eq!(outcomes[0].notifications_inserted, 1, "round {round}");
        assert_eq!(outcomes[1].notifications_inserted, 0, "round {round}");
        assert_eq!(stores[0].list_outbox().unwrap().len(), 1, "round {round}");
        assert_eq!(
            stores[1].state("api").unwrap().as_deref(),
            Some(r#"{"count":2}"#)
        );
    }
}

fn concurrent_transitions_lose_no_update(b: Backend) {
    const THREADS: usize = 4;
    const EACH: usize = 25;
    let Some(db) = TestDb::new(b) else {
        return;
    };
    // Two threads share one store, the others have a connection each.
    let shared = db.open();
    let stores: Vec<Arc<dyn Store>> = (0..THREADS)
        .map(|i| if i < 2 { shared.clone() } else { db.open() })
        .collect();
    let threads: Vec<_> = stores
        .into_iter()
        .map(|store| {
            thread::spawn(move || {
                for _ in 0..EACH {
                    store.transition("api", &mut notify_first).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let total = THREADS * EACH;
    assert_eq!(
        shared.state("api").unwrap(),
        Some(json!({ "count": total }).to_string())
    );
    assert_eq!(shared.list_outbox().unwrap().len(), 1);
    let next = shared.transition("api", &mut notify_first).unwrap();
    assert_eq!(next.version as usize, total + 1);
}

fn calling_the_store_from_decide_is_an_error_not_a_deadlock(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let mut inner = None;
    let err = store
        .transition("api", &mut |_| {
            inner = Some(store.state("api"));
            Err("stop".into())
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Decide(_)));
    assert!(matches!(inner, Some(Err(StoreError::Reentrant))));
    // The store is usable afterwards.
    assert_eq!(store.state("api").unwrap(), None);
}

fn a_panicking_decide_rolls_back_and_leaves_the_store_usable(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    store
        .transition("api", &mut set_state(r#"{"n":1}"#))
        .unwrap();
    let panicking = store.clone();
    let result = thread::spawn(move || {
        panicking.transition("api", &mut |_| -> Result<Transition, String> {
            panic!("engine bug")
        })
    })
    .join();
    assert!(result.is_err());
    assert_eq!(store.state("api").unwrap().as_deref(), Some(r#"{"n":1}"#));
    assert_eq!(
        store
            .transition("api", &mut set_state("{}"))
            .unwrap()
            .version,
        2
    );
    // Another connection can write too: no lock was left behind.
    let other = db.open();
    assert_eq!(
        other
            .transition("api", &mut set_state("{}"))
            .unwrap()
            .version,
        3
    );
}

fn result(monitor: &str, secs: i64) -> watchpost_store::ResultRow {
    watchpost_store::ResultRow {
        monitor: monitor.into(),
        location: "local".into(),
        at: t(secs),
        ok: false,
        data: format!(r#"{{"status":503,"at":{secs}}}"#),
        metrics: vec![],
        summarize: vec![],
    }
}

fn commit_tick_writes_results_and_transition_together(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let results = [result("api", 0), {
        let mut r = result("api", 0);
        r.location = "remote".into();
        r
    }];
    let outcome = store
        .commit_tick("api", &results, &mut |state| {
            assert_eq!(state, None);
            Ok(Transition {
                state: r#"{"failing":1}"#.into(),
                notifications: vec![notification("api-1/down/ops", t(0))],
                incident: None,
            })
        })
        .unwrap();
    assert_eq!((outcome.version, outcome.notifications_inserted), (1, 1));
    assert_eq!(store.latest_results("api").unwrap().len(), 2);
    assert_eq!(
        store.state("api").unwrap().as_deref(),
        Some(r#"{"failing":1}"#)
    );

    // No results is a plain transition.
    let outcome = store
        .commit_tick("api", &[], &mut set_state(r#"{"failing":2}"#))
        .unwrap();
    assert_eq!(outcome.version, 2);
}

fn commit_tick_writes_nothing_when_any_part_fails(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    store
        .transition("api", &mut set_state(r#"{"n":1}"#))
        .unwrap();
    let before_outbox = store.list_outbox().unwrap();

    // decide fails: no result either.
    let err = store
        .commit_tick("api", &[result("api", 10)], &mut |_| {
            Err("engine says no".into())
        })
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Decide(m) if m == "engine says no"),
        "{err}"
    );

    // decide's output is invalid: no result either.
    let err = store
        .commit_tick("api", &[result("api", 20)], &mut set_state("{not json"))
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidJson { .. }), "{err}");

    // A bad result or a result of another monitor: refused before decide runs.
    let mut bad = result("api", 30);
    bad.data = "<html>".into();
    let mut called = false;
    let mut spy = |_: Option<String>| -> Result<Transition, String> {
        called = true;
        Err("unreachable".into())
    };
    let err = store
        .commit_tick("api", &[result("api", 30), bad], &mut spy)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidJson {
                what: "result data",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .commit_tick("api", &[result("web", 30)], &mut spy)
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    assert!(!called);

    assert!(store.latest_results("api").unwrap().is_empty());
    assert!(store.latest_results("web").unwrap().is_empty());
    assert_eq!(store.state("api").unwrap().as_deref(), Some(r#"{"n":1}"#));
    assert_eq!(store.list_outbox().unwrap(), before_outbox);
    assert_eq!(
        store
            .transition("api", &mut set_state("{}"))
            .unwrap()
            .version,
        2
    );
}

fn a_state_that_is_not_json_is_handed_to_decide_as_it_is(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    store.transition("api", &mut set_state("{}")).unwrap();
    db.execute("UPDATE monitor_state SET state = 'garbage {' WHERE monitor = 'api'");

    assert_eq!(store.state("api").unwrap().as_deref(), Some("garbage {"));
    let mut seen = None;
    store
        .commit_tick("api", &[result("api", 0)], &mut |state| {
            seen = state;
            Ok(Transition {
                state: r#"{"reset":true}"#.into(),
                notifications: vec![],
                incident: None,
            })
        })
        .unwrap();
    assert_eq!(seen.as_deref(), Some("garbage {"));
    assert_eq!(
        store.state("api").unwrap().as_deref(),
        Some(r#"{"reset":true}"#)
    );
}

#[test]
fn a_state_that_is_not_text_fails_only_its_own_monitor() {
    let db = TempDb::new();
    let store = db.open();
    common::queue(&store, "api", &["api-down"], t(0));
    common::queue(&store, "web", &["web-down"], t(0));
    let raw = rusqlite::Connection::open(&db.path).unwrap();
    raw.execute(
        "UPDATE monitor_state SET state = CAST(x'7bff22fe7d' AS TEXT) WHERE monitor = 'api'",
        [],
    )
    .unwrap();

    let unreadable = |err: StoreError| {
        let text = err.to_string();
        assert!(text.contains("\"api\""), "{text}");
        assert!(text.contains("UTF-8"), "{text}");
        matches!(err, StoreError::UnreadableState { ref monitor, .. } if monitor == "api")
    };
    let mut called = false;
    let mut spy = |_: Option<String>| -> Result<Transition, String> {
        called = true;
        Err("unreachable".into())
    };
    assert!(unreadable(store.state("api").unwrap_err()));
    assert!(unreadable(store.transition("api", &mut spy).unwrap_err()));
    assert!(unreadable(
        store
            .commit_tick("api", &[result("api", 5)], &mut spy)
            .unwrap_err()
    ));
    assert!(!called);
    assert!(store.latest_results("api").unwrap().is_empty());

    // Everything else works: other monitors, the outbox (api's items too), results.
    assert_eq!(store.state("web").unwrap().as_deref(), Some("{}"));
    store
        .commit_tick("web", &[result("web", 5)], &mut set_state(r#"{"ok":1}"#))
        .unwrap();
    assert_eq!(store.latest_results("web").unwrap().len(), 1);
    assert_eq!(store.list_outbox().unwrap().len(), 2);
    let claimed = store
        .claim_due(t(1), "w1", std::time::Duration::from_secs(30), 10)
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(store.oldest_undelivered().unwrap().is_some());
    store.record_results(&[result("api", 6)]).unwrap();
}

fn notifications_keep_their_incident(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    common::queue_in(
        &*store,
        "api",
        &[("a", "ops", Some("api-1")), ("b", "mail", None)],
        t(0),
    );
    let entries = store.list_outbox().unwrap();
    assert_eq!(entries[0].incident.as_deref(), Some("api-1"));
    assert_eq!(entries[1].incident, None);
    assert_eq!(entries[0].last_attempt_at, None);
    assert_eq!(entries[0].retried, std::time::Duration::ZERO);
}

both_backends!(
    first_transition_sees_none_and_state_round_trips,
    decide_error_writes_nothing,
    state_notifications_and_incident_are_written_together,
    duplicate_idempotency_keys_are_ignored,
    concurrent_transitions_on_two_connections_notify_once,
    concurrent_transitions_lose_no_update,
    calling_the_store_from_decide_is_an_error_not_a_deadlock,
    a_panicking_decide_rolls_back_and_leaves_the_store_usable,
    commit_tick_writes_results_and_transition_together,
    commit_tick_writes_nothing_when_any_part_fails,
    a_state_that_is_not_json_is_handed_to_decide_as_it_is,
    notifications_keep_their_incident,
);
