//! The embedded store: per-monitor alert state, the notification outbox, incidents and check
//! results.
//!
//! [`Store`] is the interface; [`SqliteStore`] implements it on one SQLite file (bundled SQLite,
//! WAL, `busy_timeout` 5 s, foreign keys on, schema migrations applied on open) and [`PgStore`]
//! on a PostgreSQL database (a small pool of connections, TLS through rustls, its own
//! migrations applied on open). Both behave the same; [`open`] picks the backend from the URL.
//!
//! The methods are **blocking**: call them from `tokio::task::spawn_blocking` (an
//! `Arc<dyn Store>` moves into the closure) or from a thread of your own. Every method is one
//! transaction, so the store is safe to share between threads and between processes using the
//! same file.
//!
//! # Alert state and the outbox
//!
//! The alert engine's state for a monitor is a JSON document the store never looks into.
//! [`Store::transition`] reads it, hands it to a `decide` function and writes, in the same write
//! transaction, the new state, the notifications `decide` asked for (into the outbox) and the
//! incident change. Either all of it is written or none of it: a crash never leaves a state
//! change without its notification, nor a notification without its state change. Two processes
//! (or two threads) transitioning the same monitor are serialized, each `decide` seeing the state
//! the other wrote.
//!
//! Notifications carry an idempotency key; a key already in the outbox is ignored, so replaying a
//! decision never queues a second copy.
//!
//! # Delivery with leases
//!
//! Delivery workers, in one process or several, call [`Store::claim_due`]: it leases up to `limit`
//! due items to the caller until `now + lease`, and no other worker can claim them until the
//! lease expires. A lease is at most [`MAX_LEASE`] (one hour); a worker whose send may take
//! longer than its lease renews it with [`Store::extend_lease`] before it runs out. The worker
//! then reports [`Store::mark_delivered`], [`Store::mark_retry`] or [`Store::mark_gave_up`];
//! each succeeds only while the item is still leased to that worker (a worker whose lease
//! expired and was taken over gets [`StoreError::NotLeased`]). A delivered or given-up item is
//! never claimed again. Worker ids must be unique per running worker (for example host, pid and
//! a counter).
//!
//! # Delivery order
//!
//! A notification may name its incident ([`NewNotification::incident`]). Per incident and
//! channel, items are delivered in the order they were queued (their ids): **no item is claimed
//! while an earlier item (lower id) of the same incident and the same channel is undelivered and
//! not given up, unless that earlier item is claimed in the same [`Store::claim_due`] call.**
//! An earlier item blocks its successors whether it is due, waiting for its retry or leased
//! (to any worker, including the caller). So a RESOLVED never overtakes its DOWN, and the
//! reminders stay between them; once the DOWN is delivered or given up, the next one is free.
//! Items without an incident, and items of other channels or other incidents, are unaffected.
//!
//! One call may claim several items of one incident and channel (when they are all due): they
//! come back in id order, earliest first, so a channel that merges alerts can send them as one
//! message. A worker that sends them separately must send them **in the returned order, one
//! after the other**, and must not send a later one when an earlier one failed (report
//! [`Store::mark_retry`] for the later one without sending it), or the order is lost.
//!
//! # Clock steps
//!
//! The store takes every time from its caller (`now`, `at`), normally the wall clock, which can
//! be stepped. Three rules keep a step from stalling delivery or giving an item up:
//!
//! - **Back.** An item is due not only when its `next_attempt_at <= now` but also when its last
//!   attempt — or its creation, if it was never attempted — lies more than
//!   [`CLOCK_BACK_TOLERANCE`] (5 s) after `now`: the clock went back, and the retry time
//!   computed on the old clock would otherwise make it wait for the length of the step.
//! - **Leases.** A lease that ends more than [`MAX_LEASE`] after `now` counts as expired (no
//!   lease can be granted that long, so the clock went back).
//! - **Forward.** [`OutboxItem::retried`] measures the time spent retrying as the sum of the gaps
//!   between successive claims, each gap clamped to `[0, RETRY_GAP_CAP]` (one hour). A worker
//!   gives up only after `retried` reaches its maximum age *and* a minimum number of attempts,
//!   so a forward step of 25 hours adds at most one hour, and a step back adds nothing.
//!
//! ```
//! use std::time::Duration;
//! use chrono::Utc;
//! use watchpost_store::{NewNotification, Store, Transition};
//!
//! let store = watchpost_store::open("sqlite::memory:")?;
//! let now = Utc::now();
//! let outcome = store.transition("api", &mut |state| {
//!     // `state` is None the first time; the engine decides and returns the new state.
//!     let notifications = if state.is_none() {
//!         vec![NewNotification {
//!             idempotency_key: "api/incident-1/open/ops".into(),
//!             channel: "ops".into(),
//!             payload: r#"{"monitor":"api","status":"down"}"#.into(),
//!             created_at: now,
//!             incident: Some("api/incident-1".into()),
//!         }]
//!     } else {
//!         vec![]
//!     };
//!     Ok(Transition { state: r#"{"failing":1}"#.into(), notifications, incident: None })
//! })?;
//! assert_eq!(outcome.notifications_inserted, 1);
//!
//! // A delivery worker:
//! for item in store.claim_due(now, "host-1/pid-42/0", Duration::from_secs(60), 16)? {
//!     // ... send item.payload to item.channel, then:
//!     store.mark_delivered(item.id, "host-1/pid-42/0", Utc::now())?;
//! }
//! assert_eq!(store.pending_count()?, 0);
//! assert!(store.oldest_undelivered()?.is_none());
//! # Ok::<(), watchpost_store::StoreError>(())
//! ```
//!
//! # One write per tick
//!
//! [`Store::commit_tick`] writes a tick's check results and the monitor's transition in one
//! write transaction: all of it or nothing. [`Store::record_results`] and
//! [`Store::transition`] are its two halves on their own.
//!
//! # Observations from other locations
//!
//! Probe agents in other locations push what they observed; the server stores each
//! observation with [`Store::record_observations`] as an [`ObservationRow`], keyed by monitor,
//! location and slot (the tick it stands for). A key already stored is skipped and counted as
//! a duplicate, so a re-sent batch is harmless. The same transaction records when each
//! location of the batch last reported ([`Store::location_reports`], for its dead-man switch).
//! [`Store::observations`] reads every location's observation of one slot; [`Store::prune`]
//! deletes those of old slots.
//!
//! # Shard leases
//!
//! Several processes on one database share the monitors by [`SHARDS`] shards: a monitor
//! belongs to shard [`shard_of`] of its name, and a process runs the monitors of the shards it
//! holds. Each process calls [`Store::claim_shards`] every few seconds with a lease a few times
//! that long: it renews its leases, gives up what exceeds its fair share (all shards divided by
//! the live processes, rounded up) and takes free or expired shards up to it. No shard is ever
//! leased to two processes at once; a process that dies loses its shards when their leases
//! end, and one that stops gives them up at once ([`Store::release_shards`]). A lease that
//! ends more than [`MAX_LEASE`] after `now` counts as expired (the clock went back).
//!
//! # Unreadable state
//!
//! The store never interprets a monitor's state: a state that is not valid JSON (edited by
//! hand, or written by another version) is handed to `decide` as it is, and `decide` chooses
//! what to do. Only a state that can't be read as text at all fails, with
//! [`StoreError::UnreadableState`] naming the monitor, and only in calls about that monitor
//! ([`Store::transition`], [`Store::commit_tick`], [`Store::state`]).
//!
//! # Times
//!
//! Times are `DateTime<Utc>` and are stored with nanosecond precision, so they round-trip
//! exactly; both backends accept times between the years 1677 and 2262. A time outside
//! that range, or arithmetic that would leave it (`now + lease`), is
//! [`StoreError::TimeOutOfRange`], never a panic.
//!
//! # URLs and secrets
//!
//! Errors that quote a store URL show it through [`redact_url`]: no password, no query string.

mod error;
mod pending;
mod postgres;
mod shared;
pub mod sketch;
mod sqlite;
mod time;
mod url;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

pub use error::StoreError;
pub use postgres::{PG_SCHEMA_VERSION, POOL_SIZE, PgStore};
pub use sketch::Summary;
pub use sqlite::{SCHEMA_VERSION, SqliteStore};
pub use url::{check_url, redact_url};

/// The longest lease [`Store::claim_due`] and [`Store::extend_lease`] grant; longer ones are
/// [`StoreError::InvalidInput`]. A lease that ends more than this after `now` counts as expired
/// (the wall clock went back).
pub const MAX_LEASE: Duration = Duration::from_secs(60 * 60);

/// The most one gap between two claims of an item adds to [`OutboxItem::retried`].
pub const RETRY_GAP_CAP: Duration = Duration::from_secs(60 * 60);

/// An item whose last attempt (or creation) lies more than this after `now` is due at once:
/// the wall clock went back.
pub const CLOCK_BACK_TOLERANCE: Duration = Duration::from_secs(5);

/// The number of shards monitors are split into (see *Shard leases* in the crate
/// documentation).
pub const SHARDS: u32 = 64;

/// The shard of the monitor named `name`: the 64-bit FNV-1a hash of its UTF-8 bytes, modulo
/// [`SHARDS`]. Stable across builds, platforms and versions (processes of different builds
/// sharing a database must agree on it): never change it.
pub fn shard_of(name: &str) -> u32 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % u64::from(SHARDS)) as u32
}

/// Opens the store named by `url`: `sqlite://PATH` (`sqlite:///abs/path` or
/// `sqlite://relative/path`; `sqlite:PATH` also works) or `sqlite::memory:` for a private
/// in-memory database. The file is created if missing and migrated to the current schema.
/// `postgres://…` and `postgresql://…` open a [`PgStore`] (see there for `sslmode`).
pub fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if postgres::is_postgres_url(url) {
        return Ok(Arc::new(PgStore::open(url)?));
    }
    Ok(Arc::new(SqliteStore::open(url)?))
}

/// The storage interface. All methods block; see the crate documentation. Object-safe: it is
/// used as `Arc<dyn Store>`.
pub trait Store: Send + Sync {
    /// Reads `monitor`'s state, calls `decide` with it (`None` the first time), and writes what
    /// `decide` returned — the new state, the notifications (into the outbox; a duplicate
    /// idempotency key is skipped) and the incident change — in one write transaction.
    ///
    /// If `decide` returns `Err(message)`, nothing is written and the result is
    /// [`StoreError::Decide`]. `decide` runs while the store holds the write lock: keep it short,
    /// and don't call the store from inside it ([`StoreError::Reentrant`]).
    ///
    /// The state is handed over as stored, whatever it holds (it need not be valid JSON); a
    /// state that can't be read as text is [`StoreError::UnreadableState`] and `decide` is not
    /// called. The same as [`Store::commit_tick`] with no results.
    fn transition(
        &self,
        monitor: &str,
        decide: &mut dyn FnMut(Option<String>) -> Result<Transition, String>,
    ) -> Result<TransitionOutcome, StoreError>;

    /// One tick of `monitor`: appends `results` and runs [`Store::transition`] in **one** write
    /// transaction. Either everything is written or nothing is: when `decide` fails
    /// ([`StoreError::Decide`]), its output is invalid, or the state is unreadable
    /// ([`StoreError::UnreadableState`]), no result is recorded either.
    ///
    /// Every row of `results` must be about `monitor` (else [`StoreError::InvalidInput`]) and
    /// its `data` must be JSON ([`StoreError::InvalidJson`]); both are checked before the
    /// write lock is taken, and before `decide` is called. `results` may be empty.
    fn commit_tick(
        &self,
        monitor: &str,
        results: &[ResultRow],
        decide: &mut dyn FnMut(Option<String>) -> Result<Transition, String>,
    ) -> Result<TransitionOutcome, StoreError>;

    /// A **quiet** tick of `monitor`, recorded without a write: `quiet` gets the current state
    /// and returns the new one when the tick is quiet — it changes nothing a person is told
    /// about (no notification, no incident change, the same status) — or `None` when it is not.
    /// Every result must pass, and so must each location's previous result. Then the new
    /// state, the latest results and their rollups wait in memory until [`Store::flush`], and
    /// this returns the outcome; otherwise (or when the backend has no such path, or too much
    /// is waiting) it returns `Ok(None)` and the caller commits the tick with
    /// [`Store::commit_tick`].
    ///
    /// Cheap enough to call from an async task where the backend implements it: a couple of
    /// indexed reads on a connection of its own, no write, no wait for a commit. A waiting
    /// state is used by the next tick of the monitor in this process (quiet or not) and is
    /// written only if the stored state is still the one it was derived from. What waits is
    /// lost if the process dies before the flush: counts and latest results of passing ticks,
    /// never a transition or a notification.
    fn commit_quiet_tick(
        &self,
        monitor: &str,
        results: &[ResultRow],
        quiet: &mut dyn FnMut(Option<&str>) -> Option<String>,
    ) -> Result<Option<TransitionOutcome>, StoreError> {
        let _ = (monitor, results, quiet);
        Ok(None)
    }

    /// Whether [`Store::commit_quiet_tick`] may be called from an async task: its reads are
    /// local and never wait for long (SQLite). Otherwise (a database across the network) call
    /// it where blocking is fine, as the other methods.
    fn quiet_inline(&self) -> bool {
        false
    }

    /// Writes what quiet ticks left waiting ([`Store::commit_quiet_tick`]) in one transaction
    /// (on SQLite without the full sync: a crash may lose it, a power cut may not corrupt
    /// anything). A read of a monitor's results or rollups flushes first when something of
    /// that monitor waits (reading many monitors in a row flushes once). Returns the number of entries
    /// written. A failed flush keeps its entries for the next one.
    fn flush(&self) -> Result<usize, StoreError> {
        Ok(0)
    }

    /// `monitor`'s current state, `None` before its first transition;
    /// [`StoreError::UnreadableState`] when it can't be read as text.
    fn state(&self, monitor: &str) -> Result<Option<String>, StoreError>;

    /// Appends check results (one transaction; all rows or none). Rows may be about different
    /// monitors. Returns how many rows were written.
    fn record_results(&self, rows: &[ResultRow]) -> Result<usize, StoreError>;

    /// The latest result of each location of `monitor`, ordered by location.
    fn latest_results(&self, monitor: &str) -> Result<Vec<ResultRow>, StoreError>;

    /// The latest result of each location of every monitor stored, ordered by monitor and
    /// location: one flush and one read for pages about every monitor (`/metrics`).
    fn all_latest_results(&self) -> Result<Vec<ResultRow>, StoreError>;

    /// `monitor`'s rollups of `step` whose bucket starts at or after `since`, by location and
    /// bucket. Every result written ([`Store::commit_tick`], [`Store::record_results`]) is
    /// counted in its minute and its hour, in the same transaction.
    fn rollups(
        &self,
        monitor: &str,
        step: Step,
        since: DateTime<Utc>,
    ) -> Result<Vec<Rollup>, StoreError>;

    /// Retention of rollups: deletes the `step` rollups whose bucket started before
    /// `older_than`, in chunks (the write lock is never held for long). Returns the number
    /// of rows deleted.
    fn prune_rollups(&self, step: Step, older_than: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Retention: deletes results taken before `older_than`, outbox items delivered or given
    /// up before `older_than`, the latest result of a location that has reported nothing
    /// since, and observations of slots before `older_than`, in chunks. Pending items, states,
    /// incidents, the rollups and the locations' report times are kept. Returns the number of
    /// rows deleted.
    ///
    /// A pruned item's idempotency key is forgotten, so keep the retention longer than any
    /// window in which the same key could be produced again.
    fn prune(&self, older_than: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Leases up to `limit` outbox items to `worker_id` until `now + lease` and returns them.
    ///
    /// An item is *claimable* when it is neither delivered nor given up, it is due — its
    /// `next_attempt_at <= now`, or its last attempt (its creation if never attempted) lies more
    /// than [`CLOCK_BACK_TOLERANCE`] after `now` — and it is not leased: no lease, a lease that
    /// ended at or before `now`, or one that ends more than [`MAX_LEASE`] after `now`.
    ///
    /// A claimable item is claimed only if every earlier (lower id) undelivered, not given up
    /// item with the same incident and channel is claimed in this same call (see *Delivery
    /// order* in the crate documentation); items without an incident have no such condition.
    /// Claimable items are taken oldest due first (`next_attempt_at`, then id); an item that
    /// pulls earlier items of its incident and channel into the call is preceded by them. The
    /// result is in that order, so the items of one incident and channel are in id order.
    ///
    /// Each claim counts as an attempt ([`OutboxItem::attempts`]), adds the gap since the
    /// previous claim to [`OutboxItem::retried`] (clamped to `[0, RETRY_GAP_CAP]`; nothing on
    /// the first claim) and records `now` as the item's last attempt.
    ///
    /// Errors: an empty `worker_id`, a zero lease or one longer than [`MAX_LEASE`] are
    /// [`StoreError::InvalidInput`]; `now + lease` outside the storable range is
    /// [`StoreError::TimeOutOfRange`]. `limit` 0 claims nothing.
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        worker_id: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError>;

    /// Renews the lease of those items of `ids` that are still leased to `worker_id` and are
    /// neither delivered nor given up (an expired lease nobody took over still counts as ours,
    /// as in [`Store::mark_delivered`]): their lease now ends at `now + lease` (which may also
    /// shorten it). Returns how many items were renewed; the others (unknown ids, items
    /// finished or taken over by another worker) are left alone. One transaction.
    ///
    /// Errors as in [`Store::claim_due`]: an empty `worker_id`, a zero lease or one longer than
    /// [`MAX_LEASE`] are [`StoreError::InvalidInput`]; `now + lease` outside the storable range
    /// is [`StoreError::TimeOutOfRange`]. No ids renews nothing.
    fn extend_lease(
        &self,
        ids: &[i64],
        worker_id: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<usize, StoreError>;

    /// Marks item `id` delivered at `at`; it is never claimed again. Fails with
    /// [`StoreError::NotLeased`] unless the item is still leased to `worker_id` (an expired lease
    /// nobody took over still counts as ours) and not yet delivered or given up.
    fn mark_delivered(&self, id: i64, worker_id: &str, at: DateTime<Utc>)
    -> Result<(), StoreError>;

    /// Records a failed attempt: the item becomes claimable again at `next_attempt_at`, with
    /// `error` as its `last_error`. Same lease rule as [`Store::mark_delivered`].
    fn mark_retry(
        &self,
        id: i64,
        worker_id: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Gives up on item `id` at `at`: it is kept, with `error` as its `last_error`, and never
    /// retried. Same lease rule as [`Store::mark_delivered`].
    fn mark_gave_up(
        &self,
        id: i64,
        worker_id: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Outbox items neither delivered nor given up (leased ones included).
    fn pending_count(&self) -> Result<usize, StoreError>;

    /// When [`Store::claim_due`] may next find something to claim, as of `now`: the earliest
    /// `next_attempt_at` of an unleased pending item, the end of a lease for a leased one
    /// (whichever is later for it), and `now` for an item the clock-back rule makes due —
    /// counting only the first pending item of each incident and channel (the others wait
    /// for it, see *Delivery order*); `None` when nothing is pending. A delivery worker sleeps until then (or until woken by
    /// a new notification) instead of polling. The default answers "in a second" (polling).
    fn next_wake(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(Some(now + TimeDelta::seconds(1)))
    }

    /// The outbox item neither delivered nor given up with the earliest `created_at` (the
    /// lowest id among equals), whether it is due, waiting for a retry, leased or held back by
    /// the delivery order; `None` when there is none. For health checks: one index lookup.
    fn oldest_undelivered(&self) -> Result<Option<PendingInfo>, StoreError>;

    /// Every outbox row with its delivery status, by id. For tests and diagnostics.
    fn list_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError>;

    /// `monitor`'s incidents, oldest first.
    fn incidents(&self, monitor: &str) -> Result<Vec<Incident>, StoreError>;

    /// Claims the monitors that are due to run for a fire time of their schedule, in one
    /// write transaction: for each `(monitor, fired_at)` — `fired_at` being the latest fire
    /// time of the monitor's schedule at or before now — the monitor is claimed when no fire
    /// time was claimed for it yet or the one claimed is earlier than `fired_at`; its claimed
    /// fire time becomes `fired_at`. Returns the monitors claimed, in name order.
    ///
    /// Two stores on the same data (two processes) calling this at the same moment never both
    /// claim a monitor for the same fire time: SQLite serializes the transactions, PostgreSQL
    /// the rows. A monitor that missed several fire times is claimed once, for the latest;
    /// a later `fired_at` claims it again. A monitor named twice counts with the later time.
    ///
    /// A claimed fire time more than [`CLOCK_BACK_TOLERANCE`] after `now` means the wall clock
    /// went back: the monitor is claimed again (its claimed fire time moves back to
    /// `fired_at`) instead of waiting for the clock to catch up; clocks of several hosts that
    /// differ by less than that never make a monitor run twice.
    ///
    /// Errors: an empty monitor name is [`StoreError::InvalidInput`], a time outside the
    /// storable range [`StoreError::TimeOutOfRange`]; nothing is claimed then. No pairs claim
    /// nothing.
    fn claim_fired(
        &self,
        now: DateTime<Utc>,
        fired: &[(String, DateTime<Utc>)],
    ) -> Result<Vec<String>, StoreError>;

    /// The latest fire time claimed for `monitor` ([`Store::claim_fired`]), `None` before its
    /// first claim.
    fn fired_at(&self, monitor: &str) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Stores observations pushed by probe agents, in one write transaction, and records
    /// that each location of the batch reported at `received_at` (its
    /// [`Store::location_reports`] time becomes the later of the stored one and this, even
    /// when every row is a duplicate).
    ///
    /// Idempotent: a row whose key (monitor, location, slot) is already stored — or comes
    /// earlier in the same batch — is skipped and counted in
    /// [`ObservationsRecorded::duplicates`]; the stored one is kept as it is.
    ///
    /// Errors: an empty monitor or location name is [`StoreError::InvalidInput`], a time
    /// outside the storable range [`StoreError::TimeOutOfRange`]; nothing is stored then.
    /// No rows store nothing and record no report.
    fn record_observations(
        &self,
        rows: &[ObservationRow],
        received_at: DateTime<Utc>,
    ) -> Result<ObservationsRecorded, StoreError>;

    /// Every location's observation of `monitor`'s `slot`, ordered by location. One index
    /// range.
    fn observations(
        &self,
        monitor: &str,
        slot: DateTime<Utc>,
    ) -> Result<Vec<ObservationRow>, StoreError>;

    /// How many observations are stored: all of them, or those of `location`.
    fn observation_count(&self, location: Option<&str>) -> Result<u64, StoreError>;

    /// When each location last reported ([`Store::record_observations`]), by location name.
    fn location_reports(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError>;

    /// Renews and takes shard leases for `holder`, in one write transaction, and returns the
    /// shards it holds now (leased until `now + ttl`), sorted.
    ///
    /// The live holders are those whose last claim's lease has not ended at `now` (whether they
    /// hold shards or not), and `holder` itself; its fair share is [`SHARDS`] divided by their
    /// number, rounded up. `holder` keeps (renews) its shards up to its fair share, the lowest
    /// first, and releases the others at once; then takes free or expired shards, the lowest
    /// first, until it holds its fair share or none is left. A shard leased to another holder
    /// is never taken before its lease ends (or ends more than [`MAX_LEASE`] after `now`: the
    /// clock went back), so no shard is ever leased to two holders at once, however many
    /// processes call this at the same moment.
    ///
    /// Errors: an empty `holder`, a zero `ttl` or one longer than [`MAX_LEASE`] are
    /// [`StoreError::InvalidInput`]; `now + ttl` outside the storable range is
    /// [`StoreError::TimeOutOfRange`].
    fn claim_shards(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Vec<u32>, StoreError>;

    /// Gives up `holder`'s shards at once (a process stopping): another holder can take them
    /// in its next [`Store::claim_shards`], and `holder` no longer counts as live. An empty
    /// `holder` is [`StoreError::InvalidInput`].
    fn release_shards(&self, holder: &str) -> Result<(), StoreError>;
}

/// One location's observation of one slot (a scheduled tick) of a monitor, as an agent pushed it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationRow {
    pub monitor: String,
    pub location: String,
    /// The tick (scheduled time) it stands for; with monitor and location, its key.
    pub slot: DateTime<Utc>,
    /// When the agent made it.
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// The observation's JSON document (opaque to the store).
    pub data: String,
}

/// What [`Store::record_observations`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservationsRecorded {
    /// Rows stored.
    pub stored: usize,
    /// Rows skipped because their key was already stored (or came earlier in the batch).
    pub duplicates: usize,
}

/// What `decide` asks [`Store::transition`] to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The monitor's new state, a JSON document.
    pub state: String,
    /// Notifications to put into the outbox.
    pub notifications: Vec<NewNotification>,
    /// An incident to open or close.
    pub incident: Option<IncidentChange>,
}

/// A notification to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// Unique over the outbox: a second notification with the same key is skipped.
    pub idempotency_key: String,
    /// The channel's name, as configured.
    pub channel: String,
    /// The message, a JSON document the delivery worker renders.
    pub payload: String,
    /// When the notification was decided; it is due for delivery from then on (and at once
    /// when a claim's `now` lies more than [`CLOCK_BACK_TOLERANCE`] before it: the clock went
    /// back).
    pub created_at: DateTime<Utc>,
    /// The incident it belongs to, if any. The items of one incident and channel are delivered
    /// in the order they were queued (see *Delivery order* in the crate documentation); `None`
    /// puts no constraint on the item.
    pub incident: Option<String>,
}

/// An incident change made by a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentChange {
    /// Opens incident `id`. `monitor` must be the transition's monitor. If an incident with
    /// this id already exists, nothing changes ([`TransitionOutcome::incident_applied`] is false).
    Open {
        id: String,
        monitor: String,
        opened_at: DateTime<Utc>,
        reason: String,
    },
    /// Closes incident `id`. If it is unknown or already closed, nothing changes
    /// ([`TransitionOutcome::incident_applied`] is false).
    Close {
        id: String,
        closed_at: DateTime<Utc>,
    },
}

/// What [`Store::transition`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionOutcome {
    /// The state's version after this transition: 1 after the first one, +1 on each later one.
    pub version: i64,
    /// Notifications added to the outbox.
    pub notifications_inserted: usize,
    /// Notifications skipped because their idempotency key was already in the outbox.
    pub notifications_ignored: usize,
    /// Whether the incident change took effect (false when there was none, or when it was an
    /// open of an existing id or a close of an unknown or closed incident).
    pub incident_applied: bool,
}

/// One location's result of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub monitor: String,
    pub location: String,
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// The observation, a JSON document.
    pub data: String,
    /// The numbers measured, by name (`total_ms`, `status`, `group_lag`), kept with the
    /// location's latest result.
    pub metrics: Vec<(String, f64)>,
    /// The names among `metrics` to summarize per minute and per hour (the ones worth a
    /// percentile); empty: all of them.
    pub summarize: Vec<String>,
}

/// A rollup's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Minute,
    Hour,
}

impl Step {
    pub const ALL: [Step; 2] = [Step::Minute, Step::Hour];

    /// Its length in seconds (the `step` column).
    pub fn seconds(self) -> i64 {
        match self {
            Step::Minute => 60,
            Step::Hour => 3600,
        }
    }
}

/// The checks of one monitor at one location within one minute or hour.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub monitor: String,
    pub location: String,
    pub step: Step,
    /// The start of the minute or hour.
    pub bucket: DateTime<Utc>,
    pub checks: u64,
    pub failures: u64,
    /// Per metric: count, min, max, sum and percentiles.
    pub metrics: std::collections::BTreeMap<String, Summary>,
}

/// An outbox item leased to a worker by [`Store::claim_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub idempotency_key: String,
    pub channel: String,
    /// JSON document.
    pub payload: String,
    pub created_at: DateTime<Utc>,
    /// Attempts including this one: 1 on the first claim. An attempt whose worker died (its
    /// lease expired) counts too.
    pub attempts: u32,
    /// The error of the previous failed attempt.
    pub last_error: Option<String>,
    /// The incident it belongs to ([`NewNotification::incident`]); `None` also for items
    /// queued before schema version 2.
    pub incident: Option<String>,
    /// Time spent retrying up to this attempt: the sum of the gaps between successive claims,
    /// each clamped to `[0, RETRY_GAP_CAP]`; zero on the first attempt. Wall-clock steps add at
    /// most [`RETRY_GAP_CAP`] each. Give up on `retried`, not on `now - created_at`.
    pub retried: Duration,
}

/// The oldest undelivered outbox item, for health checks ([`Store::oldest_undelivered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInfo {
    pub id: i64,
    pub channel: String,
    /// The monitor whose transition queued it.
    pub monitor: String,
    pub created_at: DateTime<Utc>,
    /// Claims so far (0: never attempted).
    pub attempts: u32,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Waiting for `next_attempt_at`, or due and not leased (or its lease expired).
    Pending,
    /// Leased to a worker until `lease_until` (as of the time the row was read), that end being
    /// at most [`MAX_LEASE`] after `now` (a later one counts as expired).
    Leased,
    Delivered,
    GaveUp,
}

/// A full outbox row, for tests and diagnostics ([`Store::list_outbox`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub idempotency_key: String,
    /// The monitor whose transition queued it.
    pub monitor: String,
    pub channel: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The worker that claimed it last (kept after delivery or giving up).
    pub leased_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub gave_up_at: Option<DateTime<Utc>>,
    /// See [`OutboxItem::incident`].
    pub incident: Option<String>,
    /// The `now` of the last claim; `None` before the first (and for claims made before schema
    /// version 2).
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// See [`OutboxItem::retried`] (as of the last claim).
    pub retried: Duration,
}

impl OutboxEntry {
    /// The row's status at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> OutboxStatus {
        if self.delivered_at.is_some() {
            OutboxStatus::Delivered
        } else if self.gave_up_at.is_some() {
            OutboxStatus::GaveUp
        } else if self.lease_until.is_some_and(|until| {
            until > now
                && TimeDelta::from_std(MAX_LEASE)
                    .ok()
                    .and_then(|cap| now.checked_add_signed(cap))
                    .is_none_or(|limit| until <= limit)
        }) {
            OutboxStatus::Leased
        } else {
            OutboxStatus::Pending
        }
    }
}

/// An incident of one monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: String,
    pub monitor: String,
    pub opened_at: DateTime<Utc>,
    pub reason: String,
    /// `None` while open.
    pub closed_at: Option<DateTime<Utc>>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }
}
