//! [`SqliteStore`]: the [`Store`] on one SQLite file.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::time::{from_db, opt_from_db, to_db};
use crate::{
    Incident, IncidentChange, OutboxEntry, OutboxItem, ResultRow, Store, StoreError, Transition,
    TransitionOutcome,
};

/// The migrations, in order; migration `i` (0-based) brings the file to `user_version` `i + 1`.
/// Append new ones; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_initial.sql")];

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a writer waits for another connection's write transaction before [`StoreError::Busy`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The store on one SQLite file (or in memory, for tests).
///
/// One connection, used by one caller at a time (a mutex); share the store through an `Arc`.
/// Several `SqliteStore`s — in one process or several — may open the same file: writes are
/// serialized by SQLite (`BEGIN IMMEDIATE`, waiting up to 5 s for the lock), reads see the last
/// committed state (WAL). Commits are `synchronous = FULL`: a delivered mark or a transition that
/// returned Ok survives a power cut.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The id (see [`thread_id`]) of the thread holding `conn`, 0 when free; detects a store call
    /// from inside `decide`, which would otherwise deadlock.
    owner: AtomicU64,
}

enum Target {
    Memory,
    File(PathBuf),
}

fn parse_url(url: &str) -> Result<Target, StoreError> {
    let unsupported = || StoreError::UnsupportedUrl {
        url: url.to_string(),
    };
    let rest = url.strip_prefix("sqlite:").ok_or_else(unsupported)?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path == ":memory:" {
        return Ok(Target::Memory);
    }
    if path.is_empty() || path.contains('?') {
        return Err(unsupported());
    }
    Ok(Target::File(PathBuf::from(path)))
}

impl SqliteStore {
    /// Opens (creating if missing) the database named by `url` — `sqlite://PATH`, `sqlite:PATH`
    /// or `sqlite::memory:` — sets WAL, `busy_timeout` 5 s, `synchronous = FULL` and foreign
    /// keys, and applies the pending migrations.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let (opened, name) = match parse_url(url)? {
            Target::Memory => (Connection::open_in_memory(), ":memory:".to_string()),
            Target::File(path) => (Connection::open(&path), path.display().to_string()),
        };
        let open_error = |message: String| StoreError::Open {
            path: name.clone(),
            message,
        };
        let mut conn = opened.map_err(|e| open_error(e.to_string()))?;
        configure(&conn).map_err(|e| match e {
            StoreError::Busy => StoreError::Busy,
            other => open_error(other.to_string()),
        })?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            owner: AtomicU64::new(0),
        })
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let conn = self.lock()?;
        Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn lock(&self) -> Result<Guard<'_>, StoreError> {
        let me = thread_id();
        if self.owner.load(Ordering::Acquire) == me {
            return Err(StoreError::Reentrant);
        }
        // A panic in `decide` poisons the mutex; the transaction was rolled back when it unwound,
        // so the connection is fine to use.
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if !conn.is_autocommit() {
            // Defensive: never run on inside a transaction someone left open.
            let _ = conn.execute_batch("ROLLBACK");
        }
        self.owner.store(me, Ordering::Release);
        Ok(Guard {
            conn,
            owner: &self.owner,
        })
    }
}

struct Guard<'a> {
    conn: MutexGuard<'a, Connection>,
    owner: &'a AtomicU64,
}

impl Deref for Guard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.owner.store(0, Ordering::Release);
    }
}

/// A process-unique, nonzero id for the current thread.
fn thread_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    ID.with(|id| *id)
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        return Err(StoreError::Database(format!(
            "cannot switch to WAL mode (journal_mode is {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    let on: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    if !on {
        return Err(StoreError::Database(
            "this SQLite cannot enforce foreign keys".into(),
        ));
    }
    Ok(())
}

fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the file to [`SCHEMA_VERSION`]. The check and the migrations run in one write
/// transaction, so two processes opening a new file at once migrate it once.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    if user_version(conn)? == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = user_version(&tx)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let done = usize::try_from(found)
        .map_err(|_| StoreError::Corrupt(format!("negative schema version {found}")))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let version = index as i64 + 1;
        let failed = |e: rusqlite::Error| StoreError::Migration {
            version,
            message: e.to_string(),
        };
        tx.execute_batch(sql).map_err(failed)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(failed)?;
    }
    tx.commit()?;
    Ok(())
}

fn check_json(what: &'static str, text: &str) -> Result<(), StoreError> {
    serde_json::from_str::<serde_json::Value>(text)
        .map(drop)
        .map_err(|e| StoreError::InvalidJson {
            what,
            message: e.to_string(),
        })
}

fn check_not_empty(what: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::InvalidInput(format!("{what} is empty")));
    }
    Ok(())
}

fn to_count(n: i64) -> Result<usize, StoreError> {
    usize::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
}

fn result_row(r: &Row<'_>) -> rusqlite::Result<ResultRow> {
    Ok(ResultRow {
        monitor: r.get(0)?,
        location: r.get(1)?,
        at: from_db(r.get(2)?),
        ok: r.get(3)?,
        data: r.get(4)?,
    })
}

fn outbox_entry(r: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: r.get(0)?,
        idempotency_key: r.get(1)?,
        monitor: r.get(2)?,
        channel: r.get(3)?,
        payload: r.get(4)?,
        created_at: from_db(r.get(5)?),
        next_attempt_at: from_db(r.get(6)?),
        attempts: r.get(7)?,
        last_error: r.get(8)?,
        leased_by: r.get(9)?,
        lease_until: opt_from_db(r.get(10)?),
        delivered_at: opt_from_db(r.get(11)?),
        gave_up_at: opt_from_db(r.get(12)?),
    })
}

fn incident(r: &Row<'_>) -> rusqlite::Result<Incident> {
    Ok(Incident {
        id: r.get(0)?,
        monitor: r.get(1)?,
        opened_at: from_db(r.get(2)?),
        reason: r.get(3)?,
        closed_at: opt_from_db(r.get(4)?),
    })
}

/// The condition under which a worker may finish an item: leased to it, lease not released,
/// not finished. `?1` is the id, `?2` the worker.
const OURS: &str = "id = ?1 AND leased_by = ?2 AND lease_until IS NOT NULL \
                    AND delivered_at IS NULL AND gave_up_at IS NULL";

impl SqliteStore {
    fn finish(
        &self,
        id: i64,
        worker_id: &str,
        set: &str,
        at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let at = to_db(at)?;
        let conn = self.lock()?;
        let sql = format!("UPDATE outbox SET {set}, lease_until = NULL WHERE {OURS}");
        let mut stmt = conn.prepare_cached(&sql)?;
        let changed = match error {
            Some(error) => stmt.execute(params![id, worker_id, at, error])?,
            None => stmt.execute(params![id, worker_id, at])?,
        };
        if changed == 0 {
            return Err(StoreError::NotLeased {
                id,
                worker: worker_id.to_string(),
            });
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn transition(
        &self,
        monitor: &str,
        decide: &mut dyn FnMut(Option<String>) -> Result<Transition, String>,
    ) -> Result<TransitionOutcome, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<(String, i64)> = tx
            .prepare_cached("SELECT state, version FROM monitor_state WHERE monitor = ?1")?
            .query_row([monitor], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (state, version) = match current {
            Some((state, version)) => (Some(state), version),
            None => (None, 0),
        };
        let transition = decide(state).map_err(StoreError::Decide)?;

        // Validate everything before writing anything.
        check_json("monitor state", &transition.state)?;
        for n in &transition.notifications {
            check_not_empty("notification idempotency key", &n.idempotency_key)?;
            check_json("notification payload", &n.payload)?;
        }
        if let Some(IncidentChange::Open {
            monitor: incident_monitor,
            id,
            ..
        }) = &transition.incident
            && incident_monitor != monitor
        {
            return Err(StoreError::InvalidInput(format!(
                "incident {id} opened for monitor {incident_monitor:?} in a transition of {monitor:?}"
            )));
        }

        let version = version + 1;
        tx.prepare_cached(
            "INSERT INTO monitor_state (monitor, state, version) VALUES (?1, ?2, ?3) \
             ON CONFLICT (monitor) DO UPDATE SET state = excluded.state, version = excluded.version",
        )?
        .execute(params![monitor, transition.state, version])?;

        let mut inserted = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO outbox \
                 (idempotency_key, monitor, channel, payload, created_at, next_attempt_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (idempotency_key) DO NOTHING",
            )?;
            for n in &transition.notifications {
                inserted += insert.execute(params![
                    n.idempotency_key,
                    monitor,
                    n.channel,
                    n.payload,
                    to_db(n.created_at)?
                ])?;
            }
        }

        let incident_applied = match &transition.incident {
            None => false,
            Some(IncidentChange::Open {
                id,
                monitor,
                opened_at,
                reason,
            }) => {
                tx.prepare_cached(
                    "INSERT INTO incidents (id, monitor, opened_at, reason) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![id, monitor, to_db(*opened_at)?, reason])?
                    == 1
            }
            Some(IncidentChange::Close { id, closed_at }) => {
                tx.prepare_cached(
                    "UPDATE incidents SET closed_at = ?3 \
                     WHERE id = ?1 AND monitor = ?2 AND closed_at IS NULL",
                )?
                .execute(params![id, monitor, to_db(*closed_at)?])?
                    == 1
            }
        };

        tx.commit()?;
        Ok(TransitionOutcome {
            version,
            notifications_inserted: inserted,
            notifications_ignored: transition.notifications.len() - inserted,
            incident_applied,
        })
    }

    fn state(&self, monitor: &str) -> Result<Option<String>, StoreError> {
        let conn = self.lock()?;
        Ok(conn
            .prepare_cached("SELECT state FROM monitor_state WHERE monitor = ?1")?
            .query_row([monitor], |r| r.get(0))
            .optional()?)
    }

    fn record_results(&self, rows: &[ResultRow]) -> Result<usize, StoreError> {
        for row in rows {
            check_json("result data", &row.data)?;
        }
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO results (monitor, location, at, ok, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for row in rows {
                insert.execute(params![
                    row.monitor,
                    row.location,
                    to_db(row.at)?,
                    row.ok,
                    row.data
                ])?;
            }
        }
        tx.commit()?;
        Ok(rows.len())
    }

    fn latest_results(&self, monitor: &str) -> Result<Vec<ResultRow>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(
            "SELECT monitor, location, at, ok, data FROM ( \
                 SELECT monitor, location, at, ok, data, ROW_NUMBER() OVER ( \
                     PARTITION BY location ORDER BY at DESC, id DESC) AS rank \
                 FROM results WHERE monitor = ?1) \
             WHERE rank = 1 ORDER BY location",
        )?;
        let rows = stmt
            .query_map([monitor], result_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn prune(&self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        let before = to_db(older_than)?;
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let results = tx.execute("DELETE FROM results WHERE at < ?1", [before])?;
        let outbox = tx.execute(
            "DELETE FROM outbox WHERE delivered_at < ?1 OR gave_up_at < ?1",
            [before],
        )?;
        tx.commit()?;
        Ok(results + outbox)
    }

    fn claim_due(
        &self,
        now: DateTime<Utc>,
        worker_id: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        check_not_empty("worker id", worker_id)?;
        if lease.is_zero() {
            return Err(StoreError::InvalidInput("lease is zero".into()));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = TimeDelta::from_std(lease)
            .ok()
            .and_then(|lease| now.checked_add_signed(lease))
            .ok_or_else(|| StoreError::TimeOutOfRange(format!("{now} + {lease:?}")))?;
        let (now, until) = (to_db(now)?, to_db(until)?);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);

        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut claimed = {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET leased_by = ?1, lease_until = ?2, attempts = attempts + 1 \
                 WHERE id IN ( \
                     SELECT id FROM outbox \
                     WHERE delivered_at IS NULL AND gave_up_at IS NULL \
                       AND next_attempt_at <= ?3 \
                       AND (lease_until IS NULL OR lease_until <= ?3) \
                     ORDER BY next_attempt_at, id LIMIT ?4) \
                 RETURNING next_attempt_at, id, idempotency_key, channel, payload, created_at, \
                           attempts, last_error",
            )?;
            stmt.query_map(params![worker_id, until, now, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    OutboxItem {
                        id: r.get(1)?,
                        idempotency_key: r.get(2)?,
                        channel: r.get(3)?,
                        payload: r.get(4)?,
                        created_at: from_db(r.get(5)?),
                        attempts: r.get(6)?,
                        last_error: r.get(7)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.commit()?;
        claimed.sort_by_key(|(due, item)| (*due, item.id));
        Ok(claimed.into_iter().map(|(_, item)| item).collect())
    }

    fn mark_delivered(
        &self,
        id: i64,
        worker_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.finish(id, worker_id, "delivered_at = ?3", at, None)
    }

    fn mark_retry(
        &self,
        id: i64,
        worker_id: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        self.finish(
            id,
            worker_id,
            "next_attempt_at = ?3, last_error = ?4",
            next_attempt_at,
            Some(error),
        )
    }

    fn mark_gave_up(
        &self,
        id: i64,
        worker_id: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        self.finish(
            id,
            worker_id,
            "gave_up_at = ?3, last_error = ?4",
            at,
            Some(error),
        )
    }

    fn pending_count(&self) -> Result<usize, StoreError> {
        let conn = self.lock()?;
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        to_count(n)
    }

    fn list_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, idempotency_key, monitor, channel, payload, created_at, next_attempt_at, \
                    attempts, last_error, leased_by, lease_until, delivered_at, gave_up_at \
             FROM outbox ORDER BY id",
        )?;
        let rows = stmt
            .query_map([], outbox_entry)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn incidents(&self, monitor: &str) -> Result<Vec<Incident>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, monitor, opened_at, reason, closed_at FROM incidents \
             WHERE monitor = ?1 ORDER BY opened_at, id",
        )?;
        let rows = stmt
            .query_map([monitor], incident)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(matches!(parse_url("sqlite::memory:"), Ok(Target::Memory)));
        assert!(matches!(parse_url("sqlite://:memory:"), Ok(Target::Memory)));
        let file = |url| match parse_url(url) {
            Ok(Target::File(p)) => p,
            _ => panic!("{url} is not a file URL"),
        };
        assert_eq!(
            file("sqlite:///var/lib/w.db"),
            PathBuf::from("/var/lib/w.db")
        );
        assert_eq!(file("sqlite://data/w.db"), PathBuf::from("data/w.db"));
        assert_eq!(file("sqlite:w.db"), PathBuf::from("w.db"));
        for bad in [
            "postgres://x/y",
            "sqlite://",
            "sqlite:",
            "w.db",
            "sqlite://w.db?mode=ro",
        ] {
            assert!(
                matches!(parse_url(bad), Err(StoreError::UnsupportedUrl { .. })),
                "{bad}"
            );
        }
    }
}
