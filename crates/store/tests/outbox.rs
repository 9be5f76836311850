//! Outbox delivery: leases, retries, giving up.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{Backend, TestDb, queue, t};
use watchpost_store::{OutboxStatus, StoreError};

const LEASE: Duration = Duration::from_secs(30);

fn claim_leases_due_items_oldest_first_up_to_the_limit(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["late"], t(20));
    queue(&*store, "api", &["early-b", "early-a"], t(10));
    // Created 3 s after the claims below: not due yet (within CLOCK_BACK_TOLERANCE; an item
    // created further in the future is due at once, see tests/clock.rs).
    queue(&*store, "api", &["future"], t(53));

    assert!(store.claim_due(t(50), "w1", LEASE, 0).unwrap().is_empty());

    let first = store.claim_due(t(50), "w1", LEASE, 2).unwrap();
    let keys: Vec<_> = first.iter().map(|i| i.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["early-b", "early-a"]);
    assert_eq!(first[0].attempts, 1);
    assert_eq!(first[0].last_error, None);
    assert_eq!(first[0].channel, "ops");
    assert_eq!(first[0].payload, r#"{"key":"early-b"}"#);
    assert_eq!(first[0].created_at, t(10));

    let rest = store.claim_due(t(50), "w2", LEASE, 10).unwrap();
    let keys: Vec<_> = rest.iter().map(|i| i.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["late"]);

    let entries = store.list_outbox().unwrap();
    let leased: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.idempotency_key.as_str(),
                e.status(t(50)),
                e.leased_by.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        leased,
        [
            ("late", OutboxStatus::Leased, Some("w2")),
            ("early-b", OutboxStatus::Leased, Some("w1")),
            ("early-a", OutboxStatus::Leased, Some("w1")),
            ("future", OutboxStatus::Pending, None),
        ]
    );
    assert_eq!(entries[1].lease_until, Some(t(80)));
    assert_eq!(store.pending_count().unwrap(), 4);
}

fn two_workers_claiming_at_once_never_share_an_item(b: Backend) {
    const ITEMS: usize = 300;
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    for chunk in (0..ITEMS).collect::<Vec<_>>().chunks(50) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("n{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        queue(&*store, "api", &keys, t(0));
    }

    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = ["w1", "w2"]
        .into_iter()
        .map(|worker| {
            let (store, barrier) = (db.open(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                let mut mine = Vec::new();
                // Bounded: a broken lease would hand out the same items forever.
                for _ in 0..ITEMS {
                    let batch = store.claim_due(t(1), worker, LEASE, 7).unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    for item in batch {
                        mine.push(item.id);
                    }
                }
                mine
            })
        })
        .collect();
    let claims: Vec<Vec<i64>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let all: HashSet<i64> = claims.iter().flatten().copied().collect();
    assert_eq!(
        claims[0].len() + claims[1].len(),
        ITEMS,
        "an item was claimed twice"
    );
    assert_eq!(all.len(), ITEMS);
    // Each item was claimed exactly once.
    assert!(store.list_outbox().unwrap().iter().all(|e| e.attempts == 1));
}

fn an_expired_lease_can_be_reclaimed_and_the_old_worker_loses_the_item(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["k"], t(0));
    let item = store.claim_due(t(0), "w1", LEASE, 10).unwrap().remove(0);

    // Still leased just before the lease ends.
    assert!(store.claim_due(t(29), "w2", LEASE, 10).unwrap().is_empty());
    let again = store.claim_due(t(30), "w2", LEASE, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, item.id);
    assert_eq!(again[0].attempts, 2);

    // w1 woke up late: every outcome it reports is refused.
    let not_leased = |r: Result<(), StoreError>| matches!(r, Err(StoreError::NotLeased { id, ref worker }) if id == item.id && worker == "w1");
    assert!(not_leased(store.mark_delivered(item.id, "w1", t(31))));
    assert!(not_leased(store.mark_retry(
        item.id,
        "w1",
        t(60),
        "timeout"
    )));
    assert!(not_leased(store.mark_gave_up(
        item.id,
        "w1",
        t(31),
        "timeout"
    )));

    store.mark_delivered(item.id, "w2", t(32)).unwrap();
    let entry = store.list_outbox().unwrap().remove(0);
    assert_eq!(entry.delivered_at, Some(t(32)));
    assert_eq!(entry.leased_by.as_deref(), Some("w2"));
    assert_eq!(entry.lease_until, None);
}

fn an_expired_lease_nobody_took_is_still_ours(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["k"], t(0));
    let item = store.claim_due(t(0), "w1", LEASE, 1).unwrap().remove(0);
    store.mark_delivered(item.id, "w1", t(45)).unwrap();
    assert_eq!(store.pending_count().unwrap(), 0);
}

fn a_delivered_item_is_never_claimed_again(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["a", "b"], t(0));
    let items = store.claim_due(t(0), "w1", LEASE, 10).unwrap();
    store.mark_delivered(items[0].id, "w1", t(1)).unwrap();

    // Far beyond every lease: only the undelivered one comes back.
    let later = store.claim_due(t(86_400), "w2", LEASE, 10).unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].id, items[1].id);
    assert!(store.claim_due(t(2 * 86_400), "w3", LEASE, 10).unwrap()[0].id == items[1].id);

    // Delivering twice is refused, also by the worker that delivered it.
    assert!(matches!(
        store.mark_delivered(items[0].id, "w1", t(2)),
        Err(StoreError::NotLeased { .. })
    ));
    // A reopened store (a restart) does not resend it either.
    drop(store);
    let store = db.open();
    let after_restart = store.claim_due(t(10 * 86_400), "w9", LEASE, 10).unwrap();
    assert_eq!(after_restart.len(), 1);
    assert_eq!(after_restart[0].id, items[1].id);
    assert_eq!(store.pending_count().unwrap(), 1);
}

fn retry_waits_for_next_attempt_at_and_keeps_the_error(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["k"], t(0));
    let item = store.claim_due(t(0), "w1", LEASE, 1).unwrap().remove(0);
    store
        .mark_retry(item.id, "w1", t(60), "HTTP 503 from webhook")
        .unwrap();

    let entry = store.list_outbox().unwrap().remove(0);
    assert_eq!(entry.status(t(1)), OutboxStatus::Pending);
    assert_eq!(entry.next_attempt_at, t(60));
    assert_eq!(entry.lease_until, None);
    assert_eq!(entry.last_error.as_deref(), Some("HTTP 503 from webhook"));
    assert_eq!(store.pending_count().unwrap(), 1);

    // Retrying released the lease: the worker cannot report on it any more.
    assert!(matches!(
        store.mark_delivered(item.id, "w1", t(2)),
        Err(StoreError::NotLeased { .. })
    ));

    assert!(store.claim_due(t(59), "w1", LEASE, 1).unwrap().is_empty());
    let second = store.claim_due(t(60), "w2", LEASE, 1).unwrap().remove(0);
    assert_eq!(second.id, item.id);
    assert_eq!(second.attempts, 2);
    assert_eq!(second.last_error.as_deref(), Some("HTTP 503 from webhook"));

    store
        .mark_retry(second.id, "w2", t(180), "connection refused")
        .unwrap();
    let third = store.claim_due(t(180), "w1", LEASE, 1).unwrap().remove(0);
    assert_eq!(third.attempts, 3);
    assert_eq!(third.last_error.as_deref(), Some("connection refused"));
    store.mark_delivered(third.id, "w1", t(181)).unwrap();
    let entry = store.list_outbox().unwrap().remove(0);
    assert_eq!(entry.status(t(181)), OutboxStatus::Delivered);
    // The last error is kept as history.
    assert_eq!(entry.last_error.as_deref(), Some("connection refused"));
}

fn giving_up_keeps_the_row_with_its_error_and_never_retries(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["k", "other"], t(0));
    let item = store.claim_due(t(0), "w1", LEASE, 1).unwrap().remove(0);
    store
        .mark_gave_up(
            item.id,
            "w1",
            t(5),
            "channel \"ops\" rejected the message: 400",
        )
        .unwrap();

    let entries = store.list_outbox().unwrap();
    assert_eq!(entries.len(), 2);
    let gave_up = &entries[0];
    assert_eq!(gave_up.id, item.id);
    assert_eq!(gave_up.status(t(5)), OutboxStatus::GaveUp);
    assert_eq!(gave_up.gave_up_at, Some(t(5)));
    assert_eq!(gave_up.delivered_at, None);
    assert_eq!(
        gave_up.last_error.as_deref(),
        Some("channel \"ops\" rejected the message: 400")
    );
    assert_eq!(store.pending_count().unwrap(), 1);

    let later = store.claim_due(t(1_000_000), "w2", LEASE, 10).unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].idempotency_key, "other");
    assert!(matches!(
        store.mark_retry(item.id, "w1", t(10), "x"),
        Err(StoreError::NotLeased { .. })
    ));
}

fn bad_claims_are_errors(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert!(matches!(
        store.claim_due(t(0), "", LEASE, 1),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store.claim_due(t(0), "w1", Duration::ZERO, 1),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store.claim_due(t(0), "w1", Duration::from_secs(u64::MAX), 1),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store.mark_delivered(42, "w1", t(0)),
        Err(StoreError::NotLeased { id: 42, .. })
    ));
}

fn extend_lease_renews_only_the_workers_own_unfinished_items(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["a", "b", "c", "d"], t(0));
    let mine = store.claim_due(t(0), "w1", LEASE, 3).unwrap();
    let theirs = store.claim_due(t(0), "w2", LEASE, 1).unwrap().remove(0);
    store.mark_delivered(mine[2].id, "w1", t(1)).unwrap();

    // Two of mine still leased, one delivered, one of w2's, an unknown id, a duplicate.
    let ids = [
        mine[0].id, mine[1].id, mine[2].id, theirs.id, 999, mine[0].id,
    ];
    let minute = Duration::from_secs(60);
    assert_eq!(store.extend_lease(&ids, "w1", t(20), minute).unwrap(), 2);

    let entries = store.list_outbox().unwrap();
    assert_eq!(entries[0].lease_until, Some(t(80)));
    assert_eq!(entries[1].lease_until, Some(t(80)));
    assert_eq!(entries[2].lease_until, None);
    assert_eq!(entries[3].lease_until, Some(t(30)));
    // Without the renewal they would be free at t(30); now w2 gets only its own expired item.
    let at_40 = store.claim_due(t(40), "w2", LEASE, 10).unwrap();
    assert_eq!(at_40.iter().map(|i| i.id).collect::<Vec<_>>(), [theirs.id]);
    store.mark_delivered(theirs.id, "w2", t(41)).unwrap();
    assert!(store.claim_due(t(79), "w3", LEASE, 10).unwrap().is_empty());
    assert_eq!(store.claim_due(t(80), "w3", LEASE, 10).unwrap().len(), 2);
    // w1 lost them: renewing now renews nothing.
    assert_eq!(
        store
            .extend_lease(&[mine[0].id, mine[1].id], "w1", t(81), minute)
            .unwrap(),
        0
    );
}

fn an_expired_lease_nobody_took_can_still_be_renewed(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue(&*store, "api", &["k"], t(0));
    let item = store.claim_due(t(0), "w1", LEASE, 1).unwrap().remove(0);
    assert_eq!(
        store.extend_lease(&[item.id], "w1", t(45), LEASE).unwrap(),
        1
    );
    assert!(store.claim_due(t(60), "w2", LEASE, 1).unwrap().is_empty());
    store.mark_delivered(item.id, "w1", t(70)).unwrap();
}

fn bad_renewals_are_errors(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    for (worker, lease) in [
        ("", LEASE),
        ("w1", Duration::ZERO),
        ("w1", watchpost_store::MAX_LEASE * 2),
    ] {
        assert!(
            matches!(
                store.extend_lease(&[1], worker, t(0), lease),
                Err(StoreError::InvalidInput(_))
            ),
            "{worker:?} {lease:?}"
        );
    }
    assert_eq!(store.extend_lease(&[], "w1", t(0), LEASE).unwrap(), 0);
}

fn oldest_undelivered_reports_the_earliest_created_unfinished_item(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert_eq!(store.oldest_undelivered().unwrap(), None);
    queue(&*store, "web", &["newer"], t(50));
    queue(&*store, "api", &["oldest", "tie"], t(10));

    let info = store.oldest_undelivered().unwrap().unwrap();
    assert_eq!(info.monitor, "api");
    assert_eq!(info.channel, "ops");
    assert_eq!(info.created_at, t(10));
    assert_eq!(info.attempts, 0);
    assert_eq!(info.last_error, None);
    let oldest_id = info.id;

    // Leased, then waiting for a retry: still the oldest, with its attempts and error.
    let items = store.claim_due(t(60), "w1", LEASE, 10).unwrap();
    let item = |key: &str| items.iter().find(|i| i.idempotency_key == key).unwrap().id;
    assert_eq!(item("oldest"), oldest_id);
    assert_eq!(store.oldest_undelivered().unwrap().unwrap().id, oldest_id);
    store
        .mark_retry(oldest_id, "w1", t(120), "HTTP 503 from webhook")
        .unwrap();
    let info = store.oldest_undelivered().unwrap().unwrap();
    assert_eq!(
        (info.id, info.attempts, info.last_error.as_deref()),
        (oldest_id, 1, Some("HTTP 503 from webhook"))
    );

    // Delivered and given up items don't count: the tie (same time, higher id) comes next.
    store.mark_delivered(item("tie"), "w1", t(61)).unwrap();
    // (Both the retried item and the one whose lease expired are claimed again.)
    let again = store.claim_due(t(120), "w1", LEASE, 10).unwrap();
    assert_eq!(again.len(), 2);
    store.mark_gave_up(oldest_id, "w1", t(121), "400").unwrap();
    let info = store.oldest_undelivered().unwrap().unwrap();
    assert_eq!((info.monitor.as_str(), info.created_at), ("web", t(50)));
    store.mark_delivered(item("newer"), "w1", t(122)).unwrap();
    assert_eq!(store.oldest_undelivered().unwrap(), None);
}

fn next_wake_is_the_next_due_time_of_what_can_be_claimed(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    assert_eq!(
        store.next_wake(common::t(0)).unwrap(),
        None,
        "nothing pending"
    );
    common::queue(&*store, "api", &["a"], common::t(0));
    // Due since its creation.
    assert_eq!(store.next_wake(common::t(5)).unwrap(), Some(common::t(0)));
    let claimed = store
        .claim_due(common::t(5), "w", Duration::from_secs(30), 10)
        .unwrap();
    // Leased: when the lease ends.
    assert_eq!(store.next_wake(common::t(6)).unwrap(), Some(common::t(35)));
    store
        .mark_retry(claimed[0].id, "w", common::t(100), "HTTP 503")
        .unwrap();
    // Waiting for its retry.
    assert_eq!(store.next_wake(common::t(6)).unwrap(), Some(common::t(100)));

    // A RESOLVED due now behind its DOWN waiting for a retry is not due before the DOWN.
    let with_incident = |key: &str| watchpost_store::NewNotification {
        incident: Some("api:1".into()),
        ..common::notification(key, common::t(10))
    };
    store
        .transition("api", &mut |_| {
            Ok(watchpost_store::Transition {
                state: "{}".into(),
                notifications: vec![with_incident("down")],
                incident: None,
            })
        })
        .unwrap();
    let down = store
        .claim_due(common::t(10), "w", Duration::from_secs(30), 10)
        .unwrap();
    assert_eq!(down[0].idempotency_key, "down");
    store
        .mark_retry(down[0].id, "w", common::t(200), "HTTP 503")
        .unwrap();
    store
        .transition("api", &mut |_| {
            Ok(watchpost_store::Transition {
                state: "{}".into(),
                notifications: vec![with_incident("resolved")],
                incident: None,
            })
        })
        .unwrap();
    assert_eq!(
        store.next_wake(common::t(11)).unwrap(),
        Some(common::t(100))
    );
}
both_backends!(
    claim_leases_due_items_oldest_first_up_to_the_limit,
    two_workers_claiming_at_once_never_share_an_item,
    an_expired_lease_can_be_reclaimed_and_the_old_worker_loses_the_item,
    an_expired_lease_nobody_took_is_still_ours,
    a_delivered_item_is_never_claimed_again,
    retry_waits_for_next_attempt_at_and_keeps_the_error,
    giving_up_keeps_the_row_with_its_error_and_never_retries,
    bad_claims_are_errors,
    extend_lease_renews_only_the_workers_own_unfinished_items,
    an_expired_lease_nobody_took_can_still_be_renewed,
    bad_renewals_are_errors,
    oldest_undelivered_reports_the_earliest_created_unfinished_item,
    next_wake_is_the_next_due_time_of_what_can_be_claimed,
);
