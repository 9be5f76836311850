//! `watchpost run` end to end: the daemon alerts and recovers on schedule, answers /healthz,
//! rejects a bad config on SIGHUP (keeping the old one), takes a good one, and exits cleanly on
//! SIGTERM.

mod common;

use common::{Daemon, healthz, kinds, server, wait_for, write_config};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn healthy(port: u16) -> bool {
    healthz(port).is_some_and(|(code, body)| code == 200 && body == "ok\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_alerts_recovers_reloads_and_stops() {
    let target = server(503).await;
    let hook = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - name: shop\n    type: http\n    url: http://{}/\n    every: 1s\n    conditions: [\"status == 200\"]\n    alert: {{channels: [hook], failure_threshold: 2}}\n",
        hook.addr, target.addr
    );
    let config = write_config(dir.path(), &body);
    let good = std::fs::read_to_string(&config).unwrap();
    let mut daemon = Daemon::start(&config, &[]);

    wait_for("/healthz", Duration::from_secs(10), || healthy(daemon.port)).await;
    wait_for("the DOWN alert", Duration::from_secs(10), || {
        kinds(&hook) == ["down"]
    })
    .await;
    target.status.store(200, Ordering::SeqCst);
    wait_for("the RESOLVED alert", Duration::from_secs(10), || {
        kinds(&hook) == ["down", "resolved"]
    })
    .await;

    // A bad config on SIGHUP is rejected and the daemon keeps going.
    std::fs::write(&config, good.replace("every: 1s", "every: soon")).unwrap();
    daemon.signal("-HUP");
    wait_for("the rejection", Duration::from_secs(5), || {
        daemon.log().contains("rejected")
    })
    .await;
    assert!(
        daemon.log().contains("every: \"soon\" is not a duration"),
        "{}",
        daemon.log()
    );
    assert!(daemon.child.try_wait().unwrap().is_none(), "still running");
    assert!(healthy(daemon.port));
    // A good one is taken.
    std::fs::write(&config, &good).unwrap();
    daemon.signal("-HUP");
    wait_for("the reload", Duration::from_secs(5), || {
        daemon.log().contains("reloaded")
    })
    .await;

    daemon.signal("-TERM");
    let code = daemon.exit_code(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{}", daemon.log());
    assert!(daemon.log().contains("flushing the outbox"));
    assert_eq!(
        kinds(&hook),
        ["down", "resolved"],
        "no duplicates across the reload"
    );
}
