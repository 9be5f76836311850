//! Opening, migrations, results and retention.

#[macro_use]
mod common;

use std::thread;
use std::time::Duration;

use chrono::DateTime;
use common::{Backend, PgDb, TempDb, TestDb, queue, t};
use watchpost_store::{
    PG_SCHEMA_VERSION, PgStore, ResultRow, SCHEMA_VERSION, SqliteStore, Store, StoreError,
};

fn result(monitor: &str, location: &str, secs: i64, ok: bool) -> ResultRow {
    ResultRow {
        monitor: monitor.into(),
        location: location.into(),
        at: t(secs),
        ok,
        data: format!(
            r#"{{"status":{},"total_ms":{secs}}}"#,
            if ok { 200 } else { 503 }
        ),
        metrics: vec![("total_ms".into(), secs as f64)],
        summarize: vec![],
    }
}

#[test]
fn open_configures_wal_and_migrates_once() {
    let db = TempDb::new();
    let store = db.open();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    queue(&store, "api", &["k"], t(0));

    // Opening again (while the first is still open, and after) keeps the data and the version.
    let second = db.open();
    assert_eq!(second.schema_version().unwrap(), SCHEMA_VERSION);
    drop((store, second));
    let third = watchpost_store::open(&db.url()).unwrap();
    assert_eq!(third.list_outbox().unwrap().len(), 1);
    assert_eq!(third.state("api").unwrap().as_deref(), Some("{}"));

    // The file itself says WAL and the schema version, to any SQLite client.
    let raw = rusqlite::Connection::open(&db.path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn many_processes_opening_a_new_file_at_once_migrate_it_once() {
    let db = TempDb::new();
    let url = db.url();
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || SqliteStore::open(&url).map(|s| s.schema_version().unwrap()))
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap().unwrap(), SCHEMA_VERSION);
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let db = TempDb::new();
    drop(db.open());
    let raw = rusqlite::Connection::open(&db.path).unwrap();
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(raw);
    let err = SqliteStore::open(&db.url()).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err}"
    );
}

#[test]
fn bad_urls_and_paths_are_errors() {
    for url in [
        "postgres://localhost/watchpost",
        "watchpost.db",
        "sqlite://",
    ] {
        let err = SqliteStore::open(url).unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedUrl { .. }),
            "{url}: {err}"
        );
    }
    let db = TempDb::new();
    let missing = db.dir.path().join("no/such/dir/w.db");
    let err = SqliteStore::open(&common::url(&missing)).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");

    // Not a database.
    let junk = db.dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
    let err = SqliteStore::open(&common::url(&junk)).unwrap_err();
    assert!(
        matches!(err, StoreError::Open { .. } | StoreError::Database(_)),
        "{err}"
    );
}

#[test]
fn a_writer_holding_the_lock_past_the_busy_timeout_gives_busy() {
    let db = TempDb::new();
    let store = db.open();
    let raw = rusqlite::Connection::open(&db.path).unwrap();
    raw.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let err = store
        .transition("api", &mut |_| unreachable!("the lock is held elsewhere"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Busy), "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    raw.execute_batch("ROLLBACK").unwrap();
    // Reads never wait for a writer (WAL).
    raw.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(store.state("api").unwrap(), None);
    raw.execute_batch("ROLLBACK").unwrap();
}

fn latest_results_per_location(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert!(store.latest_results("api").unwrap().is_empty());
    assert!(store.all_latest_results().unwrap().is_empty());
    let rows = [
        result("api", "fra", 0, true),
        result("api", "fra", 60, false),
        result("api", "sgp", 60, true),
        result("api", "iad", 0, true),
        result("web", "fra", 120, true),
    ];
    assert_eq!(store.record_results(&rows).unwrap(), 5);
    // Same instant twice at one location: the one recorded last wins.
    let mut again = result("api", "sgp", 60, false);
    again.data = r#"{"second":true}"#.into();
    store.record_results(std::slice::from_ref(&again)).unwrap();

    let latest = store.latest_results("api").unwrap();
    assert_eq!(
        latest,
        vec![rows[1].clone(), rows[3].clone(), again.clone()]
    );
    assert_eq!(store.latest_results("web").unwrap(), vec![rows[4].clone()]);
    // Every monitor at once: by monitor, then location.
    assert_eq!(
        store.all_latest_results().unwrap(),
        vec![
            rows[1].clone(),
            rows[3].clone(),
            again.clone(),
            rows[4].clone()
        ]
    );

    // A batch with one bad row writes nothing.
    let mut bad = result("api", "fra", 500, true);
    bad.data = "<html>".into();
    let err = store
        .record_results(&[result("api", "fra", 400, true), bad])
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
    assert_eq!(store.latest_results("api").unwrap()[0].at, t(60));
}

fn prune_removes_old_results_and_finished_outbox_rows(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    store
        .record_results(&[
            result("api", "fra", 0, true),
            result("api", "fra", 100, true),
            result("api", "sgp", 50, false),
        ])
        .unwrap();
    queue(
        &*store,
        "api",
        &[
            "old-delivered",
            "old-gave-up",
            "old-pending",
            "new-delivered",
        ],
        t(0),
    );
    let items = store
        .claim_due(t(0), "w", Duration::from_secs(30), 10)
        .unwrap();
    let id = |key: &str| items.iter().find(|i| i.idempotency_key == key).unwrap().id;
    store
        .mark_delivered(id("old-delivered"), "w", t(10))
        .unwrap();
    store
        .mark_gave_up(id("old-gave-up"), "w", t(20), "400")
        .unwrap();
    store
        .mark_delivered(id("new-delivered"), "w", t(100))
        .unwrap();

    // Cut at t(60): the failing result (passing ones live on only as the latest and in the
    // rollups), sgp's latest result, and two finished rows are older.
    assert_eq!(store.prune(t(60)).unwrap(), 4);
    let keys: Vec<_> = store
        .list_outbox()
        .unwrap()
        .into_iter()
        .map(|e| e.idempotency_key)
        .collect();
    assert_eq!(keys, ["old-pending", "new-delivered"]);
    assert_eq!(
        store.latest_results("api").unwrap(),
        vec![result("api", "fra", 100, true)]
    );
    assert_eq!(store.state("api").unwrap().as_deref(), Some("{}"));
    assert_eq!(store.prune(t(60)).unwrap(), 0);
}

fn times_round_trip_exactly_and_out_of_range_times_are_errors(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let precise = DateTime::from_timestamp(1_735_689_600, 123_456_789).unwrap();
    let mut row = result("api", "fra", 0, true);
    row.at = precise;
    store.record_results(std::slice::from_ref(&row)).unwrap();
    assert_eq!(store.latest_results("api").unwrap()[0].at, precise);

    row.at = DateTime::from_timestamp(i64::from(i32::MAX) * 10, 0).unwrap();
    assert!(matches!(
        store.record_results(&[row]),
        Err(StoreError::TimeOutOfRange(_))
    ));
}

#[test]
fn errors_never_show_a_password_or_query_from_the_url() {
    let db = TempDb::new();
    let dir = db.dir.path().display().to_string();
    let cases = [
        (
            "postgres://u:s3cret@h/db".to_string(),
            "postgres://u:***@h/db".to_string(),
        ),
        (
            "sqlite://x.db?key=s3cret".to_string(),
            "sqlite://x.db".to_string(),
        ),
        (
            format!("sqlite://{dir}/missing/u:s3cret@h/db"),
            format!("{dir}/missing/u:***@h/db"),
        ),
    ];
    for (url, shown) in &cases {
        let err = SqliteStore::open(url).unwrap_err();
        let (text, debug) = (err.to_string(), format!("{err:?}"));
        assert!(
            !text.contains("s3cret") && !debug.contains("s3cret"),
            "{debug}"
        );
        assert!(text.contains(shown.as_str()), "{text}");
        assert!(
            matches!(
                err,
                StoreError::UnsupportedUrl { .. } | StoreError::Open { .. }
            ),
            "{err}"
        );
        if !url.starts_with("postgres") {
            let err = watchpost_store::open(url).err().unwrap();
            assert!(!format!("{err} {err:?}").contains("s3cret"));
        }
    }
    // A Postgres server that can't be reached, or a bad sslmode: the password is not shown.
    for url in [
        "postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=2",
        "postgres://u:s3cret@127.0.0.1:1/db?sslmode=verify-full&connect_timeout=2",
        "postgresql://u:s3cret@127.0.0.1:1/db?sslmode=bogus",
    ] {
        let err = watchpost_store::open(url).err().unwrap();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("u:***@127.0.0.1:1/db"), "{text}");
    }
    // A Postgres URL is one this build can open (whether the server answers is known only
    // then).
    assert!(watchpost_store::check_url(&cases[0].0).is_ok());
    assert!(matches!(
        watchpost_store::check_url("mysql://u:s3cret@h/db"),
        Err(StoreError::UnsupportedUrl { .. })
    ));
    assert!(watchpost_store::check_url(&db.url()).is_ok());
    assert_eq!(
        watchpost_store::redact_url("postgres://u:s3cret@h:5432/db?password=s3cret"),
        "postgres://u:***@h:5432/db"
    );
}

/// A schema-1 file with rows in every outbox state, written as version 1 wrote them.
fn v1_file(db: &TempDb) {
    let ns = |secs: i64| t(secs).timestamp_nanos_opt().unwrap();
    let raw = rusqlite::Connection::open(&db.path).unwrap();
    raw.pragma_update(None, "journal_mode", "WAL").unwrap();
    raw.execute_batch(include_str!("../migrations/0001_initial.sql"))
        .unwrap();
    raw.pragma_update(None, "user_version", 1).unwrap();
    raw.execute(
        "INSERT INTO monitor_state (monitor, state, version) VALUES ('api', '{\"v\":1}', 7)",
        [],
    )
    .unwrap();
    let mut insert = raw
        .prepare(
            "INSERT INTO outbox (idempotency_key, monitor, channel, payload, created_at, \
             next_attempt_at, attempts, last_error, leased_by, lease_until, delivered_at) \
             VALUES (?1, 'api', 'ops', '{}', ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .unwrap();
    let none: Option<i64> = None;
    let no_text: Option<&str> = None;
    insert
        .execute(rusqlite::params![
            "fresh",
            ns(0),
            ns(0),
            0,
            no_text,
            no_text,
            none,
            none
        ])
        .unwrap();
    insert
        .execute(rusqlite::params![
            "retrying",
            ns(0),
            ns(60),
            2,
            Some("HTTP 503"),
            Some("old"),
            none,
            none
        ])
        .unwrap();
    insert
        .execute(rusqlite::params![
            "leased-by-dead-worker",
            ns(0),
            ns(0),
            1,
            no_text,
            Some("old"),
            Some(ns(30)),
            none
        ])
        .unwrap();
    insert
        .execute(rusqlite::params![
            "delivered",
            ns(0),
            ns(0),
            1,
            no_text,
            Some("old"),
            none,
            Some(ns(1))
        ])
        .unwrap();
}

#[test]
fn a_version_1_file_is_migrated_in_place_and_its_pending_rows_stay_claimable() {
    let db = TempDb::new();
    v1_file(&db);
    let store = db.open();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 5);

    let entries = store.list_outbox().unwrap();
    assert_eq!(entries.len(), 4);
    for e in &entries {
        assert_eq!(e.incident, None, "{}", e.idempotency_key);
        assert_eq!(e.last_attempt_at, None);
        assert_eq!(e.retried, Duration::ZERO);
    }
    assert_eq!(entries[1].last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(store.pending_count().unwrap(), 3);
    assert_eq!(
        store.oldest_undelivered().unwrap().unwrap().id,
        entries[0].id
    );
    assert_eq!(store.state("api").unwrap().as_deref(), Some(r#"{"v":1}"#));

    let lease = Duration::from_secs(30);
    let claimed = store.claim_due(t(60), "new", lease, 10).unwrap();
    let got: Vec<_> = claimed
        .iter()
        .map(|i| (i.idempotency_key.as_str(), i.attempts, i.retried))
        .collect();
    assert_eq!(
        got,
        [
            ("fresh", 1, Duration::ZERO),
            ("leased-by-dead-worker", 2, Duration::ZERO),
            ("retrying", 3, Duration::ZERO),
        ]
    );
    // The dead worker lost its item; the new one settles them, and retry time counts from now.
    assert!(matches!(
        store.mark_delivered(claimed[1].id, "old", t(61)),
        Err(StoreError::NotLeased { .. })
    ));
    store.mark_delivered(claimed[0].id, "new", t(61)).unwrap();
    store.mark_delivered(claimed[1].id, "new", t(61)).unwrap();
    store
        .mark_retry(claimed[2].id, "new", t(120), "503")
        .unwrap();
    let again = store.claim_due(t(120), "new", lease, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].retried, Duration::from_secs(60));
    // The version carries on from where version 1 left it.
    let outcome = common::queue(&store, "api", &["new"], t(121));
    assert_eq!(outcome.version, 8);

    // The new indexes exist.
    let raw = rusqlite::Connection::open(&db.path).unwrap();
    let indexes: Vec<String> = raw
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'outbox_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        [
            "outbox_clock_back",
            "outbox_due",
            "outbox_order",
            "outbox_undelivered"
        ]
    );
}

both_backends!(
    latest_results_per_location,
    prune_removes_old_results_and_finished_outbox_rows,
    times_round_trip_exactly_and_out_of_range_times_are_errors,
);

#[test]
fn postgres_stores_opening_a_new_database_at_once_migrate_it_once() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let url = db.url.clone();
            thread::spawn(move || PgStore::open(&url).map(|s| s.schema_version().unwrap()))
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap().unwrap(), PG_SCHEMA_VERSION);
    }
    let rows = db
        .client()
        .query("SELECT version FROM watchpost_schema", &[])
        .unwrap();
    assert_eq!(rows.len(), 1);
}

#[test]
fn postgres_refuses_a_newer_schema() {
    let Some(db) = PgDb::new() else {
        return;
    };
    drop(PgStore::open(&db.url).unwrap());
    db.client()
        .batch_execute(&format!(
            "UPDATE watchpost_schema SET version = {}",
            PG_SCHEMA_VERSION + 1
        ))
        .unwrap();
    let err = PgStore::open(&db.url).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, supported }
            if found == PG_SCHEMA_VERSION + 1 && supported == PG_SCHEMA_VERSION),
        "{err}"
    );
}

#[test]
fn postgres_callers_beyond_the_pool_wait_for_a_connection() {
    let Some(db) = TestDb::new(Backend::Postgres) else {
        return;
    };
    let store = db.open();
    // More threads than connections, each holding its connection inside decide for a while.
    let threads: Vec<_> = (0..3 * watchpost_store::POOL_SIZE)
        .map(|i| {
            let store = store.clone();
            thread::spawn(move || {
                store
                    .transition(&format!("m{i}"), &mut |_| {
                        thread::sleep(Duration::from_millis(20));
                        Ok(watchpost_store::Transition {
                            state: "{}".into(),
                            notifications: vec![],
                            incident: None,
                        })
                    })
                    .unwrap()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap().version, 1);
    }
}

#[test]
fn postgres_sslmode_require_verifies_the_servers_certificate() {
    let Some(db) = PgDb::new() else {
        return;
    };
    // The test server's certificate (Debian's snakeoil, or none) is not one the webpki roots
    // vouch for: TLS is attempted and refused, never downgraded to plaintext.
    let url = format!("{}?sslmode=require", db.url);
    let err = PgStore::open(&url).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{text}");
    assert!(
        ["certificate", "TLS", "tls", "ssl", "SSL"]
            .iter()
            .any(|word| text.contains(word)),
        "{text}"
    );
    // Plaintext as asked, and by default to a local server.
    PgStore::open(&format!("{}?sslmode=disable", db.url)).unwrap();
    PgStore::open(&db.url).unwrap();
}
