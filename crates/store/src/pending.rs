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

/// What quiet ticks wrote since the last flush.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Per monitor: the version of the stored state the quiet state was derived from, and the
    /// quiet state.
    pub states: HashMap<String, (i64, String)>,
    /// Per (monitor, location).
    pub latest: HashMap<(String, String), LatestRow>,
    /// Per (monitor, location, step, bucket start in ns).
    pub rollups: HashMap<(String, String, Step, i64), RollupDelta>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.states.is_empty() && self.latest.is_empty() && self.rollups.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.states.len() + self.latest.len() + self.rollups.len() >= MAX_PENDING
    }

    /// The quiet state derived from stored `version`, if one waits.
    pub fn state(&self, monitor: &str, version: i64) -> Option<&str> {
        self.states
            .get(monitor)
            .filter(|(base, _)| *base == version)
            .map(|(_, state)| state.as_str())
    }

    /// Whether the newest waiting result of (`monitor`, `location`) failed: `None` when none
    /// waits.
    pub fn latest_ok(&self, monitor: &str, location: &str) -> Option<bool> {
        self.latest
            .get(&(monitor.to_string(), location.to_string()))
            .map(|l| l.row.ok)
    }

    /// Take back `older`, whose flush failed: what was added since wins for states and latest
    /// results; rollup counts add up.
    pub fn absorb(&mut self, older: Pending) {
        for (monitor, state) in older.states {
            self.states.entry(monitor).or_insert(state);
        }
        for (key, waiting) in older.latest {
            match self.latest.get(&key) {
                Some(newer) if newer.at >= waiting.at => {}
                _ => {
                    self.latest.insert(key, waiting);
                }
            }
        }
        for (key, delta) in older.rollups {
            let into = self.rollups.entry(key).or_default();
            into.checks += delta.checks;
            into.failures += delta.failures;
            for (name, summary) in delta.metrics {
                match into.metrics.get_mut(&name) {
                    Some(s) => s.merge(&summary),
                    None => {
                        into.metrics.insert(name, summary);
                    }
                }
            }
        }
    }

    /// Count `row` (taken at `at` ns) in its latest result and its rollups.
    pub fn add_result(&mut self, row: &ResultRow, at: i64) {
        for step in Step::ALL {
            let key = (
                row.monitor.clone(),
                row.location.clone(),
                step,
                crate::shared::bucket_of(at, step),
            );
            let delta = self.rollups.entry(key).or_default();
            delta.checks += 1;
            delta.failures += i64::from(!row.ok);
            crate::shared::add_metrics(&mut delta.metrics, row);
        }
        let key = (row.monitor.clone(), row.location.clone());
        match self.latest.get_mut(&key) {
            Some(waiting) if waiting.at > at => {}
            Some(waiting) => {
                waiting.row = row.clone();
                waiting.at = at;
            }
            None => {
                self.latest.insert(
                    key,
                    LatestRow {
                        row: row.clone(),
                        at,
                    },
                );
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
}

/// [`crate::Store::commit_quiet_tick`] for any backend: `ats` are the results' times in ns
/// (checked by the caller).
pub(crate) fn quiet_tick(
    pending: &Mutex<Pending>,
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
    // Every location passed at its previous result (else this one is a recovery, kept in
    // full by the durable path).
    for row in results {
        let passed = match pending.latest_ok(monitor, &row.location) {
            Some(ok) => ok,
            None => reads.latest_ok(monitor, &row.location)?,
        };
        if !passed {
            return Ok(None);
        }
    }
    // An unreadable state is the durable path's to report.
    let Ok((Some(stored), version)) = reads.state(monitor) else {
        return Ok(None);
    };
    let previous = pending.state(monitor, version).unwrap_or(&stored);
    let Some(next) = quiet(Some(previous)) else {
        return Ok(None);
    };
    check_json("monitor state", &next)?;
    pending.states.insert(monitor.to_string(), (version, next));
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
    match pending.states.remove(monitor) {
        Some((base, state)) if base == version => Some(state),
        _ => None,
    }
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
