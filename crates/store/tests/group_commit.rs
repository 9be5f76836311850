//! Group commit: ticks arriving while a batch is open join it and are committed together (one
//! `fsync` for many monitors), each in its own savepoint: a tick whose `decide` fails or
//! panics rolls back alone, every caller returns only after the batch committed, and the
//! operations that run alone (outbox claims) wait for the batch and see all of it.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{TempDb, notification, t};
use watchpost_store::{Store, StoreError, Transition};

/// A tick of monitor `name` writing the state `{"m":NAME}`, with one notification.
fn tick(name: &str) -> Transition {
    Transition {
        state: state(name),
        notifications: vec![notification(&format!("{name}:down"), t(0))],
        incident: None,
    }
}

fn state(name: &str) -> String {
    format!(r#"{{"m":"{name}"}}"#)
}

#[test]
fn ticks_arriving_together_commit_in_one_batch_and_fail_alone() {
    const N: usize = 12;
    let db = TempDb::new();
    let store = Arc::new(db.open());
    let start = Arc::new(Barrier::new(N));
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                if i > 0 {
                    // Let tick 0 begin the batch and hold it while the others arrive.
                    thread::sleep(Duration::from_millis(50));
                }
                let monitor = format!("m{i}");
                store.transition(&monitor, &mut |_| match i {
                    0 => {
                        thread::sleep(Duration::from_millis(400));
                        Ok(tick("m0"))
                    }
                    5 => Err("this one is refused".into()),
                    7 => panic!("this one panics"),
                    _ => Ok(tick(&monitor)),
                })
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|h| h.join()).collect();
    for (i, r) in results.iter().enumerate() {
        match i {
            5 => assert!(matches!(r, Ok(Err(StoreError::Decide(_)))), "{i}: {r:?}"),
            7 => assert!(r.is_err(), "{i}: the panic goes on to the caller"),
            _ => assert!(matches!(r, Ok(Ok(o)) if o.version == 1), "{i}: {r:?}"),
        }
    }
    // Everything but the refused and the panicking ticks is there, and only that.
    for i in 0..N {
        let want = |i: usize| state(&format!("m{i}"));
        let stored = store.state(&format!("m{i}")).unwrap();
        if i == 5 || i == 7 {
            assert_eq!(stored, None, "m{i}");
        } else {
            assert_eq!(stored, Some(want(i)));
        }
    }
    assert_eq!(store.list_outbox().unwrap().len(), N - 2);
    // Ten committed ticks in very few batches (the eleven arriving during tick 0's decide
    // joined it; scheduling may split them, but not into one batch each).
    let (batches, ticks) = store.commit_stats();
    assert_eq!(ticks, (N - 2) as u64, "{batches} batches");
    assert!(batches <= 3, "{batches} batches for {ticks} ticks");

    // The store goes on working, and another connection sees everything committed.
    let other = db.open();
    assert_eq!(other.state("m3").unwrap(), Some(state("m3")));
    assert_eq!(
        store
            .transition("m5", &mut |_| Ok(tick("m5")))
            .unwrap()
            .version,
        1
    );
}

#[test]
fn a_claim_waits_for_the_open_batch_and_sees_it_committed() {
    let db = TempDb::new();
    let store = Arc::new(db.open());
    let writer = store.clone();
    let holding = thread::spawn(move || {
        writer.transition("slow", &mut |_| {
            thread::sleep(Duration::from_millis(300));
            Ok(tick("slow"))
        })
    });
    thread::sleep(Duration::from_millis(100));
    // The batch is open: the claim waits for its commit, then takes its notification.
    let claimed = store
        .claim_due(t(10), "w1", Duration::from_secs(30), 10)
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert!(holding.join().unwrap().is_ok());
    // And it was committed before the claim saw it: another connection reads it.
    assert_eq!(db.open().state("slow").unwrap(), Some(state("slow")));
}
