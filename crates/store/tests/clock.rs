//! Wall-clock steps: a step back never stalls a due retry or keeps a lease for long, a step
//! forward adds at most RETRY_GAP_CAP to the time spent retrying. Every `now` is explicit.

#[macro_use]
mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Backend, TestDb, keys, queue, queue_in, t};
use watchpost_store::{
    MAX_LEASE, NewNotification, OutboxStatus, RETRY_GAP_CAP, ResultRow, StoreError, Transition,
};

const LEASE: Duration = Duration::from_secs(30);
const HOUR: i64 = 3600;

fn a_step_back_makes_a_waiting_retry_due_at_once(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["down"], t(0));
    let item = store.claim_due(t(0), "w1", LEASE, 1).unwrap().remove(0);
    store.mark_retry(item.id, "w1", t(60), "503").unwrap();

    // Before: not due until t(60).
    assert!(store.claim_due(t(30), "w1", LEASE, 1).unwrap().is_empty());
    // The clock went back 5 s past the last attempt: within the tolerance, still waiting.
    assert!(store.claim_due(t(-5), "w1", LEASE, 1).unwrap().is_empty());
    // Back 2 h: the last attempt is in the future, so the retry is due now, not in 2 h.
    let again = store.claim_due(t(-2 * HOUR), "w1", LEASE, 1).unwrap();
    assert_eq!(keys(&again), ["down"]);
    assert_eq!(again[0].attempts, 2);

    // From then on the new clock rules: the next retry waits for its time on it.
    store
        .mark_retry(item.id, "w1", t(-2 * HOUR + 60), "503")
        .unwrap();
    assert!(
        store
            .claim_due(t(-2 * HOUR + 30), "w1", LEASE, 1)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_due(t(-2 * HOUR + 60), "w1", LEASE, 1)
            .unwrap()
            .len(),
        1
    );
}

fn the_tolerance_boundary_is_five_seconds_past_the_last_attempt(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["k"], t(0));
    let item = store.claim_due(t(0), "w1", LEASE, 1).unwrap().remove(0);
    store.mark_retry(item.id, "w1", t(600), "503").unwrap();
    assert!(store.claim_due(t(-5), "w1", LEASE, 1).unwrap().is_empty());
    assert_eq!(store.claim_due(t(-6), "w1", LEASE, 1).unwrap().len(), 1);
}

fn a_never_attempted_item_created_in_the_future_is_due(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    // Queued at t(0); the delivery worker's clock then reads 2 h earlier.
    queue(&*store, "api", &["created-before-the-step"], t(0));
    queue(&*store, "api", &["just-ahead"], t(-2 * HOUR + 3));
    let items = store.claim_due(t(-2 * HOUR), "w1", LEASE, 10).unwrap();
    assert_eq!(keys(&items), ["created-before-the-step"]);
}

fn the_order_rule_still_holds_after_a_step_back(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue_in(&*store, "api", &[("down", "ops", Some("api-1"))], t(0));
    let down = store.claim_due(t(0), "w1", LEASE, 1).unwrap().remove(0);
    store.mark_retry(down.id, "w1", t(60), "503").unwrap();
    queue_in(&*store, "api", &[("resolved", "ops", Some("api-1"))], t(10));
    let both = store.claim_due(t(-2 * HOUR), "w1", LEASE, 10).unwrap();
    assert_eq!(keys(&both), ["down", "resolved"]);
}

fn a_lease_ending_more_than_max_lease_ahead_counts_as_expired(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["k"], t(0));
    let item = store.claim_due(t(0), "w1", LEASE, 1).unwrap().remove(0);
    let entry = store.list_outbox().unwrap().remove(0);
    assert_eq!(entry.lease_until, Some(t(30)));

    // Back 30 min: the lease ends 30 min 30 s ahead, less than MAX_LEASE: still w1's.
    assert_eq!(entry.status(t(-30 * 60)), OutboxStatus::Leased);
    assert!(
        store
            .claim_due(t(-30 * 60), "w2", LEASE, 1)
            .unwrap()
            .is_empty()
    );
    // Back 2 h: it ends more than an hour ahead, which no lease can: expired.
    assert_eq!(entry.status(t(-2 * HOUR)), OutboxStatus::Pending);
    let taken = store.claim_due(t(-2 * HOUR), "w2", LEASE, 1).unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, item.id);
    assert!(matches!(
        store.mark_delivered(item.id, "w1", t(1)),
        Err(StoreError::NotLeased { .. })
    ));
    store
        .mark_delivered(item.id, "w2", t(-2 * HOUR + 1))
        .unwrap();
}

fn leases_longer_than_max_lease_are_refused(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["k"], t(0));
    let too_long = MAX_LEASE + Duration::from_nanos(1);
    assert!(matches!(
        store.claim_due(t(0), "w1", too_long, 1),
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(store.pending_count().unwrap(), 1);
    let item = store.claim_due(t(0), "w1", MAX_LEASE, 1).unwrap().remove(0);
    assert_eq!(
        store.list_outbox().unwrap()[0].lease_until,
        Some(t(MAX_LEASE.as_secs() as i64))
    );
    assert!(matches!(
        store.extend_lease(&[item.id], "w1", t(10), too_long),
        Err(StoreError::InvalidInput(_))
    ));
    // A lease of exactly MAX_LEASE is held for its whole length.
    assert!(store.claim_due(t(3599), "w2", LEASE, 1).unwrap().is_empty());
}

fn retried_sums_the_gaps_between_claims_each_capped_at_an_hour(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["down"], t(0));
    let retry =
        |id: i64, worker: &str, at: i64| store.mark_retry(id, worker, t(at), "503").unwrap();

    let first = store.claim_due(t(0), "w1", LEASE, 1).unwrap().remove(0);
    assert_eq!(first.retried, Duration::ZERO);
    retry(first.id, "w1", 60);

    let second = store.claim_due(t(60), "w1", LEASE, 1).unwrap().remove(0);
    assert_eq!(second.retried, Duration::from_secs(60));
    retry(second.id, "w1", 120);

    // The clock jumps 25 h forward: the gap counts as RETRY_GAP_CAP, not 25 h.
    let jump = 120 + 25 * HOUR;
    let third = store.claim_due(t(jump), "w1", LEASE, 1).unwrap().remove(0);
    assert_eq!(third.retried, Duration::from_secs(60) + RETRY_GAP_CAP);
    let entry = store.list_outbox().unwrap().remove(0);
    assert_eq!(entry.retried, third.retried);
    assert_eq!(entry.last_attempt_at, Some(t(jump)));
    retry(third.id, "w1", jump + 10);

    // Then back 2 h: a negative gap adds nothing.
    let back = jump - 2 * HOUR;
    let fourth = store.claim_due(t(back), "w1", LEASE, 1).unwrap().remove(0);
    assert_eq!(fourth.retried, third.retried);
    retry(fourth.id, "w1", back + 30);

    // And a normal gap on the new clock counts in full.
    let fifth = store
        .claim_due(t(back + 30), "w1", LEASE, 1)
        .unwrap()
        .remove(0);
    assert_eq!(fifth.retried, third.retried + Duration::from_secs(30));
    assert_eq!(fifth.attempts, 5);

    // An expired lease counts as an attempt too: the gap to the takeover is added.
    let sixth = store
        .claim_due(t(back + 30 + 45), "w2", LEASE, 1)
        .unwrap()
        .remove(0);
    assert_eq!(sixth.retried, fifth.retried + Duration::from_secs(45));
}

fn far() -> DateTime<Utc> {
    DateTime::<Utc>::MAX_UTC
}

fn extreme_times_are_errors_never_panics(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["k"], t(0));
    let out_of_range = |r: Result<_, StoreError>| matches!(r, Err(StoreError::TimeOutOfRange(_)));
    let last_storable = DateTime::from_timestamp_nanos(i64::MAX);

    assert!(out_of_range(
        store.claim_due(far(), "w", LEASE, 1).map(drop)
    ));
    assert!(out_of_range(
        store
            .claim_due(DateTime::<Utc>::MIN_UTC, "w", LEASE, 1)
            .map(drop)
    ));
    // now is storable, now + lease is not.
    assert!(out_of_range(
        store.claim_due(last_storable, "w", LEASE, 1).map(drop)
    ));
    assert!(out_of_range(
        store
            .extend_lease(&[1], "w", last_storable, LEASE)
            .map(drop)
    ));
    assert!(out_of_range(store.prune(far()).map(drop)));
    assert!(out_of_range(store.mark_delivered(1, "w", far())));
    assert!(out_of_range(store.mark_retry(1, "w", far(), "x")));
    assert!(out_of_range(store.mark_gave_up(1, "w", far(), "x")));

    let row = ResultRow {
        monitor: "api".into(),
        location: "local".into(),
        at: far(),
        ok: true,
        data: "{}".into(),
        metrics: vec![],
        summarize: vec![],
    };
    assert!(out_of_range(
        store.record_results(std::slice::from_ref(&row)).map(drop)
    ));
    let decide = &mut |_| -> Result<Transition, String> {
        Ok(Transition {
            state: "{}".into(),
            notifications: vec![NewNotification {
                created_at: far(),
                ..common::notification("far", t(0))
            }],
            incident: None,
        })
    };
    assert!(out_of_range(store.transition("api", decide).map(drop)));
    assert!(out_of_range(
        store.commit_tick("api", &[row], decide).map(drop)
    ));

    // Nothing was written by any of them, and the store works on.
    assert_eq!(store.list_outbox().unwrap().len(), 1);
    assert!(store.latest_results("api").unwrap().is_empty());
    assert_eq!(store.claim_due(t(0), "w", LEASE, 1).unwrap().len(), 1);
}

both_backends!(
    a_step_back_makes_a_waiting_retry_due_at_once,
    the_tolerance_boundary_is_five_seconds_past_the_last_attempt,
    a_never_attempted_item_created_in_the_future_is_due,
    the_order_rule_still_holds_after_a_step_back,
    a_lease_ending_more_than_max_lease_ahead_counts_as_expired,
    leases_longer_than_max_lease_are_refused,
    retried_sums_the_gaps_between_claims_each_capped_at_an_hour,
    extreme_times_are_errors_never_panics,
);
