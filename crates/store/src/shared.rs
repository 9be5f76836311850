//! What the backends share: input checks, the rollup merge, and the choice of items
//! [`crate::Store::claim_due`] leases. Pure logic; each backend runs its own SQL around it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::time::{nanos, to_db};
use crate::{
    CLOCK_BACK_TOLERANCE, IncidentChange, MAX_LEASE, ObservationRow, ResultRow, SHARDS, Step,
    StoreError, Summary, Transition,
};

pub(crate) fn check_json(what: &'static str, text: &str) -> Result<(), StoreError> {
    // Validated without building the document.
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(drop)
        .map_err(|e| StoreError::InvalidJson {
            what,
            message: e.to_string(),
        })
}

/// The input of [`crate::Store::claim_fired`] as the backends write it: one entry per monitor
/// (the latest of its fire times when it is named more than once), in name order (so that
/// concurrent claims take row locks in the same order), times in nanoseconds.
pub(crate) fn fired_input(
    fired: &[(String, DateTime<Utc>)],
) -> Result<BTreeMap<&str, i64>, StoreError> {
    let mut out: BTreeMap<&str, i64> = BTreeMap::new();
    for (monitor, at) in fired {
        check_not_empty("monitor name", monitor)?;
        let at = to_db(*at)?;
        let entry = out.entry(monitor.as_str()).or_insert(at);
        *entry = (*entry).max(at);
    }
    Ok(out)
}

/// The claimed fire time beyond which [`crate::Store::claim_fired`] takes the clock to have
/// gone back: `now` + [`CLOCK_BACK_TOLERANCE`] in nanoseconds (saturating).
pub(crate) fn future_limit(now: DateTime<Utc>) -> Result<i64, StoreError> {
    Ok(to_db(now)?.saturating_add(nanos(CLOCK_BACK_TOLERANCE)))
}

pub(crate) fn check_not_empty(what: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::InvalidInput(format!("{what} is empty")));
    }
    Ok(())
}

/// A lease `claim_due` and `extend_lease` accept: more than zero, at most [`MAX_LEASE`].
pub(crate) fn check_lease(lease: Duration) -> Result<(), StoreError> {
    if lease.is_zero() {
        return Err(StoreError::InvalidInput("lease is zero".into()));
    }
    if lease > MAX_LEASE {
        return Err(StoreError::InvalidInput(format!(
            "lease of {lease:?} is longer than the maximum of {MAX_LEASE:?}"
        )));
    }
    Ok(())
}

pub(crate) fn to_count(n: i64) -> Result<usize, StoreError> {
    usize::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
}

/// The checks `commit_tick` makes before it takes any lock: every result is about `monitor`,
/// its data is JSON and its time storable. Returns the results' times in nanoseconds.
pub(crate) fn check_tick(monitor: &str, results: &[ResultRow]) -> Result<Vec<i64>, StoreError> {
    if let Some(row) = results.iter().find(|row| row.monitor != monitor) {
        return Err(StoreError::InvalidInput(format!(
            "a result of monitor {:?} in a tick of {monitor:?}",
            row.monitor
        )));
    }
    check_results(results)
}

/// Checks result rows before any lock is taken; returns their times in nanoseconds.
pub(crate) fn check_results(rows: &[ResultRow]) -> Result<Vec<i64>, StoreError> {
    rows.iter()
        .map(|row| {
            check_json("result data", &row.data)?;
            to_db(row.at)
        })
        .collect()
}

/// Observation rows, checked: each one's slot and time in nanoseconds, and the batch's
/// distinct locations in name order.
pub(crate) struct CheckedObservations<'a> {
    pub times: Vec<(i64, i64)>,
    pub locations: BTreeSet<&'a str>,
}

/// Checks observation rows before any lock is taken.
pub(crate) fn check_observations(
    rows: &[ObservationRow],
) -> Result<CheckedObservations<'_>, StoreError> {
    let mut times = Vec::with_capacity(rows.len());
    let mut locations = BTreeSet::new();
    for row in rows {
        check_not_empty("monitor name", &row.monitor)?;
        check_not_empty("location name", &row.location)?;
        times.push((to_db(row.slot)?, to_db(row.at)?));
        locations.insert(row.location.as_str());
    }
    Ok(CheckedObservations { times, locations })
}

/// What [`crate::Store::claim_shards`] does: the shards `holder` holds afterwards (to renew or
/// take), sorted, and those it releases.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ShardPlan {
    pub held: Vec<u32>,
    pub released: Vec<u32>,
}

/// A stored shard lease: shard, holder and until (ns); no holder: free.
pub(crate) type Lease = (i64, Option<String>, Option<i64>);

/// Plans [`crate::Store::claim_shards`] for `holder` given the other live holders (`others`,
/// it may name `holder` too) and the stored leases.
/// A lease is live when it ends after `now` and at most [`MAX_LEASE`] after it.
pub(crate) fn plan_shards(
    holder: &str,
    others: &[String],
    leases: &[Lease],
    times: ClaimTimes,
) -> ShardPlan {
    let ClaimTimes { now, lease_cap, .. } = times;
    let live_holders: HashSet<&str> = others.iter().map(String::as_str).chain([holder]).collect();
    let fair = SHARDS.div_ceil(live_holders.len() as u32) as usize;
    let mut mine = BTreeSet::new();
    let mut taken = BTreeSet::new();
    for (shard, by, until) in leases {
        let Some(shard) = u32::try_from(*shard).ok().filter(|s| *s < SHARDS) else {
            continue;
        };
        match by.as_deref() {
            Some(by) if by == holder => {
                mine.insert(shard);
            }
            Some(_) if until.is_some_and(|until| until > now && until <= lease_cap) => {
                taken.insert(shard);
            }
            _ => {}
        }
    }
    let released: Vec<u32> = mine.iter().copied().skip(fair).collect();
    let free: Vec<u32> = (0..SHARDS)
        .filter(|s| !taken.contains(s) && !mine.contains(s))
        .take(fair.saturating_sub(mine.len()))
        .collect();
    let mut held: Vec<u32> = mine.into_iter().take(fair).chain(free).collect();
    held.sort_unstable();
    ShardPlan { held, released }
}

/// The next version after `version`, for `monitor`'s state.
pub(crate) fn next_version(monitor: &str, version: i64) -> Result<i64, StoreError> {
    version
        .checked_add(1)
        .ok_or_else(|| StoreError::UnreadableState {
            monitor: monitor.to_string(),
            message: format!("its version {version} can't be incremented"),
        })
}

/// A transition's output, checked: the notifications' creation times and the incident
/// change's time, in nanoseconds. Nothing is written unless all of it is valid.
pub(crate) struct CheckedTransition {
    pub created: Vec<i64>,
    pub incident_at: Option<i64>,
}

pub(crate) fn check_transition(
    monitor: &str,
    transition: &Transition,
) -> Result<CheckedTransition, StoreError> {
    check_json("monitor state", &transition.state)?;
    let mut created = Vec::with_capacity(transition.notifications.len());
    for n in &transition.notifications {
        check_not_empty("notification idempotency key", &n.idempotency_key)?;
        check_json("notification payload", &n.payload)?;
        created.push(to_db(n.created_at)?);
    }
    let incident_at = match &transition.incident {
        None => None,
        Some(IncidentChange::Open {
            monitor: incident_monitor,
            id,
            ..
        }) if incident_monitor != monitor => {
            return Err(StoreError::InvalidInput(format!(
                "incident {id} opened for monitor {incident_monitor:?} in a transition of {monitor:?}"
            )));
        }
        Some(IncidentChange::Open { opened_at, .. }) => Some(to_db(*opened_at)?),
        Some(IncidentChange::Close { closed_at, .. }) => Some(to_db(*closed_at)?),
    };
    Ok(CheckedTransition {
        created,
        incident_at,
    })
}

/// A result's finite metrics as the JSON object `latest.metrics` holds.
pub(crate) fn latest_metrics(row: &ResultRow) -> String {
    let metrics: serde_json::Map<String, serde_json::Value> = row
        .metrics
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| (k.clone(), serde_json::json!(v)))
        .collect();
    serde_json::Value::Object(metrics).to_string()
}

/// The start (ns) of the `step` bucket holding `at` (ns).
pub(crate) fn bucket_of(at: i64, step: Step) -> i64 {
    let width = step.seconds() * 1_000_000_000;
    at - at.rem_euclid(width)
}

/// Add `row`'s finite metrics (those it asks to summarize) to `metrics`.
pub(crate) fn add_metrics(metrics: &mut BTreeMap<String, Summary>, row: &ResultRow) {
    let wanted = |name: &str| row.summarize.is_empty() || row.summarize.iter().any(|s| s == name);
    for (name, value) in row
        .metrics
        .iter()
        .filter(|(name, v)| v.is_finite() && wanted(name))
    {
        match metrics.get_mut(name) {
            Some(s) => s.add(*value),
            None => {
                metrics.insert(name.clone(), Summary::of(*value));
            }
        }
    }
}

/// A rollup's `metrics` document (`stored`, `None` for a new rollup) with `row`'s finite
/// metrics added. A document this build can't read (hand-edited) starts over rather than
/// failing the tick.
pub(crate) fn merge_rollup_metrics(
    stored: Option<&str>,
    row: &ResultRow,
) -> Result<String, StoreError> {
    let mut metrics = read_rollup_metrics(stored);
    add_metrics(&mut metrics, row);
    serde_json::to_string(&metrics).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A rollup's `metrics` document (`stored`) with the summaries of `delta` merged in.
pub(crate) fn merge_rollup_delta(
    stored: Option<&str>,
    delta: &BTreeMap<String, Summary>,
) -> Result<String, StoreError> {
    let mut metrics = read_rollup_metrics(stored);
    for (name, summary) in delta {
        match metrics.get_mut(name) {
            Some(s) => s.merge(summary),
            None => {
                metrics.insert(name.clone(), summary.clone());
            }
        }
    }
    serde_json::to_string(&metrics).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn read_rollup_metrics(stored: Option<&str>) -> BTreeMap<String, Summary> {
    match stored {
        Some(text) => serde_json::from_str(text).unwrap_or_default(),
        None => BTreeMap::new(),
    }
}

/// An item `claim_due` considers.
pub(crate) struct Candidate {
    pub id: i64,
    pub incident: Option<String>,
    pub channel: String,
    pub last_attempt_at: Option<i64>,
    pub retried_ns: i64,
}

/// The instants `claim_due` compares with, in nanoseconds.
#[derive(Clone, Copy)]
pub(crate) struct ClaimTimes {
    pub now: i64,
    /// `now + CLOCK_BACK_TOLERANCE`: a last attempt after this means the clock went back.
    pub clock_back: i64,
    /// `now + MAX_LEASE`: a lease ending after this counts as expired.
    pub lease_cap: i64,
}

impl ClaimTimes {
    pub fn new(now: i64) -> Self {
        ClaimTimes {
            now,
            clock_back: now.saturating_add(nanos(CLOCK_BACK_TOLERANCE)),
            lease_cap: now.saturating_add(nanos(MAX_LEASE)),
        }
    }
}

/// Which claimable items a scan of [`select_claims`] walks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Scan {
    /// Due by `next_attempt_at` (`<= now`), by `(next_attempt_at, id)`.
    Due,
    /// Not due by `next_attempt_at` (`> now`) but last attempted (or created) more than
    /// the tolerance after `now`, by `(next_attempt_at, id)`.
    ClockBack,
}

/// Walks the claimable items of a [`Scan`], handing each to the visitor until it returns
/// `false` (enough) or the items run out.
pub(crate) type ScanFn<'a> =
    dyn for<'v> FnMut(Scan, &'v mut VisitFn<'v>) -> Result<(), StoreError> + 'a;

/// Takes one candidate of a scan; returns whether to go on.
pub(crate) type VisitFn<'a> = dyn FnMut(Candidate) -> Result<bool, StoreError> + 'a;

/// The unfinished items of `item`'s incident and channel before it, in id order, each with
/// whether it is claimable now (by this caller: a backend that locks rows reports one another
/// transaction holds as not claimable).
pub(crate) type EarlierFn<'a> =
    dyn FnMut(&Candidate) -> Result<Vec<(Candidate, bool)>, StoreError> + 'a;

/// Picks the items `claim_due` leases, in the order it returns them (see
/// [`crate::Store::claim_due`]).
pub(crate) fn select_claims(
    limit: usize,
    scan: &mut ScanFn<'_>,
    earlier: &mut EarlierFn<'_>,
) -> Result<Vec<Candidate>, StoreError> {
    let mut selected: Vec<Candidate> = Vec::new();
    let mut taken: HashSet<i64> = HashSet::new();
    // Everything the clock-back scan finds has `next_attempt_at > now`, everything the due
    // scan finds `<= now`: one after the other, they are in (next_attempt_at, id) order.
    for kind in [Scan::Due, Scan::ClockBack] {
        if selected.len() >= limit {
            break;
        }
        scan(kind, &mut |item| {
            if taken.contains(&item.id) {
                return Ok(true);
            }
            // The earlier unfinished items of its incident and channel must all be claimed in
            // this call: those not yet taken are taken now, before it, if they are claimable.
            let mut pull = Vec::new();
            if item.incident.is_some() {
                for (before, claimable) in earlier(&item)? {
                    if taken.contains(&before.id) {
                        continue;
                    }
                    if !claimable {
                        return Ok(true);
                    }
                    pull.push(before);
                }
            }
            pull.push(item);
            // A prefix in id order is valid on its own, so stopping at the limit is fine.
            for item in pull.into_iter().take(limit - selected.len()) {
                taken.insert(item.id);
                selected.push(item);
            }
            Ok(selected.len() < limit)
        })?;
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(shard: i64, holder: &str, until: i64) -> Lease {
        (shard, Some(holder.to_string()), Some(until))
    }

    #[test]
    fn shards_are_shared_fairly() {
        let now = 1_000;
        let times = ClaimTimes::new(now);
        let alone = plan_shards("a", &[], &[], times);
        assert_eq!(alone.held, (0..SHARDS).collect::<Vec<_>>());
        assert!(alone.released.is_empty());

        // "b" is live: "a" keeps its lowest 32 and releases the rest.
        let all_a: Vec<_> = (0..64).map(|s| lease(s, "a", now + 10)).collect();
        let halved = plan_shards("a", &["a".into(), "b".into()], &all_a, times);
        assert_eq!(halved.held, (0..32).collect::<Vec<_>>());
        assert_eq!(halved.released, (32..64).collect::<Vec<_>>());
        // "b" takes nothing leased to "a" while it lasts.
        assert!(
            plan_shards("b", &["a".into()], &all_a, times)
                .held
                .is_empty()
        );
        // An expired lease, a released one or one ending past now + MAX_LEASE is free.
        let leases = [
            lease(0, "a", now),
            (1, None, None),
            lease(2, "a", now + nanos(MAX_LEASE) + 1),
            lease(3, "a", now + 1),
        ];
        let b = plan_shards("b", &["a".into()], &leases, times);
        assert_eq!(b.held.len(), 32);
        assert_eq!(&b.held[..3], &[0, 1, 2]);
        assert!(!b.held.contains(&3));
        // Rows out of range are ignored.
        let odd = plan_shards(
            "a",
            &[],
            &[lease(-1, "b", now + 1), lease(64, "b", now + 1)],
            times,
        );
        assert_eq!(odd.held.len(), 64);
        // More holders than shards: one shard each at most.
        let many: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        assert_eq!(plan_shards("x", &many, &[], times).held, [0]);
    }
}
