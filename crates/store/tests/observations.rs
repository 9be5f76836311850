//! Observations pushed by probe agents (stored once per monitor, location and slot, with each
//! location's last report time) and the shard leases several processes share monitors by.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::{Backend, TestDb, t};
use watchpost_store::{
    MAX_LEASE, ObservationRow, ObservationsRecorded, SHARDS, Store, StoreError, shard_of,
};

fn obs(monitor: &str, location: &str, slot: DateTime<Utc>, ok: bool) -> ObservationRow {
    ObservationRow {
        monitor: monitor.to_string(),
        location: location.to_string(),
        slot,
        at: slot + TimeDelta::nanoseconds(1_234_567_891),
        ok,
        data: format!(r#"{{"location":"{location}","ok":{ok}}}"#),
    }
}

fn recorded(stored: usize, duplicates: usize) -> ObservationsRecorded {
    ObservationsRecorded { stored, duplicates }
}

fn reports(store: &dyn Store) -> Vec<(String, DateTime<Utc>)> {
    store.location_reports().unwrap()
}

fn report(location: &str, at: DateTime<Utc>) -> (String, DateTime<Utc>) {
    (location.to_string(), at)
}

fn a_batch_sent_twice_is_stored_once(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let batch = [
        obs("homepage", "gz", t(0), true),
        obs("homepage", "hrb", t(0), false),
        obs("homepage", "gz", t(30), true),
    ];
    assert_eq!(
        store.record_observations(&batch, t(5)).unwrap(),
        recorded(3, 0)
    );
    assert_eq!(reports(&*store), [report("gz", t(5)), report("hrb", t(5))]);

    // Sent again (the agent never saw the answer): all duplicates, the reports still move.
    assert_eq!(
        store.record_observations(&batch, t(40)).unwrap(),
        recorded(0, 3)
    );
    assert_eq!(store.observation_count(None).unwrap(), 3);
    assert_eq!(
        reports(&*store),
        [report("gz", t(40)), report("hrb", t(40))]
    );

    // A batch received earlier but committed later never moves a report back.
    let late = [obs("homepage", "gz", t(60), true)];
    assert_eq!(
        store.record_observations(&late, t(1)).unwrap(),
        recorded(1, 0)
    );
    assert_eq!(
        reports(&*store),
        [report("gz", t(40)), report("hrb", t(40))]
    );

    assert_eq!(store.observation_count(None).unwrap(), 4);
    assert_eq!(store.observation_count(Some("gz")).unwrap(), 3);
    assert_eq!(store.observation_count(Some("hrb")).unwrap(), 1);
    assert_eq!(store.observation_count(Some("nowhere")).unwrap(), 0);

    // Another store on the same data agrees.
    let other = db.open();
    assert_eq!(
        other.record_observations(&batch[..1], t(41)).unwrap(),
        recorded(0, 1)
    );
    assert_eq!(other.observation_count(None).unwrap(), 4);
}

fn duplicates_within_a_batch_count_and_the_first_is_kept(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let first = obs("api", "gz", t(0), true);
    let changed = ObservationRow {
        ok: false,
        at: t(9),
        data: r#"{"second":true}"#.to_string(),
        ..first.clone()
    };
    let other = obs("api", "hrb", t(0), true);
    assert_eq!(
        store
            .record_observations(
                &[first.clone(), changed, other.clone(), first.clone()],
                t(1)
            )
            .unwrap(),
        recorded(2, 2)
    );
    assert_eq!(store.observations("api", t(0)).unwrap(), [first, other]);
    assert_eq!(store.observation_count(None).unwrap(), 2);
}

fn observations_of_a_slot_are_every_locations_by_name(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let hair = t(0) + TimeDelta::nanoseconds(1);
    let batch = [
        obs("homepage", "local", t(0), true),
        obs("homepage", "hrb", t(0), false),
        obs("homepage", "gz", t(0), true),
        obs("homepage", "gz", t(30), false),
        obs("homepage", "gz", hair, true),
        obs("api", "gz", t(0), false),
    ];
    assert_eq!(
        store.record_observations(&batch, t(1)).unwrap(),
        recorded(6, 0)
    );
    // Exact, to the nanosecond.
    assert_eq!(
        store.observations("homepage", t(0)).unwrap(),
        [batch[2].clone(), batch[1].clone(), batch[0].clone()]
    );
    assert_eq!(
        store.observations("homepage", hair).unwrap(),
        [batch[4].clone()]
    );
    assert_eq!(
        store.observations("homepage", t(30)).unwrap(),
        [batch[3].clone()]
    );
    assert_eq!(store.observations("api", t(0)).unwrap(), [batch[5].clone()]);
    assert!(store.observations("homepage", t(60)).unwrap().is_empty());
    assert!(store.observations("nope", t(0)).unwrap().is_empty());
}

fn prune_deletes_observations_of_old_slots(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let batch = [
        obs("homepage", "gz", t(0), true),
        obs("homepage", "hrb", t(0), true),
        obs("homepage", "gz", t(60), true),
        obs("homepage", "gz", t(120), false),
    ];
    store.record_observations(&batch, t(121)).unwrap();
    assert_eq!(store.prune(t(60)).unwrap(), 2);
    assert_eq!(store.observation_count(None).unwrap(), 2);
    assert!(store.observations("homepage", t(0)).unwrap().is_empty());
    assert_eq!(store.observations("homepage", t(60)).unwrap().len(), 1);
    // The report times stay (a location's dead-man switch needs them).
    assert_eq!(
        reports(&*store),
        [report("gz", t(121)), report("hrb", t(121))]
    );
    assert_eq!(store.prune(t(60)).unwrap(), 0);
    // A pruned key can be stored again (keep the retention longer than agents re-send).
    assert_eq!(
        store.record_observations(&batch[..1], t(200)).unwrap(),
        recorded(1, 0)
    );
}

fn invalid_input_stores_nothing(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let good = obs("homepage", "gz", t(0), true);
    let bad = |row: ObservationRow| vec![good.clone(), row];
    let invalid = [
        bad(ObservationRow {
            location: String::new(),
            ..good.clone()
        }),
        bad(ObservationRow {
            monitor: String::new(),
            ..good.clone()
        }),
    ];
    for batch in invalid {
        let err = store.record_observations(&batch, t(1)).unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    }
    let out_of_range = [
        bad(ObservationRow {
            slot: DateTime::<Utc>::MAX_UTC,
            ..good.clone()
        }),
        bad(ObservationRow {
            at: DateTime::<Utc>::MIN_UTC,
            ..good.clone()
        }),
    ];
    for batch in out_of_range {
        let err = store.record_observations(&batch, t(1)).unwrap_err();
        assert!(matches!(err, StoreError::TimeOutOfRange(_)), "{err}");
    }
    let err = store
        .record_observations(std::slice::from_ref(&good), DateTime::<Utc>::MAX_UTC)
        .unwrap_err();
    assert!(matches!(err, StoreError::TimeOutOfRange(_)), "{err}");
    assert_eq!(store.observation_count(None).unwrap(), 0);
    assert!(reports(&*store).is_empty());

    // No rows: nothing stored, no report.
    assert_eq!(
        store.record_observations(&[], t(1)).unwrap(),
        recorded(0, 0)
    );
    assert!(reports(&*store).is_empty());
}

const TTL: Duration = Duration::from_secs(8);

fn all() -> Vec<u32> {
    (0..SHARDS).collect()
}

fn range(shards: std::ops::Range<u32>) -> Vec<u32> {
    shards.collect()
}

fn claim(store: &dyn Store, holder: &str, secs: i64) -> Vec<u32> {
    store.claim_shards(holder, t(secs), TTL).unwrap()
}

/// No shard in two of `sets`.
fn assert_disjoint(sets: &[&[u32]]) {
    let mut seen = BTreeSet::new();
    for set in sets {
        for shard in *set {
            assert!(seen.insert(*shard), "shard {shard} held twice: {sets:?}");
        }
    }
}

fn shards_are_shared_fairly_and_move_when_leases_expire(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let a = claim(&*store, "a", 0);
    assert_eq!(a, all());

    // "b" joins: nothing is free while a's leases last.
    let b_held = claim(&*store, "b", 1);
    assert!(b_held.is_empty(), "{b_held:?}");
    assert_disjoint(&[&a, &b_held]);

    // a's next claim sees b: its fair share is 32, it releases the highest 32 ...
    let a = claim(&*store, "a", 2);
    assert_eq!(a, range(0..32));
    assert_disjoint(&[&a, &b_held]);
    // ... and b's next claim takes exactly those.
    let b_held = claim(&*store, "b", 3);
    assert_eq!(b_held, range(32..64));
    assert_disjoint(&[&a, &b_held]);

    // Renewing changes nothing.
    let a = claim(&*store, "a", 4);
    assert_eq!(a, range(0..32));
    assert_disjoint(&[&a, &b_held]);
    let b_held = claim(&*store, "b", 5);
    assert_eq!(b_held, range(32..64));
    assert_disjoint(&[&a, &b_held]);

    // a stops renewing; its leases end at t(12). Until then b takes none of them.
    let b_held = claim(&*store, "b", 11);
    assert_eq!(b_held, range(32..64));
    assert_disjoint(&[&a, &b_held]);
    let b_held = claim(&*store, "b", 12);
    assert_eq!(b_held, all());

    // a comes back: b's leases are live, so nothing for a until b gives up half.
    let a = claim(&*store, "a", 13);
    assert!(a.is_empty(), "{a:?}");
    assert_disjoint(&[&a, &b_held]);
    let b_held = claim(&*store, "b", 14);
    assert_eq!(b_held, range(0..32));
    let a = claim(&*store, "a", 15);
    assert_eq!(a, range(32..64));
    assert_disjoint(&[&a, &b_held]);
}

fn released_shards_are_free_at_once(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert_eq!(claim(&*store, "a", 0), all());
    assert!(claim(&*store, "b", 0).is_empty());
    store.release_shards("a").unwrap();
    // a no longer counts as live: b's fair share is all of them.
    assert_eq!(claim(&*store, "b", 1), all());
    // Releasing a holder with nothing is fine.
    store.release_shards("never-claimed").unwrap();

    let err = store.release_shards("").unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    for ttl in [Duration::ZERO, MAX_LEASE + Duration::from_secs(1)] {
        let err = store.claim_shards("a", t(1), ttl).unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    }
    let err = store.claim_shards("", t(1), TTL).unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    let err = store
        .claim_shards("a", DateTime::<Utc>::MAX_UTC, TTL)
        .unwrap_err();
    assert!(matches!(err, StoreError::TimeOutOfRange(_)), "{err}");
    // None of that changed anything.
    assert_eq!(claim(&*store, "b", 2), all());
}

fn a_lease_ending_too_far_ahead_counts_as_expired(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert_eq!(claim(&*store, "a", 10_000), all());
    // The clock went back two hours: a's leases end more than MAX_LEASE after now.
    assert_eq!(claim(&*store, "b", 10_000 - 7_200), all());
    // One hour back is within MAX_LEASE: b's leases hold.
    assert!(claim(&*store, "a", 10_000 - 7_200 - 3_590).is_empty());
}

/// `op`, made again while the store is busy (several stores contending for one SQLite file on
/// a loaded machine can wait past the busy timeout).
fn busy_retried<T>(mut op: impl FnMut() -> Result<T, StoreError>) -> T {
    for _ in 0..10 {
        match op() {
            Err(StoreError::Busy) => std::thread::sleep(Duration::from_millis(100)),
            other => return other.unwrap(),
        }
    }
    op().unwrap()
}

fn concurrent_claims_never_share_a_shard(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    const HOLDERS: usize = 4;
    const ROUNDS: usize = 6;
    let url = db.url();
    let barrier = Barrier::new(HOLDERS);
    // Per round, what each holder was given. Each holder claims once per round, all at the
    // same moment, so the sets of one round must be disjoint.
    let rounds: Mutex<Vec<Vec<Vec<u32>>>> = Mutex::new(vec![Vec::new(); ROUNDS]);
    thread::scope(|scope| {
        for h in 0..HOLDERS {
            let (url, barrier, rounds) = (&url, &barrier, &rounds);
            scope.spawn(move || {
                let store = watchpost_store::open(url).unwrap();
                let holder = format!("replica-{h}");
                for round in 0..ROUNDS {
                    barrier.wait();
                    let held = busy_retried(|| {
                        store.claim_shards(&holder, t(round as i64), Duration::from_secs(60))
                    });
                    rounds.lock().unwrap()[round].push(held);
                    barrier.wait();
                }
            });
        }
    });
    for (round, sets) in rounds.into_inner().unwrap().iter().enumerate() {
        let sets: Vec<&[u32]> = sets.iter().map(Vec::as_slice).collect();
        assert_eq!(sets.len(), HOLDERS, "round {round}");
        assert_disjoint(&sets);
        for set in &sets {
            assert!(set.len() <= SHARDS as usize);
        }
    }
    // Once every holder has claimed with all of them live, one more claim each gives each
    // its fair share, and together all the shards.
    let store = db.open();
    let last: Vec<Vec<u32>> = (0..HOLDERS)
        .map(|h| claim(&*store, &format!("replica-{h}"), ROUNDS as i64))
        .collect();
    let sets: Vec<&[u32]> = last.iter().map(Vec::as_slice).collect();
    assert_disjoint(&sets);
    for set in &sets {
        assert_eq!(set.len(), SHARDS as usize / HOLDERS, "{sets:?}");
    }
}

both_backends!(
    a_batch_sent_twice_is_stored_once,
    duplicates_within_a_batch_count_and_the_first_is_kept,
    observations_of_a_slot_are_every_locations_by_name,
    prune_deletes_observations_of_old_slots,
    invalid_input_stores_nothing,
    shards_are_shared_fairly_and_move_when_leases_expire,
    released_shards_are_free_at_once,
    a_lease_ending_too_far_ahead_counts_as_expired,
    concurrent_claims_never_share_a_shard,
);

#[test]
fn shard_of_is_stable_and_in_range() {
    // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c.
    assert_eq!(shard_of("a"), (0xaf63_dc4c_8601_ec8c_u64 % 64) as u32);
    assert_eq!(shard_of("a"), 12);
    assert_eq!(shard_of("homepage"), 21);
    assert_eq!(shard_of("api"), 7);
    assert_eq!(shard_of(""), 37);
    for i in 0..10_000 {
        assert!(shard_of(&format!("monitor-{i}")) < SHARDS);
    }
}
