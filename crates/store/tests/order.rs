//! Delivery order: per incident and channel, no item is claimed while an earlier one is
//! undelivered and not claimed in the same call.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Backend, TestDb, keys, queue_in, t};
use watchpost_store::{OutboxItem, Store, StoreError};

/// `op`, made again while the store is busy (four stores contending for one SQLite file on a
/// loaded machine can wait past the busy timeout), as the delivery worker does.
fn busy_retried<T>(mut op: impl FnMut() -> Result<T, StoreError>) -> T {
    for _ in 0..10 {
        match op() {
            Err(StoreError::Busy) => std::thread::sleep(Duration::from_millis(100)),
            other => return other.unwrap(),
        }
    }
    op().unwrap()
}

const LEASE: Duration = Duration::from_secs(30);

fn claim(store: &dyn Store, secs: i64, worker: &str, limit: usize) -> Vec<OutboxItem> {
    store.claim_due(t(secs), worker, LEASE, limit).unwrap()
}

fn a_resolved_waits_for_its_down_while_the_down_waits_for_its_retry(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue_in(&*store, "api", &[("down", "ops", Some("api-1"))], t(0));
    let down = claim(&*store, 0, "w1", 10).remove(0);
    assert_eq!(down.incident.as_deref(), Some("api-1"));
    store.mark_retry(down.id, "w1", t(60), "HTTP 503").unwrap();

    queue_in(&*store, "api", &[("resolved", "ops", Some("api-1"))], t(10));
    // Due, but its DOWN is not delivered yet: nothing to claim, all the way to the retry.
    for secs in [10, 30, 59] {
        assert!(claim(&*store, secs, "w1", 10).is_empty(), "at t({secs})");
    }
    // Both due now: one call claims them, DOWN first.
    let both = claim(&*store, 60, "w1", 10);
    assert_eq!(keys(&both), ["down", "resolved"]);
    assert_eq!(both[0].attempts, 2);
    assert_eq!(both[1].attempts, 1);
}

fn a_resolved_is_claimable_once_its_down_is_delivered_or_given_up(b: Backend) {
    for delivered in [true, false] {
        let Some(db) = TestDb::new(b) else {
            return;
        };
        let store = db.open();
        queue_in(
            &*store,
            "api",
            &[("down", "ops", Some("api-1")), ("other", "ops", None)],
            t(0),
        );
        let first = claim(&*store, 0, "w1", 10);
        assert_eq!(keys(&first), ["down", "other"]);
        queue_in(&*store, "api", &[("resolved", "ops", Some("api-1"))], t(5));
        // The DOWN is leased (to this very worker): the RESOLVED waits.
        assert!(claim(&*store, 5, "w1", 10).is_empty());
        assert!(claim(&*store, 5, "w2", 10).is_empty());

        if delivered {
            store.mark_delivered(first[0].id, "w1", t(6)).unwrap();
        } else {
            store.mark_gave_up(first[0].id, "w1", t(6), "400").unwrap();
        }
        let next = claim(&*store, 6, "w2", 10);
        assert_eq!(keys(&next), ["resolved"], "delivered: {delivered}");
    }
}

fn a_leased_down_whose_lease_expired_is_claimed_again_together_with_its_successors(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue_in(&*store, "api", &[("down", "ops", Some("api-1"))], t(0));
    assert_eq!(claim(&*store, 0, "w1", 10).len(), 1);
    queue_in(
        &*store,
        "api",
        &[
            ("reminder", "ops", Some("api-1")),
            ("resolved", "ops", Some("api-1")),
        ],
        t(10),
    );
    assert!(claim(&*store, 29, "w2", 10).is_empty());
    // w1 died; its lease ended at t(30).
    assert_eq!(
        keys(&claim(&*store, 30, "w2", 10)),
        ["down", "reminder", "resolved"]
    );
}

fn reminders_stay_between_down_and_resolved(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue_in(&*store, "api", &[("down", "ops", Some("api-1"))], t(0));
    let down = claim(&*store, 0, "w1", 10).remove(0);
    store.mark_delivered(down.id, "w1", t(1)).unwrap();

    queue_in(
        &*store,
        "api",
        &[("reminder", "ops", Some("api-1"))],
        t(100),
    );
    let reminder = claim(&*store, 100, "w1", 10).remove(0);
    store
        .mark_retry(reminder.id, "w1", t(400), "timeout")
        .unwrap();
    queue_in(
        &*store,
        "api",
        &[("resolved", "ops", Some("api-1"))],
        t(200),
    );
    assert!(claim(&*store, 200, "w1", 10).is_empty());
    assert!(claim(&*store, 399, "w1", 10).is_empty());
    assert_eq!(
        keys(&claim(&*store, 400, "w1", 10)),
        ["reminder", "resolved"]
    );
}

fn the_limit_cuts_the_sequence_after_a_prefix(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue_in(
        &*store,
        "api",
        &[
            ("down", "ops", Some("api-1")),
            ("reminder", "ops", Some("api-1")),
            ("resolved", "ops", Some("api-1")),
        ],
        t(0),
    );
    assert_eq!(keys(&claim(&*store, 0, "w1", 2)), ["down", "reminder"]);
    // The RESOLVED is due but its predecessors are leased.
    assert!(claim(&*store, 0, "w2", 10).is_empty());
}

fn an_earlier_item_due_later_is_pulled_in_front_of_its_successor(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue_in(
        &*store,
        "api",
        &[("early", "ops", None), ("down", "ops", Some("api-1"))],
        t(0),
    );
    let items = claim(&*store, 0, "w1", 10);
    // The DOWN's retry is due at t(60), after the RESOLVED (created at t(20)).
    store.mark_retry(items[1].id, "w1", t(60), "503").unwrap();
    store.mark_retry(items[0].id, "w1", t(40), "503").unwrap();
    queue_in(&*store, "api", &[("resolved", "ops", Some("api-1"))], t(20));
    queue_in(&*store, "api", &[("unrelated", "ops", None)], t(50));

    // Due order is resolved (20), early (40), unrelated (50), down (60); the RESOLVED brings
    // its DOWN along, in front of it.
    let all = claim(&*store, 60, "w1", 10);
    assert_eq!(keys(&all), ["down", "resolved", "early", "unrelated"]);
}

fn other_channels_and_other_incidents_are_independent(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue_in(
        &*store,
        "api",
        &[
            ("down/ops", "ops", Some("api-1")),
            ("down/mail", "mail", Some("api-1")),
        ],
        t(0),
    );
    queue_in(
        &*store,
        "web",
        &[("web-down/ops", "ops", Some("web-1"))],
        t(0),
    );
    let first = claim(&*store, 0, "w1", 10);
    assert_eq!(keys(&first), ["down/ops", "down/mail", "web-down/ops"]);
    // ops fails for api-1; mail and web-1 are delivered.
    store.mark_retry(first[0].id, "w1", t(60), "503").unwrap();
    store.mark_delivered(first[1].id, "w1", t(1)).unwrap();
    store.mark_delivered(first[2].id, "w1", t(1)).unwrap();

    queue_in(
        &*store,
        "api",
        &[
            ("resolved/ops", "ops", Some("api-1")),
            ("resolved/mail", "mail", Some("api-1")),
        ],
        t(10),
    );
    queue_in(
        &*store,
        "web",
        &[
            ("web-resolved/ops", "ops", Some("web-1")),
            ("web2-down/ops", "ops", Some("web-2")),
        ],
        t(10),
    );
    let next = claim(&*store, 10, "w1", 10);
    assert_eq!(
        keys(&next),
        ["resolved/mail", "web-resolved/ops", "web2-down/ops"]
    );
}

fn items_without_an_incident_are_unordered(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    queue_in(&*store, "api", &[("a", "ops", None)], t(0));
    let a = claim(&*store, 0, "w1", 10).remove(0);
    store.mark_retry(a.id, "w1", t(60), "503").unwrap();
    queue_in(&*store, "api", &[("b", "ops", None)], t(10));
    assert_eq!(keys(&claim(&*store, 10, "w1", 10)), ["b"]);
}

fn the_order_holds_across_workers_and_connections(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let (one, two) = (db.open(), db.open());
    queue_in(&*one, "api", &[("down", "ops", Some("api-1"))], t(0));
    let down = claim(&*one, 0, "w1", 10).remove(0);
    queue_in(&*two, "api", &[("resolved", "ops", Some("api-1"))], t(1));
    assert!(claim(&*two, 1, "w2", 10).is_empty());
    one.mark_delivered(down.id, "w1", t(2)).unwrap();
    assert_eq!(keys(&claim(&*two, 2, "w2", 10)), ["resolved"]);
}

/// Workers on their own stores claim (a few items at a time) and deliver at once, concurrently:
/// no item is claimed before every earlier item of its incident and channel was delivered or
/// is claimed in the same call, and every item is delivered exactly once.
fn the_order_holds_under_concurrent_claims(b: Backend) {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    const INCIDENTS: usize = 2;
    const EACH: usize = 40;
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    // Items of all incidents interleaved in id order, on two channels.
    for round in 0..EACH {
        let items: Vec<(String, &str, Option<String>)> = (0..INCIDENTS)
            .map(|i| {
                (
                    format!("i{i}-{round}"),
                    if i % 2 == 0 { "ops" } else { "mail" },
                    Some(format!("incident-{i}")),
                )
            })
            .collect();
        let items: Vec<(&str, &str, Option<&str>)> = items
            .iter()
            .map(|(k, c, i)| (k.as_str(), *c, i.as_deref()))
            .collect();
        queue_in(&*store, "api", &items, t(0));
    }

    // Events in the order they happened: a call's claims, or a delivery (recorded just before
    // it commits, so a claim that depends on it is always recorded after it).
    #[derive(Debug)]
    enum Event {
        Claimed(usize, Vec<i64>),
        Delivered(i64),
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (store, events, calls) = (db.open(), events.clone(), calls.clone());
            std::thread::spawn(move || {
                let worker = format!("w{w}");
                for _ in 0..10 * INCIDENTS * EACH {
                    let items = busy_retried(|| {
                        store.claim_due(t(1), &worker, Duration::from_secs(60), 1 + w)
                    });
                    if items.is_empty() {
                        if store.pending_count().unwrap() == 0 {
                            return;
                        }
                        std::thread::yield_now();
                        continue;
                    }
                    let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    events
                        .lock()
                        .unwrap()
                        .push(Event::Claimed(call, items.iter().map(|i| i.id).collect()));
                    for item in items {
                        events.lock().unwrap().push(Event::Delivered(item.id));
                        busy_retried(|| store.mark_delivered(item.id, &worker, t(1)));
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }

    let entries = store.list_outbox().unwrap();
    assert_eq!(store.pending_count().unwrap(), 0);
    let sequence: HashMap<i64, (String, String)> = entries
        .iter()
        .map(|e| (e.id, (e.incident.clone().unwrap(), e.channel.clone())))
        .collect();
    let mut delivered = std::collections::HashSet::new();
    let mut claimed = std::collections::HashSet::new();
    for event in events.lock().unwrap().iter() {
        match event {
            Event::Delivered(id) => assert!(delivered.insert(*id), "{id} delivered twice"),
            Event::Claimed(call, ids) => {
                for id in ids {
                    assert!(claimed.insert(*id), "{id} claimed twice");
                    let key = &sequence[id];
                    for (earlier, other) in &sequence {
                        if earlier < id && other == key {
                            assert!(
                                delivered.contains(earlier) || ids.contains(earlier),
                                "call {call} claimed {id} before the earlier {earlier} was \
                                 delivered: {ids:?}"
                            );
                        }
                    }
                }
            }
        }
    }
    assert_eq!(delivered.len(), INCIDENTS * EACH);
}

/// Many items held back by their incident's leased first item don't hide a claimable item
/// queued after them (a backend reading candidates in pages reads on).
fn held_back_items_do_not_hide_later_claimable_ones(b: Backend) {
    let Some(db) = TestDb::new(b) else {
        return;
    };
    let store = db.open();
    let keys_in: Vec<String> = (0..100).map(|i| format!("held-{i}")).collect();
    let mut items: Vec<(&str, &str, Option<&str>)> = keys_in
        .iter()
        .map(|k| (k.as_str(), "ops", Some("api-1")))
        .collect();
    items.push(("free", "ops", None));
    queue_in(&*store, "api", &items, t(0));
    assert_eq!(keys(&claim(&*store, 0, "w1", 1)), ["held-0"]);
    assert_eq!(keys(&claim(&*store, 0, "w2", 1)), ["free"]);
    assert!(claim(&*store, 0, "w2", 5).is_empty());
}

both_backends!(
    a_resolved_waits_for_its_down_while_the_down_waits_for_its_retry,
    a_resolved_is_claimable_once_its_down_is_delivered_or_given_up,
    a_leased_down_whose_lease_expired_is_claimed_again_together_with_its_successors,
    reminders_stay_between_down_and_resolved,
    the_limit_cuts_the_sequence_after_a_prefix,
    an_earlier_item_due_later_is_pulled_in_front_of_its_successor,
    other_channels_and_other_incidents_are_independent,
    items_without_an_incident_are_unordered,
    the_order_holds_across_workers_and_connections,
    the_order_holds_under_concurrent_claims,
    held_back_items_do_not_hide_later_claimable_ones,
);
