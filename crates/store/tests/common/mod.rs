#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use tempfile::TempDir;
use watchpost_store::{NewNotification, SqliteStore, Store, Transition, TransitionOutcome};

/// Runs each named test, a `fn NAME(backend: Backend)`, on both backends: it generates
/// `NAME::sqlite` and `NAME::postgres`.
#[allow(unused_macros)]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite)
                }

                #[test]
                fn postgres() {
                    super::$name($crate::common::Backend::Postgres)
                }
            }
        )*
    };
}

/// Which store a conformance test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server the Postgres tests create their databases on.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The admin URL: `WATCHPOST_TEST_POSTGRES`, else [`DEFAULT_ADMIN_URL`].
pub fn admin_url() -> String {
    match std::env::var("WATCHPOST_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ => DEFAULT_ADMIN_URL.to_string(),
    }
}

/// A fresh, empty store of one backend: a file in a temporary directory, or a database of
/// its own on the test server, dropped with this.
pub enum TestDb {
    Sqlite(TempDb),
    Postgres(PgDb),
}

impl TestDb {
    /// A fresh store of `backend`; `None` (the test skips, saying so) when the Postgres server
    /// can't be reached — unless `CI=true`, where the test fails.
    pub fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::Sqlite(TempDb::new())),
            Backend::Postgres => PgDb::new().map(TestDb::Postgres),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            TestDb::Sqlite(_) => Backend::Sqlite,
            TestDb::Postgres(_) => Backend::Postgres,
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite(db) => db.url(),
            TestDb::Postgres(db) => db.url.clone(),
        }
    }

    /// Opens the store (again: every call is a new store on the same data).
    pub fn open(&self) -> Arc<dyn Store> {
        watchpost_store::open(&self.url()).expect("open store")
    }

    /// Runs `sql` on the database directly (to damage or inspect it).
    pub fn execute(&self, sql: &str) {
        match self {
            TestDb::Sqlite(db) => rusqlite::Connection::open(&db.path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            TestDb::Postgres(db) => db.client().batch_execute(sql).unwrap(),
        }
    }

    /// The rows of the `results` table (location, at in ns, ok), by time.
    pub fn full_rows(&self) -> Vec<(String, i64, bool)> {
        let sql = "SELECT location, at, ok FROM results ORDER BY at, id";
        match self {
            TestDb::Sqlite(db) => {
                let raw = rusqlite::Connection::open(&db.path).unwrap();
                let mut stmt = raw.prepare(sql).unwrap();
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
            TestDb::Postgres(db) => db
                .client()
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        }
    }
}

/// A database of its own on the test server (`wp_test_<pid>_<n>`), dropped with this.
pub struct PgDb {
    pub name: String,
    pub url: String,
    admin: String,
}

/// The server can't be reached: panic under `CI=true`, else say SKIP and return `None`.
fn unavailable<T>(why: String) -> Option<T> {
    let test = std::thread::current()
        .name()
        .unwrap_or("postgres test")
        .to_string();
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test}: can't use the test PostgreSQL at {} (CI=true, so this fails rather \
             than skips): {why}\nStart it (scripts/test.sh does) or point \
             WATCHPOST_TEST_POSTGRES at one (a role that may create databases).",
            watchpost_store::redact_url(&admin_url())
        );
    }
    eprintln!("SKIP {test}: can't use the test PostgreSQL: {why}");
    None
}

/// Drops the test databases of test processes that are gone (killed before their guards
/// dropped them).
fn drop_stale_databases(client: &mut postgres::Client) {
    let Ok(rows) = client.query(
        "SELECT datname FROM pg_database WHERE datname LIKE 'wp\\_test\\_%'",
        &[],
    ) else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_none_or(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// A `postgres` error with the server's message (its `Display` may say only "db error").
fn error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {db}"),
        None => format!("{e:?}"),
    }
}

impl PgDb {
    pub fn new() -> Option<PgDb> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let admin = admin_url();
        let name = format!(
            "wp_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut client = match postgres::Client::connect(&admin, postgres::NoTls) {
            Ok(client) => client,
            Err(e) => return unavailable(error_text(&e)),
        };
        static SWEEP: std::sync::Once = std::sync::Once::new();
        // Only a server on this machine: the pids are this machine's.
        let local = [
            "@127.0.0.1",
            "@localhost",
            "@[::1]",
            "://127.0.0.1",
            "://localhost",
        ]
        .iter()
        .any(|host| admin.contains(host));
        if local {
            SWEEP.call_once(|| drop_stale_databases(&mut client));
        }
        let created = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .and_then(|()| client.batch_execute(&format!("CREATE DATABASE {name}")));
        if let Err(e) = created {
            return unavailable(error_text(&e));
        }
        let (base, query) = match admin.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (admin.as_str(), String::new()),
        };
        let server = match base.rsplit_once('/') {
            Some((server, _db)) if server.ends_with('/') || server.contains("://") => server,
            _ => base,
        };
        let url = format!("{server}/{name}{query}");
        Some(PgDb { name, url, admin })
    }

    /// A plain connection to the test database, for looking at tables directly.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test database")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A temporary directory holding one database file; the file goes when this is dropped.
pub struct TempDb {
    pub dir: TempDir,
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> TempDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("watchpost.db");
        TempDb { dir, path }
    }

    pub fn url(&self) -> String {
        url(&self.path)
    }

    pub fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.url()).expect("open store")
    }
}

pub fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// 2025-01-01T00:00:00Z plus `secs` seconds.
pub fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_735_689_600, 0).unwrap() + TimeDelta::seconds(secs)
}

pub fn notification(key: &str, at: DateTime<Utc>) -> NewNotification {
    NewNotification {
        idempotency_key: key.to_string(),
        channel: "ops".to_string(),
        payload: format!(r#"{{"key":"{key}"}}"#),
        created_at: at,
        incident: None,
    }
}

/// Queues one notification per key through a transition of `monitor`.
pub fn queue(
    store: &dyn Store,
    monitor: &str,
    keys: &[&str],
    at: DateTime<Utc>,
) -> TransitionOutcome {
    store
        .transition(monitor, &mut |_| {
            Ok(Transition {
                state: "{}".to_string(),
                notifications: keys.iter().map(|k| notification(k, at)).collect(),
                incident: None,
            })
        })
        .expect("transition")
}

/// Queues, through one transition of `monitor`, one notification per `(key, channel, incident)`
/// created at `at`, in that order (so their ids ascend in that order).
pub fn queue_in(
    store: &dyn Store,
    monitor: &str,
    items: &[(&str, &str, Option<&str>)],
    at: DateTime<Utc>,
) -> TransitionOutcome {
    store
        .transition(monitor, &mut |_| {
            Ok(Transition {
                state: "{}".to_string(),
                notifications: items
                    .iter()
                    .map(|(key, channel, incident)| NewNotification {
                        channel: channel.to_string(),
                        incident: incident.map(str::to_string),
                        ..notification(key, at)
                    })
                    .collect(),
                incident: None,
            })
        })
        .expect("transition")
}

/// The idempotency keys of `items`, in order.
pub fn keys(items: &[watchpost_store::OutboxItem]) -> Vec<&str> {
    items.iter().map(|i| i.idempotency_key.as_str()).collect()
}
