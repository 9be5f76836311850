//! Delivery end to end, through the real binary: alerts arrive in the order they were made,
//! one channel's trouble (or a store error while settling it) never stops another's, a
//! corrupt state row stops nothing, a delivery is recorded even past a lock held longer than
//! the busy timeout, and a second SIGTERM stops a flush at once without losing
//! what was queued.

mod common;

use common::{
    Daemon, hook_and_shop, kinds, once_json as once, server, shim, wait_for, watchpost,
    write_config,
};
use std::sync::atomic::Ordering;
use std::time::Duration;
use watchpost_testkit::{Receiver, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_never_overtakes_its_down_after_a_channel_outage() {
    let target = server(503).await;
    let hook = server(503).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hook_and_shop(hook.addr, target.addr, "", 1));
    // The site goes down while the webhook is down too: the DOWN is attempted and refused.
    assert_eq!(once(&config).await.status.code(), Some(1));
    assert_eq!(hook.requests.lock().unwrap().len(), 1);
    // The site recovers and the webhook is back, before the DOWN's retry is due: the
    // RESOLVED is made now, but must wait for its DOWN.
    target.status.store(200, Ordering::SeqCst);
    hook.status.store(200, Ordering::SeqCst);
    let out = once(&config).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        kinds(&hook).is_empty(),
        "nothing may arrive before the DOWN's retry: {:?}",
        kinds(&hook)
    );
    // The DOWN's retry is due: it goes out, then its RESOLVED, in that order.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let out = once(&config).await;
    assert_eq!(
        kinds(&hook),
        ["down", "resolved"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // In arrival order, every request: the refused DOWN, the DOWN, the RESOLVED.
    let all: Vec<(String, u16)> = hook
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|(b, _, c)| (b["kind"].as_str().unwrap_or("?").to_string(), *c))
        .collect();
    assert_eq!(
        all,
        [
            ("down".to_string(), 503),
            ("down".to_string(), 200),
            ("resolved".to_string(), 200)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_error_settling_one_channel_never_aborts_another_channels_send() {
    let target = server(503).await;
    // `fast` answers after 1 s, `slow` after 3 s. The disk fills up while both are in flight:
    // recording `fast`'s outcome fails, and `slow`'s send must still run to its end.
    let mut fast = Receiver::start(vec![
        Reply::status(200, "ok").delayed(Duration::from_secs(1)),
    ])
    .await;
    let mut slow = Receiver::start(vec![
        Reply::status(200, "ok").delayed(Duration::from_secs(3)),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  fast: {{type: webhook, url: \"{}\"}}\n  slow: {{type: webhook, url: \"{}\"}}\nmonitors:\n  - {{name: shop, type: http, url: \"http://{}/\", alert: {{channels: [fast, slow], failure_threshold: 1}}}}\n",
            fast.url("/a"),
            slow.url("/b"),
            target.addr
        ),
    );
    let full = dir.path().join("disk-full");
    let envs = vec![
        ("LD_PRELOAD", shim().display().to_string()),
        ("WATCHPOST_SHIM_FULL_FILE", full.display().to_string()),
        // Commits fail (writes to the write-ahead log); opening the store still works.
        ("WATCHPOST_SHIM_FULL_MATCH", "state.db-wal".to_string()),
    ];
    let c = config.display().to_string();
    let run = tokio::spawn(async move { watchpost(&["once", "--json", "-c", &c], &envs).await });
    // Both requests arrived: the tick is committed; now the disk is full.
    fast.next().await;
    slow.next().await;
    std::fs::write(&full, "").unwrap();
    let out = run.await.unwrap();
    std::fs::remove_file(&full).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot record the delivery outcome") && stderr.contains("→ fast"),
        "{stderr}"
    );
    assert!(
        stderr.contains("→ slow (200)"),
        "the other channel's send ran to its end: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_row_is_named_and_stops_nothing() {
    let target = server(503).await;
    let healthy = server(200).await;
    let hook = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - {{name: shop, type: http, url: \"http://{}/\", alert: {{channels: [hook], failure_threshold: 2}}}}\n  - {{name: api, type: http, url: \"http://{}/\", alert: {{channels: [hook], failure_threshold: 1}}}}\n",
            hook.addr, target.addr, healthy.addr
        ),
    );
    assert_eq!(once(&config).await.status.code(), Some(1));
    {
        let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
        let changed = db
            .execute(
                "UPDATE monitor_state SET state = '{\"status\": 42, not json' WHERE monitor = 'shop'",
                [],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    // `api` goes down now: its alert must not be held up by `shop`'s bad row.
    healthy.status.store(500, Ordering::SeqCst);
    let out = once(&config).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("\"shop\"") && stderr.contains("unreadable"),
        "the bad row is reported with the monitor's name: {stderr}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the results are printed");
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(kinds(&hook), ["down"], "api's DOWN is delivered");
    let first_monitor = hook.requests.lock().unwrap()[0].0["monitor"].clone();
    assert_eq!(first_monitor, "api");
    // And `shop` works again from a fresh state: the next failing run opens its incident.
    let out = once(&config).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("unreadable"));
    assert_eq!(kinds(&hook), ["down", "down"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_during_the_flush_stops_at_once_and_keeps_the_alert_queued() {
    let target = server(503).await;
    // The channel never answers within its 20 s timeout: the DOWN is in flight at SIGTERM.
    let mut stuck = Receiver::start(vec![
        Reply::status(200, "late").delayed(Duration::from_secs(60)),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  stuck: {{type: webhook, url: \"{}\", timeout: 20s}}\nmonitors:\n  - {{name: shop, type: http, url: \"http://{}/\", every: 1s, alert: {{channels: [stuck], failure_threshold: 1}}}}\n",
            stuck.url("/alerts"),
            target.addr
        ),
    );
    let mut daemon = Daemon::start(&config, &[]);
    stuck.next().await;
    daemon.signal("-TERM");
    wait_for("the flush", Duration::from_secs(10), || {
        daemon.log().contains("flushing the outbox")
    })
    .await;
    let started = std::time::Instant::now();
    daemon.signal("-TERM");
    let code = daemon.exit_code(Duration::from_secs(5)).await;
    assert_eq!(code, Some(130), "{}", daemon.log());
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(daemon.log().contains("stay queued"), "{}", daemon.log());
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let pending: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pending, 1, "the DOWN is still queued for the next start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_recorded_even_when_the_store_is_locked_for_a_while() {
    let target = server(503).await;
    // The webhook answers after 1 s; meanwhile another process takes the database's write
    // lock and keeps it longer than the busy timeout (5 s).
    let mut hook = Receiver::start(vec![
        Reply::status(200, "ok").delayed(Duration::from_secs(1)),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"{}\"}}\nmonitors:\n  - {{name: shop, type: http, url: \"http://{}/\", alert: {{channels: [hook], failure_threshold: 1}}}}\n",
            hook.url("/a"),
            target.addr
        ),
    );
    let c = config.display().to_string();
    let run = tokio::spawn(async move { watchpost(&["once", "--json", "-c", &c], &[]).await });
    hook.next().await;
    let db = dir.path().join("state.db");
    let locker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        std::thread::sleep(Duration::from_secs(7));
        conn.execute_batch("ROLLBACK").unwrap();
    });
    let out = run.await.unwrap();
    locker.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "DOWN, delivered: {stderr}");
    assert!(stderr.contains("trying again"), "{stderr}");
    assert!(
        !stderr.contains("cannot record the delivery outcome"),
        "{stderr}"
    );
    // Recorded as delivered (not left leased, to be sent again when the lease ends).
    let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let (delivered, all): (i64, i64) = conn
        .query_row(
            "SELECT count(delivered_at), count(*) FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((delivered, all), (1, 1));
    assert!(hook.next_within(Duration::from_millis(300)).await.is_none());
}
