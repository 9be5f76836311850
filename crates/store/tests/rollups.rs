//! Results as data people read: every result becomes its location's latest and is counted in
//! its minute's and its hour's rollup (checks, failures, a summary per metric), in the same
//! transaction; full rows are kept only for failures and the first pass after one; rollups are
//! pruned by step; a file written by the previous schema keeps its history's counts.

#[macro_use]
mod common;

use common::{Backend, TempDb, TestDb, t};
use watchpost_store::{ResultRow, Step, Store};

fn result(location: &str, secs: i64, ok: bool, total_ms: f64) -> ResultRow {
    ResultRow {
        monitor: "api".into(),
        location: location.into(),
        at: t(secs),
        ok,
        data: format!(r#"{{"ok":{ok},"at":{secs}}}"#),
        metrics: vec![("total_ms".into(), total_ms), ("status".into(), 200.0)],
        summarize: vec!["total_ms".into()],
    }
}

fn ticks_are_counted_per_minute_and_hour_with_metric_summaries(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    // fra: passes at 0, 10, 20 s (10, 20, 30 ms), fails at 70 s, passes at 80 s; sgp passes
    // once at 5 s. t(0) is on the hour.
    let rows = [
        result("fra", 0, true, 10.0),
        result("fra", 10, true, 20.0),
        result("sgp", 5, true, 7.0),
        result("fra", 20, true, 30.0),
        result("fra", 70, false, 900.0),
        result("fra", 80, true, 40.0),
    ];
    for row in &rows {
        store.record_results(std::slice::from_ref(row)).unwrap();
    }

    let minutes = store.rollups("api", Step::Minute, t(0)).unwrap();
    let view: Vec<(&str, i64, u64, u64)> = minutes
        .iter()
        .map(|r| {
            (
                r.location.as_str(),
                r.bucket.timestamp() - t(0).timestamp(),
                r.checks,
                r.failures,
            )
        })
        .collect();
    assert_eq!(
        view,
        [("fra", 0, 3, 0), ("fra", 60, 2, 1), ("sgp", 0, 1, 0)]
    );
    let first = &minutes[0].metrics["total_ms"];
    assert_eq!(
        (first.n, first.min, first.max, first.sum),
        (3, 10.0, 30.0, 60.0)
    );
    let p50 = first.quantile(0.5).unwrap();
    assert!((p50 - 20.0).abs() < 0.2, "{p50}");

    let hours = store.rollups("api", Step::Hour, t(0)).unwrap();
    assert_eq!(hours.len(), 2);
    assert_eq!((hours[0].checks, hours[0].failures), (5, 1));
    let total = &hours[0].metrics["total_ms"];
    assert_eq!((total.n, total.max), (5, 900.0));
    // Only later buckets when asked from later.
    assert_eq!(store.rollups("api", Step::Minute, t(61)).unwrap().len(), 1);

    // The latest per location, with its metrics.
    let latest = store.latest_results("api").unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[0].at, t(80));
    assert!(latest[0].metrics.contains(&("total_ms".to_string(), 40.0)));

    // Full rows: the failure and the first pass after it; not the passes before.
    let kept: Vec<(String, bool)> = db
        .full_rows()
        .into_iter()
        .map(|(l, _, ok)| (l, ok))
        .collect();
    assert_eq!(
        kept,
        [("fra".to_string(), false), ("fra".to_string(), true)]
    );

    // Retention by step: minutes before t(60) go, hours stay.
    assert_eq!(store.prune_rollups(Step::Minute, t(60)).unwrap(), 2);
    assert_eq!(store.rollups("api", Step::Minute, t(0)).unwrap().len(), 1);
    assert_eq!(store.rollups("api", Step::Hour, t(0)).unwrap().len(), 2);
}

fn a_tick_is_rolled_up_with_its_transition(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let rows = [result("fra", 0, false, 5.0)];
    // A rejected transition writes no result, so nothing is counted either.
    assert!(
        store
            .commit_tick("api", &rows, &mut |_| Err("no".into()))
            .is_err()
    );
    assert!(store.rollups("api", Step::Minute, t(0)).unwrap().is_empty());
    assert!(store.latest_results("api").unwrap().is_empty());
    store
        .commit_tick("api", &rows, &mut |_| {
            Ok(watchpost_store::Transition {
                state: "{}".into(),
                notifications: vec![],
                incident: None,
            })
        })
        .unwrap();
    assert_eq!(
        store.rollups("api", Step::Minute, t(0)).unwrap()[0].failures,
        1
    );
}

#[test]
fn a_previous_schemas_results_keep_their_counts_and_latest() {
    let db = TempDb::new();
    {
        let raw = rusqlite::Connection::open(&db.path).unwrap();
        raw.pragma_update(None, "journal_mode", "WAL").unwrap();
        raw.execute_batch(include_str!("../migrations/0001_initial.sql"))
            .unwrap();
        raw.execute_batch(include_str!("../migrations/0002_order_and_retry_time.sql"))
            .unwrap();
        raw.pragma_update(None, "user_version", 2).unwrap();
        let ns = |secs: i64| t(secs).timestamp_nanos_opt().unwrap();
        for (secs, ok) in [(0, 1), (30, 0), (90, 1)] {
            raw.execute(
                "INSERT INTO results (monitor, location, at, ok, data) \
                 VALUES ('api', 'local', ?1, ?2, '{}')",
                rusqlite::params![ns(secs), ok],
            )
            .unwrap();
        }
    }
    let store = db.open();
    let minutes = store.rollups("api", Step::Minute, t(0)).unwrap();
    let counts: Vec<(u64, u64)> = minutes.iter().map(|r| (r.checks, r.failures)).collect();
    assert_eq!(counts, [(2, 1), (1, 0)]);
    let hours = store.rollups("api", Step::Hour, t(0)).unwrap();
    assert_eq!((hours[0].checks, hours[0].failures), (3, 1));
    let latest = store.latest_results("api").unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].at, t(90));
}

/// Ticks of one location from several stores at once: every one is counted (Postgres locks
/// the rollup row; SQLite serializes writers).
fn concurrent_ticks_lose_no_count(b: Backend) {
    const THREADS: usize = 4;
    const EACH: usize = 25;
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let store = db.open();
            std::thread::spawn(move || {
                for n in 0..EACH {
                    let row = result("fra", (n % 50) as i64, i % 2 == 0, (n + 1) as f64);
                    store.record_results(&[row]).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let store = db.open();
    for step in Step::ALL {
        let rollups = store.rollups("api", step, t(0)).unwrap();
        assert_eq!(rollups.len(), 1, "{b:?} {step:?}");
        let total = (THREADS * EACH) as u64;
        assert_eq!(rollups[0].checks, total, "{b:?} {step:?}");
        assert_eq!(rollups[0].failures, total / 2, "{b:?} {step:?}");
        assert_eq!(rollups[0].metrics["total_ms"].n, total, "{b:?} {step:?}");
    }
}

both_backends!(
    ticks_are_counted_per_minute_and_hour_with_metric_summaries,
    a_tick_is_rolled_up_with_its_transition,
    concurrent_ticks_lose_no_count,
);
