//! Quiet ticks, kept in memory until the next flush (see [`crate::Store::commit_quiet_tick`]).
//!
//! A quiet tick is a passing tick that changes nothing a person is told about: no
//! notification, no incident change, no status change, every location passing now and at its
//! previous result. Its writes — the monitor's new state (counters and the time of the last
//! tick), each location's latest result and its minute and hour rollups — are collected here
//! and written together by [`crate::Store::flush`], in one transaction with the cheaper sync.
//! A crash loses at most one flush interval of them: counts in the rollups and the newest
//! "latest" row, never an alert.
//!
//! The state written by a flush is conditional on the version it was derived from: a state
//! some other writer (another process, a tick that was not quiet) changed meanwhile wins, and
//! the quiet one is dropped.
//!
//! A backend whose other writers it can notice may also keep [`Known`]: what it last read or
//! wrote of each quiet monitor (state, version, its locations' latest verdicts), so that a
//! quiet tick reads nothing from the database. Every write of this process that touches a
//! monitor's state or latest rows forgets that monitor; a write by another connection forgets
//! them all (the SQLite backend sees it in `PRAGMA data_version` after each of its own
//! commits, at the latest at the next flush); a flush whose conditional state write missed
//! forgets that monitor.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use crate::shared::check_json;
use crate::{ResultRow, Step, StoreError, Summary, TransitionOutcome};

/// How many rollup, latest and state entries may wait before quiet ticks are refused (and
/// take the durable path) until the next flush.
pub(crate) const MAX_PENDING: usize = 200_000;

/// A rollup's growth since the last flush.
#[derive(Debug, Default)]
pub(crate) struct RollupDelta {
    pub checks: i64,
    pub failures: i64,
    pub metrics: BTreeMap<String, Summary>,
}

/// A location's newest result, waiting.
#[derive(Debug)]
pub(crate) struct LatestRow {
    pub row: ResultRow,
    /// `row.at` in nanoseconds.
    pub at: i64,
}

/// What waits for one location of one monitor.
#[derive(Debug, Default)]
struct LocationPending {
    latest: Option<LatestRow>,
    /// (step, bucket start in ns, growth): a handful (two steps, a new bucket now and then).
    rollups: Vec<(Step, i64, RollupDelta)>,
}

/// What waits for one monitor.
#[derive(Debug, Default)]
struct MonitorPending {
    /// The version of the stored state the quiet state was derived from, and the quiet state.
    state: Option<(i64, String)>,
    locations: HashMap<String, LocationPending>,
}

/// What quiet ticks wrote since the last flush. Keyed so that a tick of a monitor already
/// waiting allocates nothing new (maps looked up by `&str`, values overwritten in place).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    monitors: HashMap<String, MonitorPending>,
    /// States, latest rows and rollups waiting (see [`MAX_PENDING`]).
    entries: usize,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn is_full(&self) -> bool {
        self.entries >= MAX_PENDING
    }

    /// Whether anything of `monitor` waits (its state, latest rows or rollups).
    pub fn waits_for(&self, monitor: &str) -> bool {
        self.monitors.contains_key(monitor)
    }

    /// The quiet state derived from stored `version`, if one waits.
    pub fn state(&self, monitor: &str, version: i64) -> Option<&str> {
        self.monitors
            .get(monitor)?
            .state
            .as_ref()
            .filter(|(base, _)| *base == version)
            .map(|(_, state)| state.as_str())
    }

    /// The waiting state of `monitor`, taken (whatever version it came from).
    pub fn take_state(&mut self, monitor: &str) -> Option<(i64, String)> {
        let taken = self.monitors.get_mut(monitor)?.state.take();
        if taken.is_some() {
            self.entries -= 1;
        }
        taken
    }

    fn set_state(&mut self, monitor: &str, version: i64, state: String) {
        let m = self.monitor(monitor);
        let new = m.state.is_none();
        m.state = Some((version, state));
        if new {
            self.entries += 1;
        }
    }

    fn monitor(&mut self, monitor: &str) -> &mut MonitorPending {
        if !self.monitors.contains_key(monitor) {
            self.monitors
                .insert(monitor.to_string(), MonitorPending::default());
        }
        self.monitors.get_mut(monitor).expect("inserted above")
    }

    /// Whether the newest waiting result of (`monitor`, `location`) passed: `None` when none
    /// waits.
    pub fn latest_ok(&self, monitor: &str, location: &str) -> Option<bool> {
        let latest = self
            .monitors
            .get(monitor)?
            .locations
            .get(location)?
            .latest
            .as_ref()?;
        Some(latest.row.ok)
    }

    /// Count `row` (taken at `at` ns) in its latest result and its rollups.
    pub fn add_result(&mut self, row: &ResultRow, at: i64) {
        let m = self.monitor(&row.monitor);
        if !m.locations.contains_key(&row.location) {
            m.locations
                .insert(row.location.clone(), LocationPending::default());
        }
        let l = m.locations.get_mut(&row.location).expect("inserted above");
        let mut added = 0;
        for step in Step::ALL {
            let bucket = crate::shared::bucket_of(at, step);
            let index = match l
                .rollups
                .iter()
                .position(|(s, b, _)| *s == step && *b == bucket)
            {
                Some(index) => index,
                None => {
                    l.rollups.push((step, bucket, RollupDelta::default()));
                    added += 1;
                    l.rollups.len() - 1
                }
            };
            let delta = &mut l.rollups[index].2;
            delta.checks += 1;
            delta.failures += i64::from(!row.ok);
            crate::shared::add_metrics(&mut delta.metrics, row);
        }
        match &mut l.latest {
            Some(waiting) if waiting.at > at => {}
            Some(waiting) => {
                // In place, reusing the buffers (a derived `clone_from` would not).
                let w = &mut waiting.row;
                w.at = row.at;
                w.ok = row.ok;
                w.data.clone_from(&row.data);
                w.metrics.clone_from(&row.metrics);
                w.summarize.clone_from(&row.summarize);
                waiting.at = at;
            }
            None => {
                l.latest = Some(LatestRow {
                    row: row.clone(),
                    at,
                });
                added += 1;
            }
        }
        self.entries += added;
    }

    /// Drop the waiting latest result of `row`'s location if `row` (at `at` ns) is as new:
    /// it was written by the durable path, and a quiet tick must judge against it.
    fn supersede_latest(&mut self, row: &ResultRow, at: i64) {
        let Some(l) = self
            .monitors
            .get_mut(&row.monitor)
            .and_then(|m| m.locations.get_mut(&row.location))
        else {
            return;
        };
        if l.latest.as_ref().is_some_and(|waiting| waiting.at <= at) {
            l.latest = None;
            self.entries -= 1;
        }
    }

    /// The waiting states (monitor, base version, state), by monitor.
    pub fn states(&self) -> Vec<(&str, i64, &str)> {
        let mut all: Vec<_> = self
            .monitors
            .iter()
            .filter_map(|(name, m)| {
                m.state
                    .as_ref()
                    .map(|(version, state)| (name.as_str(), *version, state.as_str()))
            })
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// The waiting latest rows, by monitor and location.
    pub fn latest(&self) -> Vec<&LatestRow> {
        let mut all: Vec<&LatestRow> = self
            .monitors
            .values()
            .flat_map(|m| m.locations.values().filter_map(|l| l.latest.as_ref()))
            .collect();
        all.sort_unstable_by(|a, b| {
            (&a.row.monitor, &a.row.location).cmp(&(&b.row.monitor, &b.row.location))
        });
        all
    }

    /// The waiting rollup growths (monitor, location, step, bucket, growth), by key.
    pub fn rollups(&self) -> Vec<(&str, &str, Step, i64, &RollupDelta)> {
        let mut all: Vec<_> = self
            .monitors
            .iter()
            .flat_map(|(monitor, m)| {
                m.locations.iter().flat_map(move |(location, l)| {
                    l.rollups.iter().map(move |(step, bucket, delta)| {
                        (monitor.as_str(), location.as_str(), *step, *bucket, delta)
                    })
                })
            })
            .collect();
        all.sort_unstable_by(|a, b| {
            (a.0, a.1, a.2.seconds(), a.3).cmp(&(b.0, b.1, b.2.seconds(), b.3))
        });
        all
    }

    /// Take back `older`, whose flush failed: what was added since wins for states and latest
    /// results; rollup counts add up.
    pub fn absorb(&mut self, older: Pending) {
        for (name, old) in older.monitors {
            if let Some((version, state)) = old.state
                && self.monitors.get(&name).is_none_or(|m| m.state.is_none())
            {
                self.set_state(&name, version, state);
            }
            for (location, old) in old.locations {
                let m = self.monitor(&name);
                if !m.locations.contains_key(&location) {
                    m.locations
                        .insert(location.clone(), LocationPending::default());
                }
                let l = m.locations.get_mut(&location).expect("inserted above");
                let mut added = 0;
                if let Some(waiting) = old.latest {
                    match &l.latest {
                        Some(newer) if newer.at >= waiting.at => {}
                        Some(_) => l.latest = Some(waiting),
                        None => {
                            l.latest = Some(waiting);
                            added += 1;
                        }
                    }
                }
                for (step, bucket, delta) in old.rollups {
                    match l
                        .rollups
                        .iter_mut()
                        .find(|(s, b, _)| *s == step && *b == bucket)
                    {
                        Some((_, _, into)) => {
                            into.checks += delta.checks;
                            into.failures += delta.failures;
                            for (metric, summary) in delta.metrics {
                                match into.metrics.get_mut(&metric) {
                                    Some(s) => s.merge(&summary),
                                    None => {
                                        into.metrics.insert(metric, summary);
                                    }
                                }
                            }
                        }
                        None => {
                            l.rollups.push((step, bucket, delta));
                            added += 1;
                        }
                    }
                }
                self.entries += added;
            }
        }
    }
}

/// What this process last read or wrote of a monitor that ticks quietly: the stored state as
/// it stands once the waiting entries are written, the version it is derived from, and the
/// latest verdict of each location seen.
#[derive(Debug)]
struct KnownMonitor {
    version: i64,
    state: String,
    latest_ok: HashMap<String, bool>,
}

/// The quiet path's memory of what is stored (see the module's documentation). Only for a
/// backend that forgets it whenever someone else may have written.
#[derive(Debug, Default)]
pub(crate) struct Known {
    monitors: HashMap<String, KnownMonitor>,
}

impl Known {
    /// Forget `monitor`: this process is about to write its state or latest rows (or did).
    pub fn forget(&mut self, monitor: &str) {
        self.monitors.remove(monitor);
    }

    /// Forget everything: someone else wrote, or a write failed.
    pub fn clear(&mut self) {
        self.monitors.clear();
    }

    /// The state, its version and whether `location`'s latest result passed, when known.
    fn lookup(&self, monitor: &str, location: &str) -> Option<(&str, i64, bool)> {
        let m = self.monitors.get(monitor)?;
        Some((m.state.as_str(), m.version, *m.latest_ok.get(location)?))
    }

    fn latest_ok(&self, monitor: &str, location: &str) -> Option<bool> {
        self.monitors.get(monitor)?.latest_ok.get(location).copied()
    }

    /// After a quiet tick: `state` at `version`, and every location in `results` passed.
    fn remember(&mut self, monitor: &str, version: i64, state: &str, results: &[ResultRow]) {
        let m = match self.monitors.get_mut(monitor) {
            Some(m) if m.version == version => m,
            _ => {
                self.monitors.insert(
                    monitor.to_string(),
                    KnownMonitor {
                        version,
                        state: String::new(),
                        latest_ok: HashMap::new(),
                    },
                );
                self.monitors.get_mut(monitor).expect("inserted above")
            }
        };
        m.state.clear();
        m.state.push_str(state);
        for row in results {
            match m.latest_ok.get_mut(&row.location) {
                Some(ok) => *ok = true,
                None => {
                    m.latest_ok.insert(row.location.clone(), true);
                }
            }
        }
    }
}

/// A backend's reads for [`quiet_tick`], on a connection that never waits for a commit.
pub(crate) trait QuietReads {
    /// Whether the stored latest result of (`monitor`, `location`) passed (`false` when there
    /// is none).
    fn latest_ok(&mut self, monitor: &str, location: &str) -> Result<bool, StoreError>;
    /// The stored state and its version (`(None, 0)` before the first transition).
    fn state(&mut self, monitor: &str) -> Result<(Option<String>, i64), StoreError>;
    /// Both at once, where the backend can do it in one read.
    fn state_and_latest_ok(
        &mut self,
        monitor: &str,
        location: &str,
    ) -> Result<(Option<String>, i64, bool), StoreError> {
        let (state, version) = self.state(monitor)?;
        Ok((state, version, self.latest_ok(monitor, location)?))
    }
}

/// [`crate::Store::commit_quiet_tick`] for any backend: `ats` are the results' times in ns
/// (checked by the caller).
pub(crate) fn quiet_tick(
    pending: &Mutex<Pending>,
    known: Option<&Mutex<Known>>,
    reads: &mut dyn QuietReads,
    monitor: &str,
    results: &[ResultRow],
    ats: &[i64],
    quiet: &mut dyn FnMut(Option<&str>) -> Option<String>,
) -> Result<Option<TransitionOutcome>, StoreError> {
    if results.is_empty() || results.iter().any(|row| !row.ok) {
        return Ok(None);
    }
    let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
    if pending.is_full() {
        return Ok(None);
    }
    // Held to the end: a write that forgets this monitor waits until what this tick read is
    // remembered, so it can't be remembered after being forgotten.
    let mut known = known.map(|k| k.lock().unwrap_or_else(PoisonError::into_inner));
    let read: String;
    let (stored, version, first_ok) = match known
        .as_deref()
        .and_then(|k| k.lookup(monitor, &results[0].location))
    {
        Some(hit) => hit,
        None => {
            // An unreadable state is the durable path's to report.
            let Ok((Some(stored), version, first_ok)) =
                reads.state_and_latest_ok(monitor, &results[0].location)
            else {
                return Ok(None);
            };
            read = stored;
            (read.as_str(), version, first_ok)
        }
    };
    // Every location passed at its previous result (else this one is a recovery, kept in
    // full by the durable path).
    for (i, row) in results.iter().enumerate() {
        let passed = match pending.latest_ok(monitor, &row.location) {
            Some(ok) => ok,
            None if i == 0 => first_ok,
            None => match known
                .as_deref()
                .and_then(|k| k.latest_ok(monitor, &row.location))
            {
                Some(ok) => ok,
                None => reads.latest_ok(monitor, &row.location)?,
            },
        };
        if !passed {
            return Ok(None);
        }
    }
    let previous = pending.state(monitor, version).unwrap_or(stored);
    let Some(next) = quiet(Some(previous)) else {
        return Ok(None);
    };
    check_json("monitor state", &next)?;
    if let Some(known) = known.as_deref_mut() {
        known.remember(monitor, version, &next, results);
    }
    pending.set_state(monitor, version, next);
    for (row, at) in results.iter().zip(ats) {
        pending.add_result(row, *at);
    }
    Ok(Some(TransitionOutcome {
        version,
        notifications_inserted: 0,
        notifications_ignored: 0,
        incident_applied: false,
    }))
}

/// The quiet state waiting for `monitor`, if it was derived from stored `version`; taken,
/// since the caller's transition replaces it.
pub(crate) fn take_state(pending: &Mutex<Pending>, monitor: &str, version: i64) -> Option<String> {
    let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
    match pending.take_state(monitor) {
        Some((base, state)) if base == version => Some(state),
        _ => None,
    }
}

/// Results the durable path writes (`ats` their times in ns) replace the waiting latest
/// results they are newer than.
pub(crate) fn supersede_latest(pending: &Mutex<Pending>, rows: &[ResultRow], ats: &[i64]) {
    if rows.is_empty() {
        return;
    }
    let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
    for (row, at) in rows.iter().zip(ats) {
        pending.supersede_latest(row, *at);
    }
}

/// Before a read of `monitor`: `flush` only when something of its own waits. A read sees
/// every tick of the monitor it reads, and reading many monitors one after another
/// (`status`, `/metrics`) costs one flush, not one per monitor while ticks keep arriving.
pub(crate) fn flush_before_read(
    pending: &Mutex<Pending>,
    monitor: &str,
    flush: impl FnOnce() -> Result<usize, StoreError>,
) -> Result<usize, StoreError> {
    let waits = pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .waits_for(monitor);
    if waits { flush() } else { Ok(0) }
}

/// [`crate::Store::flush`] for any backend: `write` writes what waits in one transaction; if
/// it fails, the entries wait for the next flush.
pub(crate) fn flush(
    pending: &Mutex<Pending>,
    write: impl FnOnce(&Pending) -> Result<usize, StoreError>,
) -> Result<usize, StoreError> {
    let taken = {
        let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.is_empty() {
            return Ok(0);
        }
        std::mem::take(&mut *pending)
    };
    let written = write(&taken);
    if written.is_err() {
        pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .absorb(taken);
    }
    written
}
