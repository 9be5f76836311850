//! `Store::claim_fired`: a monitor is claimed once per fire time of its schedule, by one
//! caller, however many call at once.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::thread;

use chrono::{DateTime, Utc};
use common::{Backend, TestDb, t};
use watchpost_store::StoreError;

fn pairs(items: &[(&str, DateTime<Utc>)]) -> Vec<(String, DateTime<Utc>)> {
    items.iter().map(|(m, at)| (m.to_string(), *at)).collect()
}

fn first_claim_takes_every_monitor_and_remembers_the_fire_time(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert_eq!(store.fired_at("web").unwrap(), None);
    assert!(store.claim_fired(t(1000), &[]).unwrap().is_empty());

    let claimed = store
        .claim_fired(t(1000), &pairs(&[("web", t(60)), ("api", t(0))]))
        .unwrap();
    assert_eq!(claimed, ["api", "web"]);
    assert_eq!(store.fired_at("web").unwrap(), Some(t(60)));
    assert_eq!(store.fired_at("api").unwrap(), Some(t(0)));

    // The same fire times again: nothing is due.
    let again = store
        .claim_fired(t(1000), &pairs(&[("web", t(60)), ("api", t(0))]))
        .unwrap();
    assert!(again.is_empty(), "{again:?}");

    // A new monitor next to old ones: only it.
    let claimed = store
        .claim_fired(t(1000), &pairs(&[("web", t(60)), ("new", t(60))]))
        .unwrap();
    assert_eq!(claimed, ["new"]);
}

fn a_later_fire_time_claims_again_an_earlier_one_never(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert_eq!(
        store
            .claim_fired(t(1000), &pairs(&[("web", t(60))]))
            .unwrap(),
        ["web"]
    );
    // The clock went back, or another process saw an older fire time: not due.
    assert!(
        store
            .claim_fired(t(1000), &pairs(&[("web", t(0))]))
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.fired_at("web").unwrap(), Some(t(60)));

    assert_eq!(
        store
            .claim_fired(t(1000), &pairs(&[("web", t(120))]))
            .unwrap(),
        ["web"]
    );
    assert_eq!(store.fired_at("web").unwrap(), Some(t(120)));
    // Nanosecond precision: a fire time a hair later is a later one.
    let later = t(120) + chrono::TimeDelta::nanoseconds(1);
    assert_eq!(
        store
            .claim_fired(t(1000), &pairs(&[("web", later)]))
            .unwrap(),
        ["web"]
    );
    assert_eq!(store.fired_at("web").unwrap(), Some(later));
}

fn a_monitor_that_missed_several_fire_times_is_claimed_once(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert_eq!(
        store
            .claim_fired(t(1000), &pairs(&[("web", t(0))]))
            .unwrap(),
        ["web"]
    );
    // Fire times t(60), t(120), t(180) passed without a run; at t(200) the latest is t(180).
    assert_eq!(
        store
            .claim_fired(t(1000), &pairs(&[("web", t(180))]))
            .unwrap(),
        ["web"]
    );
    assert!(
        store
            .claim_fired(t(1000), &pairs(&[("web", t(180))]))
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.fired_at("web").unwrap(), Some(t(180)));
}

fn a_monitor_named_twice_counts_with_its_later_time(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let claimed = store
        .claim_fired(
            t(1000),
            &pairs(&[("web", t(10)), ("web", t(70)), ("web", t(40))]),
        )
        .unwrap();
    assert_eq!(claimed, ["web"]);
    assert_eq!(store.fired_at("web").unwrap(), Some(t(70)));
}

fn bad_input_claims_nothing(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let err = store
        .claim_fired(t(1000), &pairs(&[("web", t(0)), ("", t(0))]))
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    let err = store
        .claim_fired(t(1000), &pairs(&[("web", DateTime::<Utc>::MAX_UTC)]))
        .unwrap_err();
    assert!(matches!(err, StoreError::TimeOutOfRange(_)), "{err:?}");
    assert_eq!(store.fired_at("web").unwrap(), None);
}

/// Several stores on the same data (as separate processes would be), each claiming the same
/// monitors for the same fire times from its own thread at the same moment, round after
/// round: every monitor is claimed exactly once per fire time.
fn concurrent_claims_never_claim_a_monitor_twice_for_one_fire_time(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    const STORES: usize = 4;
    const ROUNDS: i64 = 8;
    let monitors: Vec<String> = (0..20).map(|i| format!("m{i:02}")).collect();
    let stores: Vec<_> = (0..STORES).map(|_| db.open()).collect();
    let barrier = Arc::new(Barrier::new(STORES));
    let threads: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(k, store)| {
            let barrier = barrier.clone();
            let mut monitors = monitors.clone();
            // Each caller names them in another order: the store must not deadlock on it.
            monitors.rotate_left(k * 5);
            if k % 2 == 1 {
                monitors.reverse();
            }
            thread::spawn(move || {
                let mut won: Vec<(i64, String)> = Vec::new();
                for round in 0..ROUNDS {
                    let fired: Vec<_> = monitors
                        .iter()
                        .map(|m| (m.clone(), t(round * 60)))
                        .collect();
                    barrier.wait();
                    for m in store.claim_fired(t(1000), &fired).expect("claim") {
                        won.push((round, m));
                    }
                }
                won
            })
        })
        .collect();
    let mut claims: BTreeMap<(i64, String), usize> = BTreeMap::new();
    for thread in threads {
        for key in thread.join().unwrap() {
            *claims.entry(key).or_default() += 1;
        }
    }
    for round in 0..ROUNDS {
        for m in &monitors {
            let n = claims.get(&(round, m.clone())).copied().unwrap_or(0);
            assert_eq!(n, 1, "{m} claimed {n} times for round {round}");
        }
    }
    assert_eq!(claims.len(), monitors.len() * ROUNDS as usize);
}

/// The wall clock went back (the stored fire time lies well after now): the monitor runs
/// again, once, instead of waiting for the clock to catch up; a host whose clock is a few
/// seconds behind another's doesn't run it again.
fn after_the_clock_went_back_a_monitor_is_claimed_again_once(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert_eq!(
        store
            .claim_fired(t(601), &pairs(&[("web", t(600))]))
            .unwrap(),
        ["web"]
    );
    // Another host, 3 s behind: its latest fire time is the previous one. Not due.
    assert!(
        store
            .claim_fired(t(598), &pairs(&[("web", t(540))]))
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.fired_at("web").unwrap(), Some(t(600)));
    // The clock was set back 8 minutes.
    assert_eq!(
        store
            .claim_fired(t(121), &pairs(&[("web", t(120))]))
            .unwrap(),
        ["web"]
    );
    assert_eq!(store.fired_at("web").unwrap(), Some(t(120)));
    assert!(
        store
            .claim_fired(t(122), &pairs(&[("web", t(120))]))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_fired(t(181), &pairs(&[("web", t(180))]))
            .unwrap(),
        ["web"]
    );
}

both_backends!(
    after_the_clock_went_back_a_monitor_is_claimed_again_once,
    first_claim_takes_every_monitor_and_remembers_the_fire_time,
    a_later_fire_time_claims_again_an_earlier_one_never,
    a_monitor_that_missed_several_fire_times_is_claimed_once,
    a_monitor_named_twice_counts_with_its_later_time,
    bad_input_claims_nothing,
    concurrent_claims_never_claim_a_monitor_twice_for_one_fire_time,
);
