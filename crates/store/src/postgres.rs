//! [`PgStore`]: the [`Store`] on a PostgreSQL database.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::config::{Host, SslMode};
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::pending::{self, Pending, QuietReads};
use crate::shared::{
    self, Candidate, CheckedObservations, CheckedTransition, ClaimTimes, Lease, Scan, bucket_of,
    check_lease, check_not_empty, check_observations, check_results, check_tick, check_transition,
    fired_input, future_limit, latest_metrics, merge_rollup_delta, merge_rollup_metrics,
    next_version, plan_shards, to_count,
};
use crate::time::{add, duration_from_db, from_db, nanos, opt_from_db, to_db};
use crate::url::redact_url;
use crate::{
    CLOCK_BACK_TOLERANCE, Incident, IncidentChange, ObservationRow, ObservationsRecorded,
    OutboxEntry, OutboxItem, PendingInfo, RETRY_GAP_CAP, ResultRow, Rollup, Step, Store,
    StoreError, Transition, TransitionOutcome,
};

/// The PostgreSQL migrations, in order; migration `i` (0-based) brings the database to schema
/// version `i + 1` (the `watchpost_schema` table). Append new ones; never edit one that has
/// shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_initial.sql"),
    include_str!("../migrations/postgres/0002_schedule_runs.sql"),
    include_str!("../migrations/postgres/0003_observations_and_shards.sql"),
];

/// The PostgreSQL schema version this build writes (the `watchpost_schema` table). The two
/// backends number their schemas independently.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock key the migration holds (for its transaction), so that processes opening
/// the same database at once migrate it once.
const MIGRATION_LOCK: i64 = 0x7761_7463_6870_6f73; // "watchpos"

/// The advisory lock key [`Store::claim_shards`] and [`Store::release_shards`] hold (for their
/// transaction): they run one at a time, each seeing the leases the previous one wrote.
const SHARD_LOCK: i64 = 0x7770_7368_6172_6473; // "wpshards"

/// Connections per store.
pub const POOL_SIZE: usize = 4;

/// How long connecting may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often `record_results` runs again after PostgreSQL broke a deadlock by aborting it
/// (two batches locking the same rollups in different orders).
const DEADLOCK_RETRIES: usize = 3;

/// Rows deleted per statement by retention.
const PRUNE_CHUNK: i64 = 5_000;

/// Rows `claim_due` reads (and locks) per page of a scan, at most: twice its limit, at least
/// 16, so that a small claim doesn't lock rows a concurrent claim could take.
const SCAN_PAGE: i64 = 256;

/// The store on a PostgreSQL database, opened with a `postgres://` or `postgresql://` URL.
///
/// Up to [`POOL_SIZE`] connections, each used by one caller at a time: a caller takes a free
/// one (connecting it if it was never used, or if it broke) or waits for one. Several stores —
/// in one process or several — may use the same database; every method is one transaction
/// (retention: one per chunk), and the semantics are those of the SQLite backend:
///
/// - transitions of one monitor are serialized by a lock on its `monitor_state` row (a first
///   transition inserts the row, then every transition locks it with `SELECT … FOR UPDATE`),
///   and `decide` runs inside the transaction;
/// - `claim_due` locks the rows it looks at with `FOR UPDATE SKIP LOCKED`, so concurrent
///   claims never wait for each other nor share an item; an earlier item of the same incident
///   and channel that another transaction holds counts as not claimable (the delivery order
///   holds);
/// - rollups are read and written under a row lock, so concurrent ticks lose no count;
/// - observations are inserted in key order (concurrent batches wait for each other's keys
///   without deadlocking), and shard leases change under one advisory transaction lock.
///
/// # TLS
///
/// Chosen by the URL's `sslmode`:
///
/// - `disable`: plaintext;
/// - `require`, `verify-ca`, `verify-full`: TLS through rustls, the server's certificate
///   verified against the webpki roots and its name checked (all three verify: there is no
///   unverified TLS);
/// - `prefer`, `allow` or no `sslmode`: plaintext when every host is local (a Unix socket,
///   `localhost`, 127.0.0.0/8 or ::1), otherwise as `require`. A remote server without TLS
///   needs an explicit `sslmode=disable`.
///
/// Other parameters (`connect_timeout`, `application_name`, `host=/run/postgresql`, ...) are
/// passed to the `postgres` crate. Errors show the URL through [`redact_url`] and never quote
/// the password.
///
/// Texts can't hold NUL characters in PostgreSQL: a monitor, channel, key or error containing
/// one is a [`StoreError::Database`].
pub struct PgStore {
    config: Config,
    tls: Option<MakeRustlsConnect>,
    slots: Vec<Slot>,
    /// Waited on for a free slot.
    freed: Condvar,
    waiting: Mutex<()>,
    /// The URL redacted, for errors.
    shown: String,
    password: Option<String>,
    /// What quiet ticks left for the next [`Store::flush`].
    pending: Mutex<Pending>,
}

struct Slot {
    client: Mutex<Option<Client>>,
    /// The id (see [`thread_id`]) of the thread using this slot, 0 when free; detects a store
    /// call from inside `decide`.
    owner: AtomicU64,
}

/// The blocking client closes its connection on drop by running a small runtime of its own,
/// which panics on a thread that drives an async runtime (the daemon drops its store there
/// when it stops). Close the connections on a thread of their own instead.
impl Drop for PgStore {
    fn drop(&mut self) {
        // What quiet ticks left first (best effort), on a thread of its own for the reason
        // above.
        if !self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
        {
            let this: &PgStore = self;
            std::thread::scope(|scope| {
                let _ = scope.spawn(|| this.flush()).join();
            });
        }
        let clients: Vec<Client> = self
            .slots
            .iter()
            .filter_map(|slot| {
                slot.client
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
            })
            .collect();
        if clients.is_empty() {
            return;
        }
        let _ = std::thread::spawn(move || drop(clients)).join();
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

/// A URL's connection settings: the `postgres` crate's config and the TLS to use.
pub(crate) struct Settings {
    config: Config,
    tls: bool,
    password: Option<String>,
}

fn unsupported(url: &str, reason: impl Into<String>) -> StoreError {
    StoreError::UnsupportedUrl {
        url: redact_url(url),
        reason: reason.into(),
    }
}

/// Whether `url` names a PostgreSQL database.
pub(crate) fn is_postgres_url(url: &str) -> bool {
    let lower = url.get(..13).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Parses a `postgres://` URL and decides its TLS (see [`PgStore`]), without connecting.
pub(crate) fn parse(url: &str) -> Result<Settings, StoreError> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    if base.contains('#') || query.is_some_and(|q| q.contains('#')) {
        return Err(unsupported(url, "fragments (#…) are not supported"));
    }
    let mut sslmode: Option<String> = None;
    let mut kept = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => sslmode = Some(value.to_ascii_lowercase()),
            _ => kept.push(pair),
        }
    }
    let rebuilt = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config = Config::from_str(&rebuilt).map_err(|e| {
        // The parser's message names a parameter, never a value.
        unsupported(url, format!("not a valid PostgreSQL URL: {e}"))
    })?;
    let local = !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(|host| match host {
            Host::Tcp(name) => {
                name.eq_ignore_ascii_case("localhost")
                    || name
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            #[cfg(unix)]
            Host::Unix(_) => true,
        })
        && config.get_hostaddrs().iter().all(IpAddr::is_loopback);
    let tls = match sslmode.as_deref() {
        Some("disable") => false,
        Some("require" | "verify-ca" | "verify-full") => true,
        None | Some("prefer" | "allow") => !local,
        Some(other) => {
            return Err(unsupported(
                url,
                format!(
                    "sslmode {other:?} is unknown: expected disable, prefer, require, verify-ca \
                     or verify-full"
                ),
            ));
        }
    };
    if config.get_connect_timeout().is_none() {
        // Not the OS's minutes-long TCP timeout when the server is unreachable.
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.ssl_mode(if tls {
        SslMode::Require
    } else {
        SslMode::Disable
    });
    let password = config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    Ok(Settings {
        config,
        tls,
        password,
    })
}

/// A database error as a [`StoreError`], with the server's message (the error's own
/// `Display` may say only "db error").
fn db(e: postgres::Error) -> StoreError {
    StoreError::Database(error_text(&e))
}

fn error_text(e: &postgres::Error) -> String {
    if let Some(server) = e.as_db_error() {
        return format!("{e}: {server}");
    }
    // The cause (an I/O error, a certificate rustls refused), which `Display` leaves out.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

impl PgStore {
    /// The `latest` rows of `monitor` (of every monitor when `None`), by monitor and location.
    fn read_latest(&self, monitor: Option<&str>) -> Result<Vec<ResultRow>, StoreError> {
        let mut conn = self.conn()?;
        let rows = match monitor {
            Some(monitor) => conn.query(
                "SELECT monitor, location, at, ok, data, metrics FROM latest \
                 WHERE monitor = $1 ORDER BY location",
                &[&monitor],
            ),
            None => conn.query(
                "SELECT monitor, location, at, ok, data, metrics FROM latest \
                 ORDER BY monitor, location",
                &[],
            ),
        }
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| ResultRow {
                monitor: r.get(0),
                location: r.get(1),
                at: from_db(r.get(2)),
                ok: r.get(3),
                data: r.get(4),
                metrics: serde_json::from_str::<BTreeMap<String, f64>>(r.get(5))
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                summarize: Vec::new(),
            })
            .collect())
    }

    /// Connects to the database named by `url` (`postgres://` or `postgresql://`) and applies
    /// the pending migrations, under an advisory lock so that processes opening it at once
    /// migrate it once. A database migrated by a newer build is [`StoreError::SchemaTooNew`].
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let settings = parse(url)?;
        let tls = if settings.tls {
            let config =
                watchpost_net::verified_config(&[], &[]).map_err(|e| StoreError::Open {
                    path: redact_url(url),
                    message: e.to_string(),
                })?;
            Some(MakeRustlsConnect::new(config))
        } else {
            None
        };
        let store = PgStore {
            config: settings.config,
            tls,
            slots: (0..POOL_SIZE)
                .map(|_| Slot {
                    client: Mutex::new(None),
                    owner: AtomicU64::new(0),
                })
                .collect(),
            freed: Condvar::new(),
            waiting: Mutex::new(()),
            shown: redact_url(url),
            password: settings.password,
            pending: Mutex::new(Pending::default()),
        };
        let mut client = store.connect()?;
        migrate(&mut client)?;
        *store.slots[0]
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(client);
        Ok(store)
    }

    /// The message of `e` without the password.
    fn redact(&self, message: String) -> String {
        match &self.password {
            Some(p) if p.len() >= 4 => message.replace(p.as_str(), "***"),
            _ => message,
        }
    }

    fn connect(&self) -> Result<Client, StoreError> {
        let connected = match &self.tls {
            None => self.config.connect(NoTls),
            Some(tls) => self.config.connect(tls.clone()),
        };
        connected.map_err(|e| StoreError::Open {
            path: self.shown.clone(),
            message: self.redact(error_text(&e)),
        })
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        let row = conn
            .query_one("SELECT version FROM watchpost_schema", &[])
            .map_err(db)?;
        Ok(row.get(0))
    }

    /// A connection for this caller: a free one, or the first to be freed.
    fn conn(&self) -> Result<Conn<'_>, StoreError> {
        let me = thread_id();
        if self
            .slots
            .iter()
            .any(|s| s.owner.load(Ordering::Acquire) == me)
        {
            return Err(StoreError::Reentrant);
        }
        loop {
            for slot in &self.slots {
                let client = match slot.client.try_lock() {
                    Ok(client) => client,
                    Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => continue,
                };
                slot.owner.store(me, Ordering::Release);
                let mut conn = Conn {
                    client: Some(client),
                    store: self,
                    slot,
                };
                let guard = conn.client.as_mut().expect("just set");
                if guard.as_ref().is_none_or(Client::is_closed) {
                    **guard = Some(self.connect()?);
                }
                return Ok(conn);
            }
            let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            // A slot freed between the scan and here signals no one: wait briefly, then scan.
            let _ = self
                .freed
                .wait_timeout(waiting, Duration::from_millis(20))
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Run the `DELETE` `sql`, whose last parameter is the chunk size, one statement per
    /// [`PRUNE_CHUNK`] rows until it deletes fewer. Returns the rows deleted.
    fn delete_in_chunks(&self, sql: &str, before: i64) -> Result<usize, StoreError> {
        let mut deleted = 0;
        loop {
            let mut conn = self.conn()?;
            let n = conn.execute(sql, &[&before, &PRUNE_CHUNK]).map_err(db)?;
            deleted += n as usize;
            if n < PRUNE_CHUNK as u64 {
                return Ok(deleted);
            }
        }
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
        let mut conn = self.conn()?;
        let sql = format!("UPDATE outbox SET {set}, lease_until = NULL WHERE {OURS}");
        let changed = match error {
            Some(error) => conn.execute(&sql, &[&id, &worker_id, &at, &error]),
            None => conn.execute(&sql, &[&id, &worker_id, &at]),
        }
        .map_err(db)?;
        if changed == 0 {
            return Err(StoreError::NotLeased {
                id,
                worker: worker_id.to_string(),
            });
        }
        Ok(())
    }
}

/// A connection taken from the pool; back on drop.
struct Conn<'a> {
    /// `None` only in `drop`.
    client: Option<MutexGuard<'a, Option<Client>>>,
    store: &'a PgStore,
    slot: &'a Slot,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client
            .as_ref()
            .and_then(|g| g.as_ref())
            .expect("a taken connection is connected")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .and_then(|g| g.as_mut())
            .expect("a taken connection is connected")
    }
}

impl QuietReads for Conn<'_> {
    fn state_and_latest_ok(
        &mut self,
        monitor: &str,
        location: &str,
    ) -> Result<(Option<String>, i64, bool), StoreError> {
        // One round trip.
        match self
            .query_opt(
                "SELECT s.state, s.version, l.ok FROM monitor_state s \
                 LEFT JOIN latest l ON l.monitor = s.monitor AND l.location = $2 \
                 WHERE s.monitor = $1",
                &[&monitor, &location],
            )
            .map_err(db)?
        {
            Some(row) => {
                let (state, version) = state_of(&row, monitor)?;
                Ok((
                    state,
                    version,
                    row.get::<_, Option<bool>>(2).unwrap_or(false),
                ))
            }
            None => Ok((None, 0, false)),
        }
    }

    fn latest_ok(&mut self, monitor: &str, location: &str) -> Result<bool, StoreError> {
        Ok(self
            .query_opt(
                "SELECT ok FROM latest WHERE monitor = $1 AND location = $2",
                &[&monitor, &location],
            )
            .map_err(db)?
            .is_some_and(|r| r.get::<_, bool>(0)))
    }

    fn state(&mut self, monitor: &str) -> Result<(Option<String>, i64), StoreError> {
        match self
            .query_opt(
                "SELECT state, version FROM monitor_state WHERE monitor = $1",
                &[&monitor],
            )
            .map_err(db)?
        {
            Some(row) => state_of(&row, monitor),
            None => Ok((None, 0)),
        }
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        self.client = None;
        self.slot.owner.store(0, Ordering::Release);
        let _waiting = self
            .store
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.store.freed.notify_one();
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

/// Brings the database to [`PG_SCHEMA_VERSION`], in one transaction holding an advisory lock.
fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let failed = |version: i64| {
        move |e: postgres::Error| StoreError::Migration {
            version,
            message: error_text(&e),
        }
    };
    let mut tx = client.transaction().map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(db)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS watchpost_schema (version BIGINT NOT NULL)")
        .map_err(db)?;
    let found: i64 = match tx
        .query_opt("SELECT version FROM watchpost_schema", &[])
        .map_err(db)?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO watchpost_schema (version) VALUES (0)", &[])
                .map_err(db)?;
            0
        }
    };
    if found > PG_SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: PG_SCHEMA_VERSION,
        });
    }
    let done = usize::try_from(found)
        .map_err(|_| StoreError::Corrupt(format!("negative schema version {found}")))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let version = index as i64 + 1;
        tx.batch_execute(sql).map_err(failed(version))?;
        tx.execute("UPDATE watchpost_schema SET version = $1", &[&version])
            .map_err(failed(version))?;
    }
    tx.commit().map_err(db)?;
    Ok(())
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The condition under which a worker may finish an item (`$1` id, `$2` worker).
const OURS: &str = "id = $1 AND leased_by = $2 AND lease_until IS NOT NULL \
                    AND delivered_at IS NULL AND gave_up_at IS NULL";

const OUTBOX_ENTRY_COLUMNS: &str = "id, idempotency_key, monitor, channel, payload, created_at, \
     next_attempt_at, attempts, last_error, leased_by, lease_until, delivered_at, gave_up_at, \
     incident, last_attempt_at, retried_ns";

fn outbox_entry(r: &Row) -> OutboxEntry {
    OutboxEntry {
        id: r.get(0),
        idempotency_key: r.get(1),
        monitor: r.get(2),
        channel: r.get(3),
        payload: r.get(4),
        created_at: from_db(r.get(5)),
        next_attempt_at: from_db(r.get(6)),
        attempts: to_u32(r.get(7)),
        last_error: r.get(8),
        leased_by: r.get(9),
        lease_until: opt_from_db(r.get(10)),
        delivered_at: opt_from_db(r.get(11)),
        gave_up_at: opt_from_db(r.get(12)),
        incident: r.get(13),
        last_attempt_at: opt_from_db(r.get(14)),
        retried: duration_from_db(r.get(15)),
    }
}

const OUTBOX_ITEM_COLUMNS: &str =
    "id, idempotency_key, channel, payload, created_at, attempts, last_error, incident, retried_ns";

fn outbox_item(r: &Row) -> OutboxItem {
    OutboxItem {
        id: r.get(0),
        idempotency_key: r.get(1),
        channel: r.get(2),
        payload: r.get(3),
        created_at: from_db(r.get(4)),
        attempts: to_u32(r.get(5)),
        last_error: r.get(6),
        incident: r.get(7),
        retried: duration_from_db(r.get(8)),
    }
}

fn candidate(r: &Row) -> Candidate {
    Candidate {
        id: r.get(0),
        incident: r.get(1),
        channel: r.get(2),
        last_attempt_at: r.get(3),
        retried_ns: r.get(4),
    }
}

/// The claimable items due by `next_attempt_at` after `($4, $5)` in `(next_attempt_at, id)`
/// order, a page of `$6`, locked (`$1` now, `$2` now + MAX_LEASE).
const DUE_SQL: &str = "SELECT id, incident, channel, last_attempt_at, retried_ns, next_attempt_at \
     FROM outbox \
     WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= $1 \
       AND (lease_until IS NULL OR lease_until <= $1 OR lease_until > $2) \
       AND (next_attempt_at, id) > ($3, $4) \
     ORDER BY next_attempt_at, id LIMIT $5 FOR UPDATE SKIP LOCKED";

/// The claimable items not due by `next_attempt_at` whose last attempt (or creation) lies
/// after `$2` (now + tolerance): the clock went back. Parameters as [`DUE_SQL`], shifted.
const CLOCK_BACK_SQL: &str = "SELECT id, incident, channel, last_attempt_at, retried_ns, \
         next_attempt_at \
     FROM outbox \
     WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at > $1 \
       AND coalesce(last_attempt_at, created_at) > $2 \
       AND (lease_until IS NULL OR lease_until <= $1 OR lease_until > $3) \
       AND (next_attempt_at, id) > ($4, $5) \
     ORDER BY next_attempt_at, id LIMIT $6 FOR UPDATE SKIP LOCKED";

/// The unfinished items of incident `$1` and channel `$2` before id `$3`, locked, each with
/// whether it is claimable (`$4` now, `$5` now + tolerance, `$6` now + MAX_LEASE).
const EARLIER_SQL: &str = "SELECT id, incident, channel, last_attempt_at, retried_ns, \
         (next_attempt_at <= $4 OR coalesce(last_attempt_at, created_at) > $5) \
         AND (lease_until IS NULL OR lease_until <= $4 OR lease_until > $6) \
     FROM outbox \
     WHERE incident = $1 AND channel = $2 AND id < $3 \
       AND delivered_at IS NULL AND gave_up_at IS NULL \
     ORDER BY id FOR UPDATE SKIP LOCKED";

/// The ids [`EARLIER_SQL`] would find if no row were locked.
const EARLIER_IDS_SQL: &str = "SELECT id FROM outbox \
     WHERE incident = $1 AND channel = $2 AND id < $3 \
       AND delivered_at IS NULL AND gave_up_at IS NULL ORDER BY id";

const OLDEST_SQL: &str = "SELECT id, channel, monitor, created_at, attempts, last_error \
     FROM outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL \
     ORDER BY created_at, id LIMIT 1";

/// Picks the items `claim_due` leases, locking them (see [`shared::select_claims`]).
fn select_claims(
    tx: &mut Transaction<'_>,
    times: ClaimTimes,
    limit: usize,
) -> Result<Vec<Candidate>, StoreError> {
    let ClaimTimes {
        now,
        clock_back,
        lease_cap,
    } = times;
    let tx = RefCell::new(tx);
    let page_size = i64::try_from(limit.saturating_mul(2))
        .unwrap_or(SCAN_PAGE)
        .clamp(16, SCAN_PAGE);
    let mut scan = |kind: Scan,
                    visit: &mut dyn FnMut(Candidate) -> Result<bool, StoreError>|
     -> Result<(), StoreError> {
        let (mut after_at, mut after_id) = (i64::MIN, i64::MIN);
        loop {
            let page = {
                let mut tx = tx.borrow_mut();
                match kind {
                    Scan::Due => tx.query(
                        DUE_SQL,
                        &[&now, &lease_cap, &after_at, &after_id, &page_size],
                    ),
                    Scan::ClockBack => tx.query(
                        CLOCK_BACK_SQL,
                        &[
                            &now,
                            &clock_back,
                            &lease_cap,
                            &after_at,
                            &after_id,
                            &page_size,
                        ],
                    ),
                }
                .map_err(db)?
            };
            let full = page.len() as i64 == page_size;
            for row in page {
                after_id = row.get(0);
                after_at = row.get(5);
                if !visit(candidate(&row))? {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    };
    let mut earlier = |item: &Candidate| -> Result<Vec<(Candidate, bool)>, StoreError> {
        let mut tx = tx.borrow_mut();
        let all: Vec<i64> = tx
            .query(EARLIER_IDS_SQL, &[&item.incident, &item.channel, &item.id])
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let locked = tx
            .query(
                EARLIER_SQL,
                &[
                    &item.incident,
                    &item.channel,
                    &item.id,
                    &now,
                    &clock_back,
                    &lease_cap,
                ],
            )
            .map_err(db)?;
        let ids: HashSet<i64> = locked.iter().map(|r| r.get(0)).collect();
        // The first item another transaction holds (claiming or finishing it) blocks.
        let held = all.into_iter().find(|id| !ids.contains(id));
        let mut before: Vec<(Candidate, bool)> = locked
            .iter()
            .map(|r| (candidate(r), r.get::<_, bool>(5)))
            .filter(|(c, _)| held.is_none_or(|held| c.id < held))
            .collect();
        if let Some(id) = held {
            before.push((
                Candidate {
                    id,
                    incident: item.incident.clone(),
                    channel: item.channel.clone(),
                    last_attempt_at: None,
                    retried_ns: 0,
                },
                false,
            ));
        }
        Ok(before)
    };
    shared::select_claims(limit, &mut scan, &mut earlier)
}

/// Locks `monitor`'s state row (inserting a placeholder first if it has none) and reads its
/// state and version.
fn lock_state(
    tx: &mut Transaction<'_>,
    monitor: &str,
) -> Result<(Option<String>, i64), StoreError> {
    tx.execute(
        "INSERT INTO monitor_state (monitor, state, version) VALUES ($1, NULL, 0) \
         ON CONFLICT (monitor) DO NOTHING",
        &[&monitor],
    )
    .map_err(db)?;
    let row = tx
        .query_one(
            "SELECT state, version FROM monitor_state WHERE monitor = $1 FOR UPDATE",
            &[&monitor],
        )
        .map_err(db)?;
    state_of(&row, monitor)
}

fn state_of(row: &Row, monitor: &str) -> Result<(Option<String>, i64), StoreError> {
    let version: i64 = row.get(1);
    if version == 0 {
        return Ok((None, 0));
    }
    match row.get::<_, Option<String>>(0) {
        Some(state) => Ok((Some(state), version)),
        None => Err(StoreError::UnreadableState {
            monitor: monitor.to_string(),
            message: "it is NULL".into(),
        }),
    }
}

/// A failure inside a transaction that may be run again: PostgreSQL's own error (to tell a
/// deadlock) or the store's.
enum Failed {
    Pg(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for Failed {
    fn from(e: postgres::Error) -> Self {
        Failed::Pg(e)
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::Store(e)
    }
}

impl From<Failed> for StoreError {
    fn from(e: Failed) -> Self {
        match e {
            Failed::Pg(e) => db(e),
            Failed::Store(e) => e,
        }
    }
}

/// As SQLite's `insert_results`: each row becomes its location's latest result and is
/// counted in its minute's and hour's rollup; the full row is kept only when it failed or is
/// the first pass after a failure.
fn insert_results(tx: &mut Transaction<'_>, rows: &[ResultRow], ats: &[i64]) -> Result<(), Failed> {
    for (row, at) in rows.iter().zip(ats) {
        let before = tx.query_opt(
            "SELECT ok FROM latest WHERE monitor = $1 AND location = $2",
            &[&row.monitor, &row.location],
        )?;
        let recovered = before.is_some_and(|r| !r.get::<_, bool>(0));
        if !row.ok || recovered {
            tx.execute(
                "INSERT INTO results (monitor, location, at, ok, data) VALUES ($1, $2, $3, $4, $5)",
                &[&row.monitor, &row.location, at, &row.ok, &row.data],
            )?;
        }
        upsert_latest(tx, row, *at)?;
        for step in Step::ALL {
            add_to_rollup(tx, row, *at, step)?;
        }
    }
    Ok(())
}

/// `row` (taken at `at` ns) as its location's latest result, unless a newer one is stored.
fn upsert_latest(tx: &mut Transaction<'_>, row: &ResultRow, at: i64) -> Result<u64, Failed> {
    Ok(tx.execute(
        "INSERT INTO latest (monitor, location, at, ok, data, metrics) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (monitor, location) DO UPDATE SET \
             at = excluded.at, ok = excluded.ok, data = excluded.data, metrics = excluded.metrics \
         WHERE excluded.at >= latest.at",
        &[
            &row.monitor,
            &row.location,
            &at,
            &row.ok,
            &row.data,
            &latest_metrics(row),
        ],
    )?)
}

/// Count `row` in its `step` rollup, under the rollup row's lock.
fn add_to_rollup(
    tx: &mut Transaction<'_>,
    row: &ResultRow,
    at: i64,
    step: Step,
) -> Result<(), Failed> {
    let bucket = bucket_of(at, step);
    let key: [&(dyn ToSql + Sync); 4] = [&row.monitor, &row.location, &step.seconds(), &bucket];
    add_to_rollup_row(tx, key, 1, i64::from(!row.ok), &|stored| {
        merge_rollup_metrics(stored, row)
    })
}

/// Add `checks` and `failures` to the rollup of `key` (monitor, location, step, bucket) and
/// replace its metrics by `merge` of the stored ones, under the rollup row's lock.
fn add_to_rollup_row(
    tx: &mut Transaction<'_>,
    key: [&(dyn ToSql + Sync); 4],
    checks: i64,
    failures: i64,
    merge: &dyn Fn(Option<&str>) -> Result<String, StoreError>,
) -> Result<(), Failed> {
    let stored = tx.query_opt(
        "SELECT metrics FROM rollups WHERE monitor = $1 AND location = $2 AND step = $3 \
             AND bucket = $4 FOR UPDATE",
        &key,
    )?;
    let stored = match stored {
        Some(r) => Some(r.get::<_, String>(0)),
        None => {
            // Insert an empty rollup, or lock the one a concurrent tick just inserted.
            tx.execute(
                "INSERT INTO rollups (monitor, location, step, bucket, checks, failures, metrics) \
                 VALUES ($1, $2, $3, $4, 0, 0, '{}') \
                 ON CONFLICT (monitor, location, step, bucket) DO NOTHING",
                &key,
            )?;
            let r = tx.query_one(
                "SELECT metrics, checks FROM rollups WHERE monitor = $1 AND location = $2 \
                     AND step = $3 AND bucket = $4 FOR UPDATE",
                &key,
            )?;
            // Our own empty row reads as new, as in SQLite.
            (r.get::<_, i64>(1) > 0).then(|| r.get(0))
        }
    };
    let metrics = merge(stored.as_deref())?;
    tx.execute(
        "UPDATE rollups SET checks = checks + $5, failures = failures + $6, metrics = $7 \
         WHERE monitor = $1 AND location = $2 AND step = $3 AND bucket = $4",
        &[key[0], key[1], key[2], key[3], &checks, &failures, &metrics],
    )?;
    Ok(())
}

/// What quiet ticks left (see [`Store::flush`]), in one transaction of a few statements over
/// arrays (`unnest`), whatever the number of monitors: states, latest rows, then rollups
/// (created empty where missing, locked in key order, merged here, updated), so that two
/// processes flushing at once can't deadlock on each other's row locks.
fn write_pending(tx: &mut Transaction<'_>, pending: &Pending) -> Result<usize, Failed> {
    let mut n = 0;
    let states = pending.states();
    if !states.is_empty() {
        let monitors: Vec<&str> = states.iter().map(|s| s.0).collect();
        let versions: Vec<i64> = states.iter().map(|s| s.1).collect();
        let docs: Vec<&str> = states.iter().map(|s| s.2).collect();
        n += tx.execute(
            "UPDATE monitor_state AS s SET state = v.state \
             FROM unnest($1::text[], $2::int8[], $3::text[]) AS v(monitor, version, state) \
             WHERE s.monitor = v.monitor AND s.version = v.version",
            &[&monitors, &versions, &docs],
        )? as usize;
    }

    let latest = pending.latest();
    if !latest.is_empty() {
        let monitors: Vec<&str> = latest.iter().map(|w| w.row.monitor.as_str()).collect();
        let locations: Vec<&str> = latest.iter().map(|w| w.row.location.as_str()).collect();
        let ats: Vec<i64> = latest.iter().map(|w| w.at).collect();
        let oks: Vec<bool> = latest.iter().map(|w| w.row.ok).collect();
        let data: Vec<&str> = latest.iter().map(|w| w.row.data.as_str()).collect();
        let metrics: Vec<String> = latest.iter().map(|w| latest_metrics(&w.row)).collect();
        n += tx.execute(
            "INSERT INTO latest (monitor, location, at, ok, data, metrics) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::bool[], $5::text[], \
                                  $6::text[]) \
             ON CONFLICT (monitor, location) DO UPDATE SET \
                 at = excluded.at, ok = excluded.ok, data = excluded.data, \
                 metrics = excluded.metrics \
             WHERE excluded.at >= latest.at",
            &[&monitors, &locations, &ats, &oks, &data, &metrics],
        )? as usize;
    }

    let rollups = pending.rollups();
    if !rollups.is_empty() {
        let monitors: Vec<&str> = rollups.iter().map(|r| r.0).collect();
        let locations: Vec<&str> = rollups.iter().map(|r| r.1).collect();
        let steps: Vec<i64> = rollups.iter().map(|r| r.2.seconds()).collect();
        let buckets: Vec<i64> = rollups.iter().map(|r| r.3).collect();
        let keys: [&(dyn ToSql + Sync); 4] = [&monitors, &locations, &steps, &buckets];
        // Empty rows where there are none yet (or the ones a concurrent writer just made).
        tx.execute(
            "INSERT INTO rollups (monitor, location, step, bucket, checks, failures, metrics) \
             SELECT m, l, s, b, 0, 0, '{}' \
             FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[]) AS k(m, l, s, b) \
             ON CONFLICT (monitor, location, step, bucket) DO NOTHING",
            &keys,
        )?;
        let stored = tx.query(
            "SELECT r.monitor, r.location, r.step, r.bucket, r.checks, r.metrics \
             FROM rollups AS r \
             JOIN unnest($1::text[], $2::text[], $3::int8[], $4::int8[]) AS k(m, l, s, b) \
               ON r.monitor = k.m AND r.location = k.l AND r.step = k.s AND r.bucket = k.b \
             ORDER BY r.monitor, r.location, r.step, r.bucket \
             FOR UPDATE OF r",
            &keys,
        )?;
        // An empty row (ours or a concurrent writer's) reads as new, as in SQLite.
        let stored: HashMap<(&str, &str, i64, i64), &str> = stored
            .iter()
            .filter(|r| r.get::<_, i64>(4) > 0)
            .map(|r| ((r.get(0), r.get(1), r.get(2), r.get(3)), r.get(5)))
            .collect();
        let mut checks = Vec::with_capacity(rollups.len());
        let mut failures = Vec::with_capacity(rollups.len());
        let mut merged = Vec::with_capacity(rollups.len());
        for (monitor, location, step, bucket, delta) in &rollups {
            let before = stored
                .get(&(*monitor, *location, step.seconds(), *bucket))
                .copied();
            merged.push(merge_rollup_delta(before, &delta.metrics)?);
            checks.push(delta.checks);
            failures.push(delta.failures);
        }
        tx.execute(
            "UPDATE rollups AS r SET checks = r.checks + v.c, failures = r.failures + v.f, \
                 metrics = v.metrics \
             FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], \
                         $6::int8[], $7::text[]) AS v(m, l, s, b, c, f, metrics) \
             WHERE r.monitor = v.m AND r.location = v.l AND r.step = v.s AND r.bucket = v.b",
            &[
                &monitors, &locations, &steps, &buckets, &checks, &failures, &merged,
            ],
        )?;
        n += rollups.len();
    }
    Ok(n)
}

/// The transition's writes, checked first: nothing is written unless all of it is valid.
fn write_transition(
    tx: &mut Transaction<'_>,
    monitor: &str,
    version: i64,
    transition: &Transition,
) -> Result<TransitionOutcome, StoreError> {
    let CheckedTransition {
        created,
        incident_at,
    } = check_transition(monitor, transition)?;
    tx.execute(
        "UPDATE monitor_state SET state = $2, version = $3 WHERE monitor = $1",
        &[&monitor, &transition.state, &version],
    )
    .map_err(db)?;
    let mut inserted = 0;
    if !transition.notifications.is_empty() {
        let insert = tx
            .prepare(
                "INSERT INTO outbox \
                 (idempotency_key, monitor, channel, payload, created_at, next_attempt_at, \
                  incident) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .map_err(db)?;
        for (n, created_at) in transition.notifications.iter().zip(created) {
            inserted += tx
                .execute(
                    &insert,
                    &[
                        &n.idempotency_key,
                        &monitor,
                        &n.channel,
                        &n.payload,
                        &created_at,
                        &n.incident,
                    ],
                )
                .map_err(db)? as usize;
        }
    }
    let incident_applied = match (&transition.incident, incident_at) {
        (Some(IncidentChange::Open { id, reason, .. }), Some(opened_at)) => {
            tx.execute(
                "INSERT INTO incidents (id, monitor, opened_at, reason) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                &[id, &monitor, &opened_at, reason],
            )
            .map_err(db)?
                == 1
        }
        (Some(IncidentChange::Close { id, .. }), Some(closed_at)) => {
            tx.execute(
                "UPDATE incidents SET closed_at = $3 \
                 WHERE id = $1 AND monitor = $2 AND closed_at IS NULL",
                &[id, &monitor, &closed_at],
            )
            .map_err(db)?
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

impl Store for PgStore {
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
        let mut conn = self.conn()?;
        // A panic in `decide` drops the transaction, which rolls it back.
        let mut tx = conn.transaction().map_err(db)?;
        let (state, version) = lock_state(&mut tx, monitor)?;
        let state = pending::take_state(&self.pending, monitor, version).or(state);
        let version = next_version(monitor, version)?;
        let transition = decide(state).map_err(StoreError::Decide)?;
        insert_results(&mut tx, results, &ats).map_err(StoreError::from)?;
        let outcome = write_transition(&mut tx, monitor, version, &transition)?;
        tx.commit().map_err(db)?;
        pending::supersede_latest(&self.pending, results, &ats);
        Ok(outcome)
    }

    fn state(&self, monitor: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        match conn
            .query_opt(
                "SELECT state, version FROM monitor_state WHERE monitor = $1",
                &[&monitor],
            )
            .map_err(db)?
        {
            Some(row) => {
                let (state, version) = state_of(&row, monitor)?;
                let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(pending
                    .state(monitor, version)
                    .map(str::to_string)
                    .or(state))
            }
            None => Ok(None),
        }
    }

    fn commit_quiet_tick(
        &self,
        monitor: &str,
        results: &[ResultRow],
        quiet: &mut dyn FnMut(Option<&str>) -> Option<String>,
    ) -> Result<Option<TransitionOutcome>, StoreError> {
        let ats = check_tick(monitor, results)?;
        if results.is_empty() || results.iter().any(|row| !row.ok) {
            return Ok(None);
        }
        let mut conn = self.conn()?;
        pending::quiet_tick(
            &self.pending,
            None,
            &mut conn,
            monitor,
            results,
            &ats,
            quiet,
        )
    }

    fn flush(&self) -> Result<usize, StoreError> {
        pending::flush(&self.pending, |waiting| {
            let mut conn = self.conn()?;
            let mut tries = 0;
            loop {
                let attempt = (|| -> Result<usize, Failed> {
                    let mut tx = conn.transaction()?;
                    let n = write_pending(&mut tx, waiting)?;
                    tx.commit()?;
                    Ok(n)
                })();
                match attempt {
                    Ok(n) => return Ok(n),
                    Err(Failed::Pg(e))
                        if tries < DEADLOCK_RETRIES
                            && e.code()
                                == Some(&postgres::error::SqlState::T_R_DEADLOCK_DETECTED) =>
                    {
                        tries += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        })
    }

    fn record_results(&self, rows: &[ResultRow]) -> Result<usize, StoreError> {
        let ats = check_results(rows)?;
        let mut conn = self.conn()?;
        let mut tries = 0;
        loop {
            let attempt = (|| -> Result<(), Failed> {
                let mut tx = conn.transaction()?;
                insert_results(&mut tx, rows, &ats)?;
                Ok(tx.commit()?)
            })();
            match attempt {
                Ok(()) => {
                    pending::supersede_latest(&self.pending, rows, &ats);
                    return Ok(rows.len());
                }
                Err(Failed::Pg(e))
                    if tries < DEADLOCK_RETRIES
                        && e.code() == Some(&postgres::error::SqlState::T_R_DEADLOCK_DETECTED) =>
                {
                    tries += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
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
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT location, bucket, checks, failures, metrics FROM rollups \
                 WHERE monitor = $1 AND step = $2 AND bucket >= $3 ORDER BY location, bucket",
                &[&monitor, &step.seconds(), &since],
            )
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| Rollup {
                monitor: monitor.to_string(),
                location: r.get(0),
                step,
                bucket: from_db(r.get(1)),
                checks: r.get::<_, i64>(2).max(0) as u64,
                failures: r.get::<_, i64>(3).max(0) as u64,
                metrics: serde_json::from_str(r.get(4)).unwrap_or_default(),
            })
            .collect())
    }

    fn prune_rollups(&self, step: Step, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        let before = to_db(older_than)?;
        // One statement per step: the step is part of the SQL, not a parameter, so
        // `delete_in_chunks` keeps its two parameters.
        let sql = format!(
            "DELETE FROM rollups WHERE (monitor, location, step, bucket) IN \
             (SELECT monitor, location, step, bucket FROM rollups \
              WHERE step = {} AND bucket < $1 LIMIT $2)",
            step.seconds()
        );
        self.delete_in_chunks(&sql, before)
    }

    fn prune(&self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        let before = to_db(older_than)?;
        let results = self.delete_in_chunks(
            "DELETE FROM results WHERE id IN (SELECT id FROM results WHERE at < $1 LIMIT $2)",
            before,
        )?;
        let outbox = self.delete_in_chunks(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
             WHERE (delivered_at IS NOT NULL OR gave_up_at IS NOT NULL) \
               AND coalesce(delivered_at, gave_up_at) < $1 LIMIT $2)",
            before,
        )?;
        let latest = self.delete_in_chunks(
            "DELETE FROM latest WHERE (monitor, location) IN \
             (SELECT monitor, location FROM latest WHERE at < $1 LIMIT $2)",
            before,
        )?;
        let observations = self.delete_in_chunks(
            "DELETE FROM observations WHERE (monitor, slot, location) IN \
             (SELECT monitor, slot, location FROM observations WHERE slot < $1 LIMIT $2)",
            before,
        )?;
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
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        let selected = select_claims(&mut tx, times, limit)?;
        let mut claimed = Vec::with_capacity(selected.len());
        let update = tx
            .prepare(&format!(
                "UPDATE outbox SET leased_by = $1, lease_until = $2, \
                     attempts = LEAST(attempts + 1, 4294967295), \
                     last_attempt_at = $3, retried_ns = $4 \
                 WHERE id = $5 RETURNING {OUTBOX_ITEM_COLUMNS}"
            ))
            .map_err(db)?;
        for item in selected {
            let gap = item.last_attempt_at.map_or(0, |last| {
                times
                    .now
                    .saturating_sub(last)
                    .clamp(0, nanos(RETRY_GAP_CAP))
            });
            let retried = item.retried_ns.max(0).saturating_add(gap);
            let row = tx
                .query_one(
                    &update,
                    &[&worker_id, &until, &times.now, &retried, &item.id],
                )
                .map_err(db)?;
            claimed.push(outbox_item(&row));
        }
        tx.commit().map_err(db)?;
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
        let ids: Vec<i64> = ids
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        let update = tx
            .prepare(&format!("UPDATE outbox SET lease_until = $3 WHERE {OURS}"))
            .map_err(db)?;
        let mut extended = 0;
        for id in ids {
            extended += tx
                .execute(&update, &[&id, &worker_id, &until])
                .map_err(db)? as usize;
        }
        tx.commit().map_err(db)?;
        Ok(extended)
    }

    fn mark_delivered(
        &self,
        id: i64,
        worker_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.finish(id, worker_id, "delivered_at = $3", at, None)
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
            "next_attempt_at = $3, last_error = $4",
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
            "gave_up_at = $3, last_error = $4",
            at,
            Some(error),
        )
    }

    fn pending_count(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let row = conn
            .query_one(
                "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL",
                &[],
            )
            .map_err(db)?;
        to_count(row.get(0))
    }

    fn next_wake(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let now_ns = to_db(now)?;
        let tolerance = nanos(CLOCK_BACK_TOLERANCE);
        let mut conn = self.conn()?;
        let row = conn
            .query_one(
                "SELECT min(CASE \
                     WHEN coalesce(last_attempt_at, created_at) > $1::BIGINT + $2::BIGINT \
                         THEN $1::BIGINT \
                     WHEN lease_until IS NOT NULL AND lease_until > $1::BIGINT \
                         THEN GREATEST(lease_until, next_attempt_at) \
                     ELSE next_attempt_at END) \
                 FROM outbox o WHERE delivered_at IS NULL AND gave_up_at IS NULL \
                 AND (incident IS NULL OR NOT EXISTS ( \
                     SELECT 1 FROM outbox e WHERE e.incident = o.incident \
                     AND e.channel = o.channel AND e.id < o.id \
                     AND e.delivered_at IS NULL AND e.gave_up_at IS NULL))",
                &[&now_ns, &tolerance],
            )
            .map_err(db)?;
        Ok(row.get::<_, Option<i64>>(0).map(from_db))
    }

    fn oldest_undelivered(&self) -> Result<Option<PendingInfo>, StoreError> {
        let mut conn = self.conn()?;
        Ok(conn
            .query_opt(OLDEST_SQL, &[])
            .map_err(db)?
            .map(|r| PendingInfo {
                id: r.get(0),
                channel: r.get(1),
                monitor: r.get(2),
                created_at: from_db(r.get(3)),
                attempts: to_u32(r.get(4)),
                last_error: r.get(5),
            }))
    }

    fn list_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                &format!("SELECT {OUTBOX_ENTRY_COLUMNS} FROM outbox ORDER BY id"),
                &[],
            )
            .map_err(db)?;
        Ok(rows.iter().map(outbox_entry).collect())
    }

    fn incidents(&self, monitor: &str) -> Result<Vec<Incident>, StoreError> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT id, monitor, opened_at, reason, closed_at FROM incidents \
                 WHERE monitor = $1 ORDER BY opened_at, id",
                &[&monitor],
            )
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| Incident {
                id: r.get(0),
                monitor: r.get(1),
                opened_at: from_db(r.get(2)),
                reason: r.get(3),
                closed_at: opt_from_db(r.get(4)),
            })
            .collect())
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
        let (monitors, ats): (Vec<&str>, Vec<i64>) = fired.into_iter().unzip();
        // One statement: its row locks are taken in name order, and a row another
        // transaction claimed meanwhile is re-checked against its committed fire time.
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "INSERT INTO schedule_runs (monitor, fired_at) \
                 SELECT monitor, fired_at FROM unnest($1::text[], $2::bigint[]) \
                     AS claims (monitor, fired_at) ORDER BY monitor \
                 ON CONFLICT (monitor) DO UPDATE SET fired_at = excluded.fired_at \
                 WHERE schedule_runs.fired_at < excluded.fired_at \
                     OR schedule_runs.fired_at > $3 \
                 RETURNING monitor",
                &[&monitors, &ats, &limit],
            )
            .map_err(db)?;
        let mut claimed: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        claimed.sort();
        Ok(claimed)
    }

    fn fired_at(&self, monitor: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut conn = self.conn()?;
        let row = conn
            .query_opt(
                "SELECT fired_at FROM schedule_runs WHERE monitor = $1",
                &[&monitor],
            )
            .map_err(db)?;
        Ok(row.map(|r| from_db(r.get(0))))
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
        let monitors: Vec<&str> = rows.iter().map(|r| r.monitor.as_str()).collect();
        let slots: Vec<i64> = times.iter().map(|t| t.0).collect();
        let places: Vec<&str> = rows.iter().map(|r| r.location.as_str()).collect();
        let ats: Vec<i64> = times.iter().map(|t| t.1).collect();
        let oks: Vec<bool> = rows.iter().map(|r| r.ok).collect();
        let data: Vec<&str> = rows.iter().map(|r| r.data.as_str()).collect();
        let locations: Vec<&str> = locations.into_iter().collect();
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        // In key order (the first of a key in the batch wins), so that concurrent batches
        // wait for each other's keys in one order.
        let stored = tx
            .execute(
                "INSERT INTO observations (monitor, slot, location, at, ok, data) \
                 SELECT m, s, l, a, k, d \
                 FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::bool[], \
                             $6::text[]) WITH ORDINALITY AS o(m, s, l, a, k, d, n) \
                 ORDER BY m, s, l, n \
                 ON CONFLICT DO NOTHING",
                &[&monitors, &slots, &places, &ats, &oks, &data],
            )
            .map_err(db)? as usize;
        tx.execute(
            "INSERT INTO location_reports (location, last_report_at) \
             SELECT l, $2 FROM unnest($1::text[]) AS u(l) ORDER BY l \
             ON CONFLICT (location) DO UPDATE SET last_report_at = \
                 GREATEST(location_reports.last_report_at, excluded.last_report_at)",
            &[&locations, &received],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
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
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT monitor, location, slot, at, ok, data FROM observations \
                 WHERE monitor = $1 AND slot = $2 ORDER BY location",
                &[&monitor, &slot],
            )
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| ObservationRow {
                monitor: r.get(0),
                location: r.get(1),
                slot: from_db(r.get(2)),
                at: from_db(r.get(3)),
                ok: r.get(4),
                data: r.get(5),
            })
            .collect())
    }

    fn observation_count(&self, location: Option<&str>) -> Result<u64, StoreError> {
        let mut conn = self.conn()?;
        let row = match location {
            Some(location) => conn.query_one(
                "SELECT count(*) FROM observations WHERE location = $1",
                &[&location],
            ),
            None => conn.query_one("SELECT count(*) FROM observations", &[]),
        }
        .map_err(db)?;
        Ok(to_count(row.get(0))? as u64)
    }

    fn location_reports(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT location, last_report_at FROM location_reports ORDER BY location",
                &[],
            )
            .map_err(db)?;
        Ok(rows.iter().map(|r| (r.get(0), from_db(r.get(1)))).collect())
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
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SHARD_LOCK])
            .map_err(db)?;
        tx.execute(
            "DELETE FROM shard_holders WHERE until <= $1 OR until > $2",
            &[&times.now, &times.lease_cap],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT INTO shard_holders (holder, until) VALUES ($1, $2) \
             ON CONFLICT (holder) DO UPDATE SET until = excluded.until",
            &[&holder, &until],
        )
        .map_err(db)?;
        let others: Vec<String> = tx
            .query(
                "SELECT holder FROM shard_holders WHERE until > $1 AND until <= $2 \
                 UNION SELECT holder FROM shard_leases \
                 WHERE until > $1 AND until <= $2 AND holder IS NOT NULL",
                &[&times.now, &times.lease_cap],
            )
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let leases: Vec<Lease> = tx
            .query("SELECT shard, holder, until FROM shard_leases", &[])
            .map_err(db)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let plan = plan_shards(holder, &others, &leases, times);
        let released: Vec<i64> = plan.released.iter().map(|&s| i64::from(s)).collect();
        let held: Vec<i64> = plan.held.iter().map(|&s| i64::from(s)).collect();
        tx.execute(
            "UPDATE shard_leases SET holder = NULL, until = NULL WHERE shard = ANY($1)",
            &[&released],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT INTO shard_leases (shard, holder, until) \
             SELECT s, $2, $3 FROM unnest($1::int8[]) AS u(s) \
             ON CONFLICT (shard) DO UPDATE SET holder = excluded.holder, until = excluded.until",
            &[&held, &holder, &until],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(plan.held)
    }

    fn release_shards(&self, holder: &str) -> Result<(), StoreError> {
        check_not_empty("holder", holder)?;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SHARD_LOCK])
            .map_err(db)?;
        tx.execute("DELETE FROM shard_holders WHERE holder = $1", &[&holder])
            .map_err(db)?;
        tx.execute(
            "UPDATE shard_leases SET holder = NULL, until = NULL WHERE holder = $1",
            &[&holder],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_decides_tls() {
        let tls = |url: &str| parse(url).map(|s| s.tls);
        assert!(!tls("postgres://u@127.0.0.1/db").unwrap());
        assert!(!tls("postgres://u@localhost:5432/db").unwrap());
        assert!(!tls("postgres://u@[::1]/db").unwrap());
        assert!(!tls("postgres://u@/db?host=/run/postgresql").unwrap());
        assert!(tls("postgres://u@db.example.com/db").unwrap());
        assert!(tls("postgres://u@db.example.com/db?sslmode=prefer").unwrap());
        assert!(!tls("postgres://u@db.example.com/db?sslmode=disable").unwrap());
        assert!(tls("postgres://u@127.0.0.1/db?sslmode=require").unwrap());
        assert!(tls("postgresql://u@h/db?sslmode=verify-full&application_name=w").unwrap());
        for bad in [
            "postgres://u:s3cret@h/db?sslmode=bogus",
            "postgres://u:s3cret@h/db?nonsense=1",
            "postgres://u:s3cret@h/db#frag",
        ] {
            let err = parse(bad).err().expect(bad).to_string();
            assert!(!err.contains("s3cret"), "{err}");
        }
        assert!(is_postgres_url("PostgreSQL://h/db"));
        assert!(is_postgres_url("postgres://h/db"));
        assert!(!is_postgres_url("postgres:h"));
        assert!(!is_postgres_url("sqlite::memory:"));
    }
}
