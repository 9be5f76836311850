//! Time, end to end through the real daemon: a check never outlives its tick (a target that
//! accepts and never answers is reported DOWN on time), and wall-clock steps in either
//! direction neither stall checks and retries nor give an alert up. The clock is stepped by
//! the LD_PRELOAD shim (tests/support/shim.c), which shifts CLOCK_REALTIME only.

mod common;

use common::{Daemon, hook_and_shop, kinds, server, shim, wait_for, write_config};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Lines the daemon logged for checks of `monitor` (`-v`: one per check).
fn checks(log: &str, monitor: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.contains(&format!("  {monitor}  PASS")) || l.contains(&format!("  {monitor}  FAIL"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_answers_is_down_on_time_not_after_its_timeout() {
    // Accepts connections and never answers.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = hanging.local_addr().unwrap();
    let hook = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    // every 2s with the default 10 s timeout: each check must end within its 2 s tick.
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - {{name: stuck, type: http, url: \"http://{addr}/\", every: 2s, alert: {{channels: [hook], failure_threshold: 2}}}}\n",
            hook.addr
        ),
    );
    let started = Instant::now();
    let daemon = Daemon::start(&config, &[]);
    wait_for("the DOWN alert", Duration::from_secs(15), || {
        kinds(&hook) == ["down"]
    })
    .await;
    let took = started.elapsed();
    // Two failing ticks 2 s apart, each cut at ~1.8 s: ~4-6 s (it was 20 s when the 10 s
    // timeout ran over the ticks).
    assert!(took < Duration::from_secs(9), "DOWN after {took:?}");
    let log = daemon.log();
    assert!(log.contains("wait timed out"), "{log}");
    drop(hanging);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_steps_neither_stall_checks_and_retries_nor_give_alerts_up() {
    let target = server(503).await;
    let hook = server(500).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock-offset");
    std::fs::write(&clock, "0").unwrap();
    let config = write_config(
        dir.path(),
        &hook_and_shop(hook.addr, target.addr, "every: 1s", 1),
    );
    let daemon = Daemon::start(
        &config,
        &[
            ("LD_PRELOAD", shim().display().to_string()),
            ("WATCHPOST_SHIM_CLOCK_FILE", clock.display().to_string()),
        ],
    );
    // The DOWN is made and refused twice (the webhook answers 500).
    wait_for("two refused DOWN attempts", Duration::from_secs(15), || {
        hook.requests.lock().unwrap().len() >= 2
    })
    .await;

    // The clock jumps 25 h ahead: more than delivery.max_age (24 h) after the DOWN was made.
    std::fs::write(&clock, (25 * 3600).to_string()).unwrap();
    wait_for(
        "the forward step to be noticed",
        Duration::from_secs(10),
        || daemon.log().contains("stepped forward"),
    )
    .await;
    let before = checks(&daemon.log(), "shop");
    wait_for(
        "checks after the forward step",
        Duration::from_secs(10),
        || checks(&daemon.log(), "shop") >= before + 3,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !daemon.log().contains("giving up"),
        "a clock step alone gave the alert up: {}",
        daemon.log()
    );

    // The webhook is back, and the clock goes 27 h back (2 h before the real time): the
    // kept DOWN, whose retry is now due "tomorrow", must go out at once, not in 27 h.
    hook.status.store(200, Ordering::SeqCst);
    std::fs::write(&clock, (-2 * 3600).to_string()).unwrap();
    wait_for(
        "the DOWN after the backward step",
        Duration::from_secs(15),
        || kinds(&hook) == ["down"],
    )
    .await;
    wait_for(
        "the backward step to be noticed",
        Duration::from_secs(5),
        || daemon.log().contains("stepped back"),
    )
    .await;
    let before = checks(&daemon.log(), "shop");
    wait_for(
        "checks after the backward step",
        Duration::from_secs(10),
        || checks(&daemon.log(), "shop") >= before + 3,
    )
    .await;
    // And the site recovers: the RESOLVED follows.
    target.status.store(200, Ordering::SeqCst);
    wait_for("the RESOLVED", Duration::from_secs(10), || {
        kinds(&hook) == ["down", "resolved"]
    })
    .await;
}
