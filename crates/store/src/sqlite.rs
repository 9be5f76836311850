//! [`SqliteStore`]: the [`Store`] on one SQLite file.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::pending::{self, Known, Pending, QuietReads};
use crate::shared::{
    self, Candidate, CheckedObservations, CheckedTransition, ClaimTimes, Scan, bucket_of,
    check_lease, check_not_empty, check_observations, check_results, check_tick, check_transition,
    fired_input, future_limit, latest_metrics, merge_rollup_delta, merge_rollup_metrics,
    next_version, plan_shards, to_count,
};
use crate::time::{add, duration_from_db, from_db, nanos, opt_from_db, to_db};
use crate::url::{Target, parse_url, redacted_path};
use crate::{
    CLOCK_BACK_TOLERANCE, Incident, IncidentChange, ObservationRow, ObservationsRecorded,
    OutboxEntry, OutboxItem, PendingInfo, RETRY_GAP_CAP, ResultRow, Rollup, Step, Store,
    StoreError, Transition, TransitionOutcome,
};

/// The migrations, in order; migration `i` (0-based) brings the file to `user_version` `i + 1`.
/// Append new ones; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_order_and_retry_time.sql"),
    include_str!("../migrations/0003_latest_and_rollups.sql"),
    include_str!("../migrations/0004_schedule_runs.sql"),
    include_str!("../migrations/0005_observations_and_shards.sql"),
];

/// Rows deleted per transaction by retention.
const PRUNE_CHUNK: usize = 5_000;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a writer waits for another connection's write transaction before [`StoreError::Busy`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most ticks committed together (see *Group commit* on [`SqliteStore`]).
pub const MAX_BATCH: usize = 256;

/// How long a batch's first writer waits, at most, for a writer already on its way to the
/// lock to join (a safety net: one that announced itself takes the lock within microseconds).
const JOIN_WAIT: Duration = Duration::from_millis(20);

/// When batches follow each other closely (the last ended less than [`BUSY_GAP`] before this
/// one began), the first caller also waits up to this long for more ticks to join before it
/// commits: under load, a few milliseconds gather many ticks into one `fsync`; when idle,
/// nothing waits.
const COMMIT_DELAY: Duration = Duration::from_millis(3);

/// How long a quiet tick's read waits for a busy database before the tick takes the durable
/// path instead (it runs on an async worker: it must not wait long).
const READER_BUSY_TIMEOUT: Duration = Duration::from_millis(50);

/// See [`COMMIT_DELAY`].
const BUSY_GAP: Duration = Duration::from_millis(20);

/// The store on one SQLite file (or in memory, for tests).
///
/// One connection, used by one caller at a time (a mutex); share the store through an `Arc`.
/// Several `SqliteStore`s — in one process or several — may open the same file: writes are
/// serialized by SQLite (`BEGIN IMMEDIATE`, waiting up to 5 s for the lock), reads see the last
/// committed state (WAL). Commits are `synchronous = FULL`: a delivered mark or a transition that
/// returned Ok survives a power cut.
///
/// # Group commit
///
/// Ticks ([`Store::commit_tick`], [`Store::transition`], [`Store::record_results`]) and
/// pushed observations ([`Store::record_observations`]) are committed in batches, so that many monitors finishing at once cost one `fsync`, not one
/// each. The first caller to find no batch open begins one (`BEGIN IMMEDIATE`) and runs its
/// tick in it; callers arriving meanwhile join the open batch, each running its own tick —
/// its own `decide`, on its own thread — inside a savepoint of it, so a tick that fails (or
/// panics) rolls back alone and the others stay. When no caller is on its way any more (or
/// [`MAX_BATCH`] ticks are in), the first caller commits the batch and every caller in it
/// returns only then: a tick that returned Ok is durable, and a notification it wrote can't
/// be claimed before that. If the commit itself fails, every tick of the batch fails with the
/// error. The other operations (outbox claims and marks, reads, retention) wait for an open
/// batch to commit and run alone; a batch doesn't start while one of them waits.
#[derive(Debug)]
pub struct SqliteStore {
    inner: Mutex<Inner>,
    /// Signalled when a tick joins a batch, when a batch commits, and when an operation that
    /// runs alone finishes.
    changed: Condvar,
    /// Callers of a batched operation between announcing themselves and taking the lock.
    arriving: AtomicUsize,
    /// The id (see [`thread_id`]) of the thread holding `conn`, 0 when free; detects a store call
    /// from inside `decide`, which would otherwise deadlock.
    owner: AtomicU64,
    /// Batches committed and the ticks they kept (not those rolled back), since the store
    /// was opened.
    batches: AtomicU64,
    ticks: AtomicU64,
    /// A second connection for [`Store::commit_quiet_tick`]'s reads (WAL: never waits for
    /// the writer); `None` for an in-memory database, which has no quiet path.
    reader: Option<Mutex<Connection>>,
    /// What quiet ticks left for the next [`Store::flush`].
    pending: Mutex<Pending>,
    /// What the quiet path knows of quiet monitors, so that their ticks read nothing (see
    /// [`crate::pending`]): forgotten by this process's own writes of a monitor, and wholly
    /// when [`Inner::data_version`] shows another connection wrote.
    known: Mutex<Known>,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    /// A batch transaction is open.
    open: bool,
    /// The number of the open (or last) batch.
    number: u64,
    /// Ticks run in the open batch, and those of them that succeeded.
    jobs: usize,
    kept: usize,
    /// The number of the last batch that ended (committed or failed).
    ended: u64,
    /// The last batch whose commit failed, and why.
    failed: Option<(u64, String)>,
    /// When the last batch ended.
    last_end: Option<std::time::Instant>,
    /// Operations that run alone, waiting for the open batch to end.
    alone_waiting: usize,
    /// `PRAGMA data_version` after this connection's last write: it changes only when another
    /// connection (another process: this one's reader never writes) commits.
    data_version: Option<i64>,
}

impl Inner {
    /// Whether another connection committed since the last call (checked after each write
    /// of this one). A failed read counts as a change.
    fn others_wrote(&mut self) -> bool {
        let now = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
            .ok();
        let changed = now.is_none() || (self.data_version.is_some() && self.data_version != now);
        self.data_version = now;
        changed
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database named by `url` — `sqlite://PATH`, `sqlite:PATH`
    /// or `sqlite::memory:` — sets WAL, `busy_timeout` 5 s, `synchronous = FULL` and foreign
    /// keys, and applies the pending migrations.
    ///
    /// Errors name the file redacted ([`crate::redact_url`]): no password from the URL appears
    /// in them.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        // Two processes opening a new file at once race for WAL mode and the migration; SQLite
        // answers some of those lock upgrades with SQLITE_BUSY at once, without waiting for its
        // busy handler. Try again for up to the busy timeout.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        let mut wait = Duration::from_millis(5);
        loop {
            match Self::try_open(url) {
                Err(StoreError::Busy) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    fn try_open(url: &str) -> Result<Self, StoreError> {
        let (opened, raw, shown) = match parse_url(url)? {
            Target::Memory => (Connection::open_in_memory(), None, ":memory:".to_string()),
            Target::File(path) => (
                Connection::open(&path),
                Some(path.display().to_string()),
                redacted_path(url),
            ),
        };
        // SQLite's messages may quote the path as given; show it redacted there too.
        let open_error = |message: String| StoreError::Open {
            path: shown.clone(),
            message: match &raw {
                Some(raw) if !raw.is_empty() => message.replace(raw.as_str(), &shown),
                _ => message,
            },
        };
        let mut conn = opened.map_err(|e| open_error(e.to_string()))?;
        configure(&conn).map_err(|e| match e {
            StoreError::Busy => StoreError::Busy,
            other => open_error(other.to_string()),
        })?;
        migrate(&mut conn)?;
        let reader = match &raw {
            Some(path) => {
                let reader = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
                reader.busy_timeout(READER_BUSY_TIMEOUT)?;
                Some(Mutex::new(reader))
            }
            None => None,
        };
        Ok(SqliteStore {
            inner: Mutex::new(Inner {
                conn,
                open: false,
                number: 0,
                jobs: 0,
                kept: 0,
                ended: 0,
                failed: None,
                last_end: None,
                alone_waiting: 0,
                data_version: None,
            }),
            changed: Condvar::new(),
            arriving: AtomicUsize::new(0),
            owner: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            reader,
            pending: Mutex::new(Pending::default()),
            known: Mutex::new(Known::default()),
        })
    }

    /// Batches committed and the ticks they held, since the store was opened (see *Group
    /// commit*).
    pub fn commit_stats(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.ticks.load(Ordering::Relaxed),
        )
    }

    /// Run `job` as one tick of a batch (see *Group commit*): in a savepoint of the open
    /// batch, or of a new one this caller begins and commits. Returns once the batch has
    /// committed, with `job`'s result; `job`'s error (or panic) rolls back its savepoint only.
    fn batched<R>(
        &self,
        job: &mut dyn FnMut(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let me = thread_id();
        if self.owner.load(Ordering::Acquire) == me {
            return Err(StoreError::Reentrant);
        }
        self.arriving.fetch_add(1, Ordering::SeqCst);
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        self.arriving.fetch_sub(1, Ordering::SeqCst);
        // A full batch commits first; no batch starts while an operation waits to run alone.
        while (g.open && g.jobs >= MAX_BATCH) || (!g.open && g.alone_waiting > 0) {
            g = self.changed.wait(g).unwrap_or_else(PoisonError::into_inner);
        }
        let leader = !g.open;
        let began = std::time::Instant::now();
        let busy = g
            .last_end
            .is_some_and(|end| began.saturating_duration_since(end) < BUSY_GAP);
        if leader {
            if !g.conn.is_autocommit() {
                // Defensive: never run on inside a transaction someone left open.
                let _ = g.conn.execute_batch("ROLLBACK");
            }
            g.conn.execute_batch("BEGIN IMMEDIATE")?;
            g.open = true;
            g.number += 1;
            g.jobs = 0;
            g.kept = 0;
        }
        let number = g.number;
        g.jobs += 1;

        self.owner.store(me, Ordering::Release);
        let outcome = catch_unwind(AssertUnwindSafe(|| in_savepoint(&g.conn, &mut *job)));
        self.owner.store(0, Ordering::Release);
        if matches!(outcome, Ok(Ok(_))) {
            g.kept += 1;
        }

        if !leader {
            self.changed.notify_all();
            let value = match outcome {
                Err(panic) => {
                    drop(g);
                    resume_unwind(panic);
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(value)) => value,
            };
            while g.ended < number {
                g = self.changed.wait(g).unwrap_or_else(PoisonError::into_inner);
            }
            return match &g.failed {
                Some((n, message)) if *n == number => Err(StoreError::Database(format!(
                    "committing the batch failed: {message}"
                ))),
                _ => Ok(value),
            };
        }

        // The first caller: let those already on their way join, then commit for all.
        while self.arriving.load(Ordering::SeqCst) > 0 && g.jobs < MAX_BATCH {
            let (next, waited) = self
                .changed
                .wait_timeout(g, JOIN_WAIT)
                .unwrap_or_else(PoisonError::into_inner);
            g = next;
            if waited.timed_out() {
                break;
            }
        }
        // Under load, a little longer: the ticks about to finish share this commit.
        if busy {
            let until = began + COMMIT_DELAY;
            while g.jobs < MAX_BATCH {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                let (next, _) = self
                    .changed
                    .wait_timeout(g, left)
                    .unwrap_or_else(PoisonError::into_inner);
                g = next;
            }
        }
        let committed = g.conn.execute_batch("COMMIT");
        if committed.is_err() {
            let _ = g.conn.execute_batch("ROLLBACK");
        }
        g.open = false;
        g.last_end = Some(std::time::Instant::now());
        g.ended = number;
        g.failed = committed.as_ref().err().map(|e| (number, e.to_string()));
        if committed.is_ok() {
            self.batches.fetch_add(1, Ordering::Relaxed);
            self.ticks.fetch_add(g.kept as u64, Ordering::Relaxed);
        }
        if g.others_wrote() {
            self.forget_all();
        }
        self.changed.notify_all();
        drop(g);
        match outcome {
            Err(panic) => resume_unwind(panic),
            Ok(result) => {
                committed?;
                result
            }
        }
    }

    /// Forget what the quiet path knows of `monitors` (see [`crate::pending::Known`]).
    fn forget<'a>(&self, monitors: impl IntoIterator<Item = &'a str>) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        for monitor in monitors {
            known.forget(monitor);
        }
    }

    /// The `latest` rows of `monitor` (of every monitor when `None`), by monitor and location.
    fn read_latest(&self, monitor: Option<&str>) -> Result<Vec<ResultRow>, StoreError> {
        let conn = self.lock()?;
        // Two statements, so that the one of a monitor uses the index.
        let mut stmt = conn.prepare_cached(if monitor.is_some() {
            "SELECT monitor, location, at, ok, data, metrics FROM latest \
             WHERE monitor = ?1 ORDER BY location"
        } else {
            "SELECT monitor, location, at, ok, data, metrics FROM latest \
             ORDER BY monitor, location"
        })?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(monitor), |r| {
                let mut row = result_row(r)?;
                let metrics: String = lenient_text(r, 5)?;
                row.metrics = serde_json::from_str::<BTreeMap<String, f64>>(&metrics)
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                Ok(row)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn forget_all(&self) {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let conn = self.lock()?;
        Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Run the `DELETE` `sql` — whose last parameter is the chunk size, after `params` — one
    /// transaction per [`PRUNE_CHUNK`] rows until it deletes fewer; then a passive WAL
    /// checkpoint, so the log doesn't keep the deleted pages. Returns the rows deleted.
    fn delete_in_chunks(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<usize, StoreError> {
        let mut all: Vec<&dyn rusqlite::ToSql> = params.to_vec();
        let chunk = PRUNE_CHUNK as i64;
        all.push(&chunk);
        let mut deleted = 0;
        loop {
            let conn = self.lock()?;
            let n = conn.prepare_cached(sql)?.execute(all.as_slice())?;
            deleted += n;
            if n < PRUNE_CHUNK {
                if deleted > 0 {
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
                return Ok(deleted);
            }
        }
    }

    /// The connection, for an operation that runs alone: after the open batch (if any) has
    /// ended, and before the next begins.
    fn lock(&self) -> Result<Guard<'_>, StoreError> {
        let me = thread_id();
        if self.owner.load(Ordering::Acquire) == me {
            return Err(StoreError::Reentrant);
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.open {
            inner.alone_waiting += 1;
            while inner.open {
                inner = self
                    .changed
                    .wait(inner)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            inner.alone_waiting -= 1;
        }
        if !inner.conn.is_autocommit() {
            // Defensive: never run on inside a transaction someone left open.
            let _ = inner.conn.execute_batch("ROLLBACK");
        }
        self.owner.store(me, Ordering::Release);
        Ok(Guard {
            inner,
            owner: &self.owner,
            changed: &self.changed,
        })
    }
}

/// The reads of a quiet tick, on the second connection.
struct Reader<'a>(MutexGuard<'a, Connection>);

impl QuietReads for Reader<'_> {
    fn state_and_latest_ok(
        &mut self,
        monitor: &str,
        location: &str,
    ) -> Result<(Option<String>, i64, bool), StoreError> {
        // One statement, one read transaction. A subquery, not a join: with the bundled
        // SQLite's STAT4, this join was prepared anew on every run (27 µs against 6).
        let mut stmt = self.0.prepare_cached(
            "SELECT state, version, \
                 (SELECT ok FROM latest WHERE monitor = ?1 AND location = ?2) \
             FROM monitor_state WHERE monitor = ?1",
        )?;
        let mut rows = stmt.query(params![monitor, location])?;
        let Some(row) = rows.next()? else {
            return Ok((None, 0, false));
        };
        let (state, version) = state_of(row, monitor)?;
        let ok = row.get::<_, Option<bool>>(2)?.unwrap_or(false);
        Ok((state, version, ok))
    }

    fn latest_ok(&mut self, monitor: &str, location: &str) -> Result<bool, StoreError> {
        Ok(self
            .0
            .prepare_cached("SELECT ok FROM latest WHERE monitor = ?1 AND location = ?2")?
            .query_row(params![monitor, location], |r| r.get::<_, bool>(0))
            .optional()?
            .unwrap_or(false))
    }

    fn state(&mut self, monitor: &str) -> Result<(Option<String>, i64), StoreError> {
        read_state(&self.0, monitor)
    }
}

impl Drop for SqliteStore {
    /// What quiet ticks left is written before the connection closes (best effort: a store
    /// that can't be written any more loses it, as a crash would).
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// `job` in a savepoint of the open transaction: released on success, rolled back on error
/// (and on a panic, which then goes on unwinding).
fn in_savepoint<R>(
    conn: &Connection,
    job: &mut dyn FnMut(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    conn.execute_batch("SAVEPOINT tick")?;
    let undo = |conn: &Connection| {
        let _ = conn.execute_batch("ROLLBACK TO tick; RELEASE tick");
    };
    match catch_unwind(AssertUnwindSafe(|| job(conn))) {
        Ok(Ok(value)) => match conn.execute_batch("RELEASE tick") {
            Ok(()) => Ok(value),
            Err(e) => {
                undo(conn);
                Err(e.into())
            }
        },
        Ok(Err(e)) => {
            undo(conn);
            Err(e)
        }
        Err(panic) => {
            undo(conn);
            resume_unwind(panic)
        }
    }
}

struct Guard<'a> {
    inner: MutexGuard<'a, Inner>,
    owner: &'a AtomicU64,
    changed: &'a Condvar,
}

impl Deref for Guard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.inner.conn
    }
}

impl DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.inner.conn
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.owner.store(0, Ordering::Release);
        // A batch may wait for this operation to finish.
        self.changed.notify_all();
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

/// A text column, read so that a damaged value (invalid UTF-8, a number where text belongs)
/// can't make a whole query fail: invalid UTF-8 is replaced, other types are shown as text.
fn lenient_text(r: &Row<'_>, index: usize) -> rusqlite::Result<String> {
    Ok(lenient_opt_text(r, index)?.unwrap_or_default())
}

fn lenient_opt_text(r: &Row<'_>, index: usize) -> rusqlite::Result<Option<String>> {
    Ok(match r.get_ref(index)? {
        ValueRef::Null => None,
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
    })
}

/// A count column as `u32`, clamped (a damaged row can't fail the query).
fn lenient_u32(r: &Row<'_>, index: usize) -> rusqlite::Result<u32> {
    let n: i64 = r.get(index)?;
    Ok(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
}

fn result_row(r: &Row<'_>) -> rusqlite::Result<ResultRow> {
    Ok(ResultRow {
        monitor: lenient_text(r, 0)?,
        location: lenient_text(r, 1)?,
        at: from_db(r.get(2)?),
        ok: r.get(3)?,
        data: lenient_text(r, 4)?,
        metrics: Vec::new(),
        summarize: Vec::new(),
    })
}

const OUTBOX_ENTRY_COLUMNS: &str = "id, idempotency_key, monitor, channel, payload, created_at, \
     next_attempt_at, attempts, last_error, leased_by, lease_until, delivered_at, gave_up_at, \
     incident, last_attempt_at, retried_ns";

fn outbox_entry(r: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: r.get(0)?,
        idempotency_key: lenient_text(r, 1)?,
        monitor: lenient_text(r, 2)?,
        channel: lenient_text(r, 3)?,
        payload: lenient_text(r, 4)?,
        created_at: from_db(r.get(5)?),
        next_attempt_at: from_db(r.get(6)?),
        attempts: lenient_u32(r, 7)?,
        last_error: lenient_opt_text(r, 8)?,
        leased_by: lenient_opt_text(r, 9)?,
        lease_until: opt_from_db(r.get(10)?),
        delivered_at: opt_from_db(r.get(11)?),
        gave_up_at: opt_from_db(r.get(12)?),
        incident: lenient_opt_text(r, 13)?,
        last_attempt_at: opt_from_db(r.get(14)?),
        retried: duration_from_db(r.get(15)?),
    })
}

/// The columns `outbox_item` reads, for `RETURNING`.
const OUTBOX_ITEM_COLUMNS: &str =
    "id, idempotency_key, channel, payload, created_at, attempts, last_error, incident, retried_ns";

fn outbox_item(r: &Row<'_>) -> rusqlite::Result<OutboxItem> {
    Ok(OutboxItem {
        id: r.get(0)?,
        idempotency_key: lenient_text(r, 1)?,
        channel: lenient_text(r, 2)?,
        payload: lenient_text(r, 3)?,
        created_at: from_db(r.get(4)?),
        attempts: lenient_u32(r, 5)?,
        last_error: lenient_opt_text(r, 6)?,
        incident: lenient_opt_text(r, 7)?,
        retried: duration_from_db(r.get(8)?),
    })
}

fn incident(r: &Row<'_>) -> rusqlite::Result<Incident> {
    Ok(Incident {
        id: lenient_text(r, 0)?,
        monitor: lenient_text(r, 1)?,
        opened_at: from_db(r.get(2)?),
        reason: lenient_text(r, 3)?,
        closed_at: opt_from_db(r.get(4)?),
    })
}

/// The condition under which a worker may finish an item: leased to it, lease not released,
/// not finished. `?1` is the id, `?2` the worker.
const OURS: &str = "id = ?1 AND leased_by = ?2 AND lease_until IS NOT NULL \
                    AND delivered_at IS NULL AND gave_up_at IS NULL";

/// Claimable items due by `next_attempt_at` (`?1` now, `?3` now + MAX_LEASE; `?2` is unused
/// here), oldest due first. Uses `outbox_due`.
const DUE_SQL: &str = "SELECT id, incident, channel, last_attempt_at, retried_ns FROM outbox \
     WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= ?1 \
       AND (lease_until IS NULL OR lease_until <= ?1 OR lease_until > ?3) \
     ORDER BY next_attempt_at, id";

/// Claimable items not due by `next_attempt_at` but whose last attempt (or creation) lies more
/// than CLOCK_BACK_TOLERANCE (`?2` = now + tolerance) in the future: the clock went back.
/// Uses `outbox_clock_back`: the unary `+`s keep SQLite from walking `outbox_due` instead,
/// which holds every item waiting for a retry, while this finds almost always nothing.
const CLOCK_BACK_SQL: &str = "SELECT id, incident, channel, last_attempt_at, retried_ns \
     FROM outbox \
     WHERE delivered_at IS NULL AND gave_up_at IS NULL AND +next_attempt_at > ?1 \
       AND coalesce(last_attempt_at, created_at) > ?2 \
       AND (lease_until IS NULL OR lease_until <= ?1 OR lease_until > ?3) \
     ORDER BY +next_attempt_at, id";

/// The unfinished items of incident `?1` and channel `?2` before id `?3`, in id order, each
/// with whether it is claimable now (`?4` now, `?5` now + tolerance, `?6` now + MAX_LEASE).
/// Uses `outbox_order`.
const EARLIER_SQL: &str = "SELECT id, incident, channel, last_attempt_at, retried_ns, \
         (next_attempt_at <= ?4 OR coalesce(last_attempt_at, created_at) > ?5) \
         AND (lease_until IS NULL OR lease_until <= ?4 OR lease_until > ?6) \
     FROM outbox \
     WHERE incident = ?1 AND channel = ?2 AND id < ?3 \
       AND delivered_at IS NULL AND gave_up_at IS NULL \
     ORDER BY id";

/// Uses `outbox_undelivered`: one index step.
const OLDEST_SQL: &str = "SELECT id, channel, monitor, created_at, attempts, last_error \
     FROM outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL \
     ORDER BY created_at, id LIMIT 1";

fn candidate(r: &Row<'_>) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        id: r.get(0)?,
        incident: lenient_opt_text(r, 1)?,
        channel: lenient_text(r, 2)?,
        last_attempt_at: r.get(3)?,
        retried_ns: r.get(4)?,
    })
}

/// Picks the items `claim_due` leases (see [`shared::select_claims`]).
fn select_claims(
    conn: &Connection,
    times: ClaimTimes,
    limit: usize,
) -> Result<Vec<Candidate>, StoreError> {
    let ClaimTimes {
        now,
        clock_back,
        lease_cap,
    } = times;
    let mut scan = |kind: Scan,
                    visit: &mut dyn FnMut(Candidate) -> Result<bool, StoreError>|
     -> Result<(), StoreError> {
        let sql = match kind {
            Scan::Due => DUE_SQL,
            Scan::ClockBack => CLOCK_BACK_SQL,
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![now, clock_back, lease_cap])?;
        while let Some(row) = rows.next()? {
            if !visit(candidate(row)?)? {
                break;
            }
        }
        Ok(())
    };
    let mut earlier = |item: &Candidate| -> Result<Vec<(Candidate, bool)>, StoreError> {
        let mut stmt = conn.prepare_cached(EARLIER_SQL)?;
        let mut rows = stmt.query(params![
            item.incident,
            item.channel,
            item.id,
            now,
            clock_back,
            lease_cap
        ])?;
        let mut before = Vec::new();
        while let Some(row) = rows.next()? {
            let claimable = row.get::<_, bool>(5)?;
            before.push((candidate(row)?, claimable));
            if !claimable {
                break;
            }
        }
        Ok(before)
    };
    shared::select_claims(limit, &mut scan, &mut earlier)
}

/// Reads `monitor`'s state and version inside the write transaction. A state that is not text
/// is [`StoreError::UnreadableState`]; any text, JSON or not, is returned as it is.
fn read_state(conn: &Connection, monitor: &str) -> Result<(Option<String>, i64), StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT state, version FROM monitor_state WHERE monitor = ?1")?;
    let mut rows = stmt.query([monitor])?;
    let Some(row) = rows.next()? else {
        return Ok((None, 0));
    };
    state_of(row, monitor)
}

/// The state and version in columns 0 and 1 of `row` (see [`read_state`]).
fn state_of(row: &Row<'_>, monitor: &str) -> Result<(Option<String>, i64), StoreError> {
    let unreadable = |message: String| StoreError::UnreadableState {
        monitor: monitor.to_string(),
        message,
    };
    let state = match row.get_ref(0)? {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => String::from_utf8(bytes.to_vec())
            .map_err(|e| unreadable(format!("it is not valid UTF-8 ({})", e.utf8_error())))?,
        other => {
            return Err(unreadable(format!(
                "it is stored as {} instead of text",
                other.data_type()
            )));
        }
    };
    let version = match row.get_ref(1)? {
        ValueRef::Integer(version) => version,
        other => {
            return Err(unreadable(format!(
                "its version is stored as {} instead of an integer",
                other.data_type()
            )));
        }
    };
    Ok((Some(state), version))
}

/// A location's latest result, unless a newer one is stored.
const LATEST_UPSERT: &str = "INSERT INTO latest (monitor, location, at, ok, data, metrics) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (monitor, location) DO UPDATE SET \
         at = excluded.at, ok = excluded.ok, data = excluded.data, metrics = excluded.metrics \
     WHERE excluded.at >= latest.at";

/// A rollup's metrics document.
const ROLLUP_READ: &str = "SELECT metrics FROM rollups \
     WHERE monitor = ?1 AND location = ?2 AND step = ?3 AND bucket = ?4";

/// Write `rows`: each becomes its location's latest result and is counted in its minute's
/// and its hour's rollup; the full row is kept in `results` only when it failed or is the
/// first pass after a failure (what a person looks back at).
fn insert_results(conn: &Connection, rows: &[ResultRow], ats: &[i64]) -> Result<(), StoreError> {
    let mut previous =
        conn.prepare_cached("SELECT ok, at FROM latest WHERE monitor = ?1 AND location = ?2")?;
    let mut latest = conn.prepare_cached(LATEST_UPSERT)?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO results (monitor, location, at, ok, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (row, at) in rows.iter().zip(ats) {
        let before: Option<(bool, i64)> = previous
            .query_row(params![row.monitor, row.location], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let recovered = matches!(before, Some((false, _)));
        if !row.ok || recovered {
            insert.execute(params![row.monitor, row.location, at, row.ok, row.data])?;
        }
        latest.execute(params![
            row.monitor,
            row.location,
            at,
            row.ok,
            row.data,
            latest_metrics(row)
        ])?;
        for step in Step::ALL {
            add_to_rollup(conn, row, *at, step)?;
        }
    }
    Ok(())
}

/// Count `row` in its `step` rollup.
fn add_to_rollup(
    conn: &Connection,
    row: &ResultRow,
    at: i64,
    step: Step,
) -> Result<(), StoreError> {
    let bucket = bucket_of(at, step);
    let mut read = conn.prepare_cached(ROLLUP_READ)?;
    let stored: Option<String> = read
        .query_row(
            params![row.monitor, row.location, step.seconds(), bucket],
            |r| r.get(0),
        )
        .optional()?;
    let metrics = merge_rollup_metrics(stored.as_deref(), row)?;
    let mut write = conn.prepare_cached(
        "INSERT INTO rollups (monitor, location, step, bucket, checks, failures, metrics) \
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6) \
         ON CONFLICT (monitor, location, step, bucket) DO UPDATE SET \
             checks = checks + 1, failures = failures + excluded.failures, \
             metrics = excluded.metrics",
    )?;
    write.execute(params![
        row.monitor,
        row.location,
        step.seconds(),
        bucket,
        i64::from(!row.ok),
        metrics
    ])?;
    Ok(())
}

/// The transition's writes, checked first: nothing is written unless all of it is valid.
fn write_transition(
    conn: &Connection,
    monitor: &str,
    version: i64,
    transition: &Transition,
) -> Result<TransitionOutcome, StoreError> {
    let CheckedTransition {
        created,
        incident_at: incident,
    } = check_transition(monitor, transition)?;

    conn.prepare_cached(
        "INSERT INTO monitor_state (monitor, state, version) VALUES (?1, ?2, ?3) \
         ON CONFLICT (monitor) DO UPDATE SET state = excluded.state, version = excluded.version",
    )?
    .execute(params![monitor, transition.state, version])?;

    let mut inserted = 0;
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO outbox \
             (idempotency_key, monitor, channel, payload, created_at, next_attempt_at, incident) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6) ON CONFLICT (idempotency_key) DO NOTHING",
        )?;
        for (n, created_at) in transition.notifications.iter().zip(created) {
            inserted += insert.execute(params![
                n.idempotency_key,
                monitor,
                n.channel,
                n.payload,
                created_at,
                n.incident
            ])?;
        }
    }

    let incident_applied = match (&transition.incident, incident) {
        (Some(IncidentChange::Open { id, reason, .. }), Some(opened_at)) => {
            conn.prepare_cached(
                "INSERT INTO incidents (id, monitor, opened_at, reason) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![id, monitor, opened_at, reason])?
                == 1
        }
        (Some(IncidentChange::Close { id, .. }), Some(closed_at)) => {
            conn.prepare_cached(
                "UPDATE incidents SET closed_at = ?3 \
                 WHERE id = ?1 AND monitor = ?2 AND closed_at IS NULL",
            )?
            .execute(params![id, monitor, closed_at])?
                == 1
        }
        _ => false,
    };

    Ok(TransitionOutcome {
        version,
        notifications_inserted: inserted,
        notifications_ignored: transition.notifications.len() - inserted,
        incident_applied,
    })
}

impl SqliteStore {
    /// One transaction with what quiet ticks left (see [`Store::flush`]), synced the cheaper
    /// way (`synchronous = NORMAL`: the log is synced at the next full commit or checkpoint).
    /// `missed` gets the monitors whose state another write changed meanwhile (their quiet
    /// state is dropped).
    fn write_pending(
        &self,
        pending: &Pending,
        missed: &mut Vec<String>,
    ) -> Result<usize, StoreError> {
        let mut conn = self.lock()?;
        let written = with_normal_sync(&mut conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut n = 0;
            {
                let mut state = tx.prepare_cached(
                    "UPDATE monitor_state SET state = ?2 WHERE monitor = ?1 AND version = ?3",
                )?;
                for (monitor, version, json) in pending.states() {
                    let changed = state.execute(params![monitor, json, version])?;
                    if changed == 0 {
                        missed.push(monitor.to_string());
                    }
                    n += changed;
                }
                let mut latest = tx.prepare_cached(LATEST_UPSERT)?;
                for waiting in pending.latest() {
                    let row = &waiting.row;
                    n += latest.execute(params![
                        row.monitor,
                        row.location,
                        waiting.at,
                        row.ok,
                        row.data,
                        latest_metrics(row)
                    ])?;
                }
                let mut read = tx.prepare_cached(ROLLUP_READ)?;
                let mut write = tx.prepare_cached(
                    "INSERT INTO rollups (monitor, location, step, bucket, checks, failures, metrics) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (monitor, location, step, bucket) DO UPDATE SET \
                         checks = checks + excluded.checks, \
                         failures = failures + excluded.failures, metrics = excluded.metrics",
                )?;
                for (monitor, location, step, bucket, delta) in pending.rollups() {
                    let stored: Option<String> = read
                        .query_row(params![monitor, location, step.seconds(), bucket], |r| {
                            r.get(0)
                        })
                        .optional()?;
                    let metrics = merge_rollup_delta(stored.as_deref(), &delta.metrics)?;
                    n += write.execute(params![
                        monitor,
                        location,
                        step.seconds(),
                        bucket,
                        delta.checks,
                        delta.failures,
                        metrics
                    ])?;
                }
            }
            tx.commit()?;
            Ok(n)
        });
        if conn.inner.others_wrote() {
            self.forget_all();
        }
        written
    }

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
        self.commit_tick(monitor, &[], decide)
    }

    fn commit_tick(
        &self,
        monitor: &str,
        results: &[ResultRow],
        decide: &mut dyn FnMut(Option<String>) -> Result<Transition, String>,
    ) -> Result<TransitionOutcome, StoreError> {
        let ats = check_tick(monitor, results)?;
        // Forgotten before (no quiet tick goes on from the old state while this one is
        // decided) and after (a quiet read that raced the commit is not kept).
        self.forget([monitor]);
        let outcome = self.batched(&mut |conn| {
            let (state, version) = read_state(conn, monitor)?;
            let state = pending::take_state(&self.pending, monitor, version).or(state);
            let version = next_version(monitor, version)?;
            let transition = decide(state).map_err(StoreError::Decide)?;
            insert_results(conn, results, &ats)?;
            write_transition(conn, monitor, version, &transition)
        });
        if outcome.is_ok() {
            pending::supersede_latest(&self.pending, results, &ats);
        }
        self.forget([monitor]);
        outcome
    }

    fn state(&self, monitor: &str) -> Result<Option<String>, StoreError> {
        let conn = self.lock()?;
        let (state, version) = read_state(&conn, monitor)?;
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(pending
            .state(monitor, version)
            .map(str::to_string)
            .or(state))
    }

    fn commit_quiet_tick(
        &self,
        monitor: &str,
        results: &[ResultRow],
        quiet: &mut dyn FnMut(Option<&str>) -> Option<String>,
    ) -> Result<Option<TransitionOutcome>, StoreError> {
        let Some(reader) = &self.reader else {
            return Ok(None);
        };
        let ats = check_tick(monitor, results)?;
        let mut reader = Reader(reader.lock().unwrap_or_else(PoisonError::into_inner));
        pending::quiet_tick(
            &self.pending,
            Some(&self.known),
            &mut reader,
            monitor,
            results,
            &ats,
            quiet,
        )
    }

    fn quiet_inline(&self) -> bool {
        self.reader.is_some()
    }

    fn flush(&self) -> Result<usize, StoreError> {
        let mut missed = Vec::new();
        let flushed = pending::flush(&self.pending, |waiting| {
            self.write_pending(waiting, &mut missed)
        });
        match flushed {
            Ok(_) => self.forget(missed.iter().map(String::as_str)),
            Err(_) => self.forget_all(),
        }
        flushed
    }

    fn record_results(&self, rows: &[ResultRow]) -> Result<usize, StoreError> {
        let ats = check_results(rows)?;
        self.forget(rows.iter().map(|r| r.monitor.as_str()));
        let written = self.batched(&mut |conn| insert_results(conn, rows, &ats));
        if written.is_ok() {
            pending::supersede_latest(&self.pending, rows, &ats);
        }
        self.forget(rows.iter().map(|r| r.monitor.as_str()));
        written.map(|()| rows.len())
    }

    fn latest_results(&self, monitor: &str) -> Result<Vec<ResultRow>, StoreError> {
        pending::flush_before_read(&self.pending, monitor, || self.flush())?;
        self.read_latest(Some(monitor))
    }

    fn all_latest_results(&self) -> Result<Vec<ResultRow>, StoreError> {
        self.flush()?;
        self.read_latest(None)
    }

    fn rollups(
        &self,
        monitor: &str,
        step: Step,
        since: DateTime<Utc>,
    ) -> Result<Vec<Rollup>, StoreError> {
        let since = bucket_of(to_db(since)?, step);
        pending::flush_before_read(&self.pending, monitor, || self.flush())?;
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(
            "SELECT location, bucket, checks, failures, metrics FROM rollups \
             WHERE monitor = ?1 AND step = ?2 AND bucket >= ?3 ORDER BY location, bucket",
        )?;
        let rows = stmt
            .query_map(params![monitor, step.seconds(), since], |r| {
                let metrics: String = lenient_text(r, 4)?;
                Ok(Rollup {
                    monitor: monitor.to_string(),
                    location: lenient_text(r, 0)?,
                    step,
                    bucket: from_db(r.get(1)?),
                    checks: r.get::<_, i64>(2)?.max(0) as u64,
                    failures: r.get::<_, i64>(3)?.max(0) as u64,
                    metrics: serde_json::from_str(&metrics).unwrap_or_default(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn prune_rollups(&self, step: Step, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        let before = to_db(older_than)?;
        self.delete_in_chunks(
            "DELETE FROM rollups WHERE (monitor, location, step, bucket) IN \
             (SELECT monitor, location, step, bucket FROM rollups \
              WHERE step = ?1 AND bucket < ?2 LIMIT ?3)",
            &[&step.seconds(), &before],
        )
    }

    fn prune(&self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        let before = to_db(older_than)?;
        let results = self.delete_in_chunks(
            "DELETE FROM results WHERE id IN (SELECT id FROM results WHERE at < ?1 LIMIT ?2)",
            &[&before],
        )?;
        let outbox = self.delete_in_chunks(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
             WHERE delivered_at < ?1 OR gave_up_at < ?1 LIMIT ?2)",
            &[&before],
        )?;
        // A location silent for longer than the retention (removed from the config) is gone.
        let latest = self.delete_in_chunks(
            "DELETE FROM latest WHERE (monitor, location) IN \
             (SELECT monitor, location FROM latest WHERE at < ?1 LIMIT ?2)",
            &[&before],
        )?;
        if latest > 0 {
            self.forget_all();
        }
        let observations = self.delete_in_chunks(PRUNE_OBSERVATIONS_SQL, &[&before])?;
        Ok(results + outbox + latest + observations)
    }

    fn claim_due(
        &self,
        now: DateTime<Utc>,
        worker_id: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        check_not_empty("worker id", worker_id)?;
        check_lease(lease)?;
        let until = to_db(add(now, lease)?)?;
        let times = ClaimTimes::new(to_db(now)?);
        if limit == 0 {
            return Ok(Vec::new());
        }

        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let selected = select_claims(&tx, times, limit)?;
        let mut claimed = Vec::with_capacity(selected.len());
        {
            let mut update = tx.prepare_cached(&format!(
                "UPDATE outbox SET leased_by = ?1, lease_until = ?2, \
                     attempts = CASE WHEN attempts < 4294967295 THEN attempts + 1 \
                                     ELSE 4294967295 END, \
                     last_attempt_at = ?3, retried_ns = ?4 \
                 WHERE id = ?5 RETURNING {OUTBOX_ITEM_COLUMNS}"
            ))?;
            for item in selected {
                let gap = item.last_attempt_at.map_or(0, |last| {
                    times
                        .now
                        .saturating_sub(last)
                        .clamp(0, nanos(RETRY_GAP_CAP))
                });
                let retried = item.retried_ns.max(0).saturating_add(gap);
                claimed.push(update.query_row(
                    params![worker_id, until, times.now, retried, item.id],
                    outbox_item,
                )?);
            }
        }
        tx.commit()?;
        Ok(claimed)
    }

    fn extend_lease(
        &self,
        ids: &[i64],
        worker_id: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<usize, StoreError> {
        check_not_empty("worker id", worker_id)?;
        check_lease(lease)?;
        let until = to_db(add(now, lease)?)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: BTreeSet<i64> = ids.iter().copied().collect();
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut extended = 0;
        {
            let mut update =
                tx.prepare_cached(&format!("UPDATE outbox SET lease_until = ?3 WHERE {OURS}"))?;
            for id in ids {
                extended += update.execute(params![id, worker_id, until])?;
            }
        }
        tx.commit()?;
        Ok(extended)
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

    fn next_wake(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let now_ns = to_db(now)?;
        let tolerance = nanos(CLOCK_BACK_TOLERANCE);
        let conn = self.lock()?;
        let next: Option<i64> = conn
            .prepare_cached(
                "SELECT min(CASE \
                     WHEN coalesce(last_attempt_at, created_at) > ?1 + ?2 THEN ?1 \
                     WHEN lease_until IS NOT NULL AND lease_until > ?1 \
                         THEN max(lease_until, next_attempt_at) \
                     ELSE next_attempt_at END) \
                 FROM outbox o WHERE delivered_at IS NULL AND gave_up_at IS NULL \
                 AND (incident IS NULL OR NOT EXISTS ( \
                     SELECT 1 FROM outbox e WHERE e.incident = o.incident \
                     AND e.channel = o.channel AND e.id < o.id \
                     AND e.delivered_at IS NULL AND e.gave_up_at IS NULL))",
            )?
            .query_row(params![now_ns, tolerance], |r| r.get(0))?;
        Ok(next.map(from_db))
    }

    fn oldest_undelivered(&self) -> Result<Option<PendingInfo>, StoreError> {
        let conn = self.lock()?;
        Ok(conn
            .prepare_cached(OLDEST_SQL)?
            .query_row([], |r| {
                Ok(PendingInfo {
                    id: r.get(0)?,
                    channel: lenient_text(r, 1)?,
                    monitor: lenient_text(r, 2)?,
                    created_at: from_db(r.get(3)?),
                    attempts: lenient_u32(r, 4)?,
                    last_error: lenient_opt_text(r, 5)?,
                })
            })
            .optional()?)
    }

    fn list_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {OUTBOX_ENTRY_COLUMNS} FROM outbox ORDER BY id"
        ))?;
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

    fn claim_fired(
        &self,
        now: DateTime<Utc>,
        fired: &[(String, DateTime<Utc>)],
    ) -> Result<Vec<String>, StoreError> {
        let limit = future_limit(now)?;
        let fired = fired_input(fired)?;
        if fired.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.lock()?;
        // Without a sync of its own: the checks it starts wait for none, and the log is synced
        // by the next full commit (their tick's). A claim lost to a power cut before that only
        // lets the monitor run once more; a process crash loses nothing (WAL).
        with_normal_sync(&mut conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut claimed = Vec::new();
            {
                let mut upsert = tx.prepare_cached(CLAIM_FIRED)?;
                for (monitor, at) in &fired {
                    let won = upsert
                        .query_row(params![monitor, at, limit], |r| r.get::<_, String>(0))
                        .optional()?;
                    claimed.extend(won);
                }
            }
            tx.commit()?;
            Ok(claimed)
        })
    }

    fn fired_at(&self, monitor: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = self.lock()?;
        let at: Option<i64> = conn
            .prepare_cached("SELECT fired_at FROM schedule_runs WHERE monitor = ?1")?
            .query_row([monitor], |r| r.get(0))
            .optional()?;
        Ok(at.map(from_db))
    }

    fn record_observations(
        &self,
        rows: &[ObservationRow],
        received_at: DateTime<Utc>,
    ) -> Result<ObservationsRecorded, StoreError> {
        let CheckedObservations { times, locations } = check_observations(rows)?;
        let received = to_db(received_at)?;
        if rows.is_empty() {
            return Ok(ObservationsRecorded {
                stored: 0,
                duplicates: 0,
            });
        }
        let stored = self.batched(&mut |conn| {
            let mut insert = conn.prepare_cached(
                "INSERT INTO observations (monitor, slot, location, at, ok, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            )?;
            let mut stored = 0;
            for (row, (slot, at)) in rows.iter().zip(&times) {
                stored += insert.execute(params![
                    row.monitor,
                    slot,
                    row.location,
                    at,
                    row.ok,
                    row.data
                ])?;
            }
            let mut report = conn.prepare_cached(
                "INSERT INTO location_reports (location, last_report_at) VALUES (?1, ?2) \
                 ON CONFLICT (location) DO UPDATE SET \
                     last_report_at = max(last_report_at, excluded.last_report_at)",
            )?;
            for location in &locations {
                report.execute(params![location, received])?;
            }
            Ok(stored)
        })?;
        Ok(ObservationsRecorded {
            stored,
            duplicates: rows.len() - stored,
        })
    }

    fn observations(
        &self,
        monitor: &str,
        slot: DateTime<Utc>,
    ) -> Result<Vec<ObservationRow>, StoreError> {
        let slot = to_db(slot)?;
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(OBSERVATIONS_SQL)?;
        let rows = stmt
            .query_map(params![monitor, slot], |r| {
                Ok(ObservationRow {
                    monitor: lenient_text(r, 0)?,
                    location: lenient_text(r, 1)?,
                    slot: from_db(r.get(2)?),
                    at: from_db(r.get(3)?),
                    ok: r.get(4)?,
                    data: lenient_text(r, 5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn observation_count(&self, location: Option<&str>) -> Result<u64, StoreError> {
        let conn = self.lock()?;
        let n: i64 = conn
            .prepare_cached(if location.is_some() {
                COUNT_OF_LOCATION_SQL
            } else {
                "SELECT count(*) FROM observations"
            })?
            .query_row(rusqlite::params_from_iter(location), |r| r.get(0))?;
        Ok(to_count(n)? as u64)
    }

    fn location_reports(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(
            "SELECT location, last_report_at FROM location_reports ORDER BY location",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((lenient_text(r, 0)?, from_db(r.get(1)?))))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn claim_shards(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Vec<u32>, StoreError> {
        check_not_empty("holder", holder)?;
        check_lease(ttl)?;
        let until = to_db(add(now, ttl)?)?;
        let times = ClaimTimes::new(to_db(now)?);
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("DELETE FROM shard_holders WHERE until <= ?1 OR until > ?2")?
            .execute(params![times.now, times.lease_cap])?;
        tx.prepare_cached(
            "INSERT INTO shard_holders (holder, until) VALUES (?1, ?2) \
             ON CONFLICT (holder) DO UPDATE SET until = excluded.until",
        )?
        .execute(params![holder, until])?;
        let others = tx
            .prepare_cached(LIVE_HOLDERS_SQL)?
            .query_map(params![times.now, times.lease_cap], |r| lenient_text(r, 0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let leases = tx
            .prepare_cached("SELECT shard, holder, until FROM shard_leases")?
            .query_map([], |r| Ok((r.get(0)?, lenient_opt_text(r, 1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let plan = plan_shards(holder, &others, &leases, times);
        {
            let mut release = tx.prepare_cached(
                "UPDATE shard_leases SET holder = NULL, until = NULL WHERE shard = ?1",
            )?;
            for shard in &plan.released {
                release.execute([shard])?;
            }
            let mut take = tx.prepare_cached(
                "INSERT INTO shard_leases (shard, holder, until) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (shard) DO UPDATE SET holder = excluded.holder, until = excluded.until",
            )?;
            for shard in &plan.held {
                take.execute(params![shard, holder, until])?;
            }
        }
        tx.commit()?;
        Ok(plan.held)
    }

    fn release_shards(&self, holder: &str) -> Result<(), StoreError> {
        check_not_empty("holder", holder)?;
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM shard_holders WHERE holder = ?1", [holder])?;
        tx.execute(
            "UPDATE shard_leases SET holder = NULL, until = NULL WHERE holder = ?1",
            [holder],
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// Every location's observation of one slot: a range of the primary key, in location order.
const OBSERVATIONS_SQL: &str = "SELECT monitor, location, slot, at, ok, data FROM observations \
     WHERE monitor = ?1 AND slot = ?2 ORDER BY location";

/// Observations of slots before `?1`, a chunk of `?2`. Uses `observations_slot`.
const PRUNE_OBSERVATIONS_SQL: &str = "DELETE FROM observations WHERE rowid IN \
     (SELECT rowid FROM observations WHERE slot < ?1 LIMIT ?2)";

/// Uses `observations_location`.
const COUNT_OF_LOCATION_SQL: &str = "SELECT count(*) FROM observations WHERE location = ?1";

/// The holders whose presence or a shard lease is live: ending after `?1` (now) and at most at
/// `?2` (now + MAX_LEASE).
const LIVE_HOLDERS_SQL: &str = "SELECT holder FROM shard_holders WHERE until > ?1 AND until <= ?2 \
     UNION SELECT holder FROM shard_leases WHERE until > ?1 AND until <= ?2 AND holder IS NOT NULL";

/// Run `write` with `synchronous = NORMAL` (its commit appends to the log without syncing it;
/// the next full commit or checkpoint syncs it), then back to `FULL`.
fn with_normal_sync<T>(
    conn: &mut Connection,
    write: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let written = write(conn);
    let restored = conn.pragma_update(None, "synchronous", "FULL");
    let value = written?;
    restored?;
    Ok(value)
}

/// One monitor's claim of a fire time: inserted, or moved forward when the stored one is
/// earlier (or back when the stored one lies in the future: the clock went back); the monitor
/// is returned only then.
const CLAIM_FIRED: &str = "INSERT INTO schedule_runs (monitor, fired_at) VALUES (?1, ?2) \
     ON CONFLICT (monitor) DO UPDATE SET fired_at = excluded.fired_at \
     WHERE schedule_runs.fired_at < excluded.fired_at OR schedule_runs.fired_at > ?3 \
     RETURNING monitor";

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan of `sql`, one detail line per step.
    fn plan(conn: &Connection, sql: &str, params: &[&dyn rusqlite::ToSql]) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(params, |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        rows.join("\n")
    }

    #[test]
    fn the_outbox_queries_use_their_indexes() {
        let store = SqliteStore::open("sqlite::memory:").unwrap();
        let conn = store.lock().unwrap();
        let (a, b, c) = (1_i64, 2_i64, 3_i64);

        let oldest = plan(&conn, OLDEST_SQL, &[]);
        assert!(oldest.contains("outbox_undelivered"), "{oldest}");
        assert!(!oldest.contains("TEMP B-TREE"), "{oldest}");

        let due = plan(&conn, DUE_SQL, &[&a, &b, &c]);
        assert!(due.contains("outbox_due"), "{due}");
        assert!(!due.contains("TEMP B-TREE"), "{due}");

        let back = plan(&conn, CLOCK_BACK_SQL, &[&a, &b, &c]);
        assert!(back.contains("outbox_clock_back"), "{back}");

        let earlier = plan(&conn, EARLIER_SQL, &[&"i", &"ops", &a, &a, &b, &c]);
        assert!(earlier.contains("outbox_order"), "{earlier}");
        assert!(!earlier.contains("TEMP B-TREE"), "{earlier}");
    }

    #[test]
    fn the_observation_queries_use_their_keys() {
        let store = SqliteStore::open("sqlite::memory:").unwrap();
        let conn = store.lock().unwrap();
        let slot = plan(&conn, OBSERVATIONS_SQL, &[&"api", &1_i64]);
        assert!(
            slot.contains("sqlite_autoindex_observations_1 (monitor=? AND slot=?)"),
            "{slot}"
        );
        assert!(!slot.contains("TEMP B-TREE"), "{slot}");
        let count = plan(&conn, COUNT_OF_LOCATION_SQL, &[&"gz"]);
        assert!(count.contains("observations_location"), "{count}");
        let old = plan(&conn, PRUNE_OBSERVATIONS_SQL, &[&1_i64, &2_i64]);
        assert!(old.contains("observations_slot"), "{old}");
    }
}
