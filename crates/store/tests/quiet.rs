//! Quiet ticks (`Store::commit_quiet_tick`): a passing tick that changes nothing anyone is told
//! about waits in memory until `Store::flush`, and then reads exactly as if it had been
//! committed; a tick that is not quiet is handed back untouched; a state changed meanwhile by
//! another writer wins over the waiting one; a store that is dropped (or read) writes what
//! waits.

#[macro_use]
mod common;

use common::{Backend, TestDb, t};
use watchpost_store::{ResultRow, Step, Store, Transition};

fn result(location: &str, secs: i64, ok: bool, total_ms: f64) -> ResultRow {
    ResultRow {
        monitor: "api".into(),
        location: location.into(),
        at: t(secs),
        ok,
        data: format!(r#"{{"ok":{ok},"at":{secs}}}"#),
        metrics: vec![("total_ms".into(), total_ms)],
        summarize: vec![],
    }
}

/// A durable tick setting the state to `state`.
fn commit(store: &dyn Store, rows: &[ResultRow], state: &str) -> i64 {
    store
        .commit_tick("api", rows, &mut |_| {
            Ok(Transition {
                state: state.into(),
                notifications: vec![],
                incident: None,
            })
        })
        .unwrap()
        .version
}

/// A quiet tick that turns the state `{"n":N}` into `{"n":N+1}`, recording what it was given.
fn quiet_tick(store: &dyn Store, rows: &[ResultRow], seen: &mut Vec<String>) -> Option<i64> {
    store
        .commit_quiet_tick("api", rows, &mut |previous| {
            let previous = previous?.to_string();
            let n: serde_json::Value = serde_json::from_str(&previous).ok()?;
            seen.push(previous);
            Some(format!(r#"{{"n":{}}}"#, n["n"].as_i64()? + 1))
        })
        .unwrap()
        .map(|outcome| outcome.version)
}

fn checks(store: &dyn Store, step: Step) -> Vec<(String, u64, u64, u64)> {
    store
        .rollups("api", step, t(0))
        .unwrap()
        .into_iter()
        .map(|r| {
            let n = r.metrics.get("total_ms").map_or(0, |s| s.n);
            (r.location, r.checks, r.failures, n)
        })
        .collect()
}

fn quiet_ticks_read_as_committed_after_a_flush(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert_eq!(
        commit(
            store.as_ref(),
            &[result("fra", 0, true, 10.0)],
            r#"{"n":0}"#
        ),
        1
    );

    let mut seen = Vec::new();
    for secs in [1, 2, 3] {
        let version = quiet_tick(
            store.as_ref(),
            &[result("fra", secs, true, 20.0)],
            &mut seen,
        );
        // A quiet tick is not a transition: the version stays.
        assert_eq!(version, Some(1), "{b:?}");
    }
    // Each quiet tick was handed the state the one before it left (waiting, not yet written).
    assert_eq!(seen, [r#"{"n":0}"#, r#"{"n":1}"#, r#"{"n":2}"#]);
    assert_eq!(store.state("api").unwrap().as_deref(), Some(r#"{"n":3}"#));

    // Nothing is written before the flush: another store on the same data sees the first tick.
    let other = db.open();
    assert_eq!(other.state("api").unwrap().as_deref(), Some(r#"{"n":0}"#));
    assert!(store.flush().unwrap() > 0);
    assert_eq!(
        store.flush().unwrap(),
        0,
        "a second flush has nothing to write"
    );
    assert_eq!(other.state("api").unwrap().as_deref(), Some(r#"{"n":3}"#));
    assert_eq!(
        checks(other.as_ref(), Step::Minute),
        [("fra".into(), 4, 0, 4)]
    );
    assert_eq!(
        checks(other.as_ref(), Step::Hour),
        [("fra".into(), 4, 0, 4)]
    );
    let latest = other.latest_results("api").unwrap();
    assert_eq!((latest.len(), latest[0].at), (1, t(3)));
    assert!(latest[0].metrics.contains(&("total_ms".to_string(), 20.0)));
    // Passing ticks keep no full row.
    assert!(db.full_rows().is_empty());

    // A durable tick after quiet ones starts from the newest waiting state.
    quiet_tick(store.as_ref(), &[result("fra", 4, true, 20.0)], &mut seen).unwrap();
    let mut given = None;
    store
        .commit_tick("api", &[result("fra", 5, false, 900.0)], &mut |previous| {
            given = previous;
            Ok(Transition {
                state: r#"{"n":-1}"#.into(),
                notifications: vec![],
                incident: None,
            })
        })
        .unwrap();
    assert_eq!(given.as_deref(), Some(r#"{"n":4}"#));
    store.flush().unwrap();
    assert_eq!(other.state("api").unwrap().as_deref(), Some(r#"{"n":-1}"#));
    assert_eq!(
        checks(other.as_ref(), Step::Minute),
        [("fra".into(), 6, 1, 6)]
    );

    // A quiet tick right after a durable one of this store starts from the state that one
    // wrote, never from an older one this store had in mind.
    for (secs, state) in [(6, r#"{"n":50}"#), (8, r#"{"n":60}"#)] {
        commit(store.as_ref(), &[result("fra", secs, true, 20.0)], state);
        quiet_tick(
            store.as_ref(),
            &[result("fra", secs + 1, true, 20.0)],
            &mut seen,
        )
        .unwrap();
        assert_eq!(seen.last().map(String::as_str), Some(state));
    }
    // And a failing durable result of a location is seen: the next pass is no quiet tick.
    commit(
        store.as_ref(),
        &[result("fra", 10, false, 20.0)],
        r#"{"n":70}"#,
    );
    assert_eq!(
        quiet_tick(store.as_ref(), &[result("fra", 11, true, 20.0)], &mut seen),
        None
    );
}

fn a_tick_that_is_not_quiet_is_handed_back(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let mut seen = Vec::new();
    // No state yet: the first tick is always durable.
    assert_eq!(
        quiet_tick(store.as_ref(), &[result("fra", 0, true, 1.0)], &mut seen),
        None
    );
    commit(store.as_ref(), &[result("fra", 0, true, 1.0)], r#"{"n":0}"#);
    // A failing result, and the first pass after it, are not quiet (the closure isn't asked).
    assert_eq!(
        quiet_tick(store.as_ref(), &[result("fra", 1, false, 1.0)], &mut seen),
        None
    );
    commit(
        store.as_ref(),
        &[result("fra", 1, false, 1.0)],
        r#"{"n":0}"#,
    );
    assert_eq!(
        quiet_tick(store.as_ref(), &[result("fra", 2, true, 1.0)], &mut seen),
        None
    );
    assert!(seen.is_empty());
    commit(store.as_ref(), &[result("fra", 2, true, 1.0)], r#"{"n":0}"#);
    // A location never seen before is not known to have passed.
    let two = [result("fra", 3, true, 1.0), result("sgp", 3, true, 1.0)];
    assert_eq!(quiet_tick(store.as_ref(), &two, &mut seen), None);
    // The closure says no: nothing waits.
    let said_no = store
        .commit_quiet_tick("api", &[result("fra", 4, true, 1.0)], &mut |_| None)
        .unwrap();
    assert!(said_no.is_none());
    assert_eq!(store.flush().unwrap(), 0);
    // Results of another monitor are refused, as by commit_tick.
    let mut stranger = result("fra", 5, true, 1.0);
    stranger.monitor = "web".into();
    assert!(
        store
            .commit_quiet_tick("api", &[stranger], &mut |_| None)
            .is_err()
    );
    assert_eq!(
        checks(store.as_ref(), Step::Minute),
        [("fra".into(), 3, 1, 3)]
    );
}

fn a_state_changed_meanwhile_wins_over_a_waiting_one(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    commit(store.as_ref(), &[result("fra", 0, true, 1.0)], r#"{"n":0}"#);
    let mut seen = Vec::new();
    quiet_tick(store.as_ref(), &[result("fra", 1, true, 1.0)], &mut seen).unwrap();
    // Another process commits a transition before the flush: the waiting state is dropped
    // by the flush, and from then on ticks start from the other's state. (Before this
    // store's next write, a tick may still go on from what it knew: SQLite notices another
    // writer at its own next write, see `pending::Known`.)
    let other = db.open();
    assert_eq!(commit(other.as_ref(), &[], r#"{"n":10}"#), 2);
    store.flush().unwrap();
    assert_eq!(other.state("api").unwrap().as_deref(), Some(r#"{"n":10}"#));
    quiet_tick(store.as_ref(), &[result("fra", 2, true, 1.0)], &mut seen).unwrap();
    assert_eq!(seen.last().map(String::as_str), Some(r#"{"n":10}"#));
    quiet_tick(store.as_ref(), &[result("fra", 3, true, 1.0)], &mut seen).unwrap();
    assert_eq!(seen.last().map(String::as_str), Some(r#"{"n":11}"#));
    // Another writer again, then the flush: the waiting state is dropped, counts are kept.
    commit(other.as_ref(), &[], r#"{"n":100}"#);
    store.flush().unwrap();
    assert_eq!(other.state("api").unwrap().as_deref(), Some(r#"{"n":100}"#));
    assert_eq!(
        checks(other.as_ref(), Step::Minute),
        [("fra".into(), 4, 0, 4)]
    );
    // Any write of this store notices the other writer, not only a flush: here a durable
    // tick of another monitor.
    quiet_tick(store.as_ref(), &[result("fra", 4, true, 1.0)], &mut seen).unwrap();
    assert_eq!(seen.last().map(String::as_str), Some(r#"{"n":100}"#));
    store.flush().unwrap();
    commit(other.as_ref(), &[], r#"{"n":1000}"#);
    let mut web = result("fra", 5, true, 1.0);
    web.monitor = "web".into();
    store
        .commit_tick("web", &[web], &mut |_| {
            Ok(Transition {
                state: "{}".into(),
                notifications: vec![],
                incident: None,
            })
        })
        .unwrap();
    quiet_tick(store.as_ref(), &[result("fra", 6, true, 1.0)], &mut seen).unwrap();
    assert_eq!(seen.last().map(String::as_str), Some(r#"{"n":1000}"#));
}

fn dropping_the_store_writes_what_waits(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    {
        let store = db.open();
        commit(store.as_ref(), &[result("fra", 0, true, 1.0)], r#"{"n":0}"#);
        let mut seen = Vec::new();
        for secs in 1..=5 {
            quiet_tick(store.as_ref(), &[result("fra", secs, true, 1.0)], &mut seen).unwrap();
        }
    }
    let store = db.open();
    assert_eq!(store.state("api").unwrap().as_deref(), Some(r#"{"n":5}"#));
    assert_eq!(
        checks(store.as_ref(), Step::Minute),
        [("fra".into(), 6, 0, 6)]
    );
}

fn reads_of_rollups_and_latest_flush_first(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    commit(store.as_ref(), &[result("fra", 0, true, 1.0)], r#"{"n":0}"#);
    let mut seen = Vec::new();
    quiet_tick(store.as_ref(), &[result("fra", 61, true, 1.0)], &mut seen).unwrap();
    // A read of another monitor, of which nothing waits, writes nothing: reading many
    // monitors in a row costs one flush, not one per monitor.
    assert!(store.latest_results("web").unwrap().is_empty());
    assert!(store.rollups("web", Step::Minute, t(0)).unwrap().is_empty());
    let other = db.open();
    assert_eq!(
        other.latest_results("api").unwrap()[0].at,
        t(0),
        "still waiting"
    );
    drop(other);
    // The same store reads its own waiting ticks.
    assert_eq!(store.latest_results("api").unwrap()[0].at, t(61));
    assert_eq!(
        checks(store.as_ref(), Step::Minute),
        [("fra".into(), 1, 0, 1), ("fra".into(), 1, 0, 1)]
    );
    assert_eq!(store.flush().unwrap(), 0);
}

both_backends!(
    quiet_ticks_read_as_committed_after_a_flush,
    a_tick_that_is_not_quiet_is_handed_back,
    a_state_changed_meanwhile_wins_over_a_waiting_one,
    dropping_the_store_writes_what_waits,
    reads_of_rollups_and_latest_flush_first,
);

/// An in-memory SQLite database has no second connection to read from: no quiet path, every
/// tick is durable.
#[test]
fn an_in_memory_store_has_no_quiet_path() {
    let store = watchpost_store::open("sqlite::memory:").unwrap();
    commit(store.as_ref(), &[result("fra", 0, true, 1.0)], r#"{"n":0}"#);
    let mut seen = Vec::new();
    assert_eq!(
        quiet_tick(store.as_ref(), &[result("fra", 1, true, 1.0)], &mut seen),
        None
    );
}
