//! `watchpost run` end to end: the daemon alerts and recovers on schedule, answers /healthz,
//! rejects a bad config on SIGHUP (keeping the old one), takes a good one, and exits cleanly on
//! SIGTERM.

mod common;

use common::{kinds, server};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kill(child: &Child, sig: &str) {
    Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
}

fn healthz(port: u16) -> bool {
    use std::io::Write;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200") && out.ends_with("ok\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_alerts_recovers_reloads_and_stops() {
    let target = server(503).await;
    let hook = server(200).await;
    let dir = std::env::temp_dir().join(format!("wp-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("watchpost.yaml");
    let good = format!(
        "storage: sqlite://{}/state.db\nchannels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - name: shop\n    type: http\n    url: http://{}/\n    every: 1s\n    conditions: [\"status == 200\"]\n    alert: {{channels: [hook], failure_threshold: 2}}\n",
        dir.display(),
        hook.addr,
        target.addr
    );
    std::fs::write(&config, &good).unwrap();
    let port = free_port();
    let stderr_file = dir.join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}"), "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&stderr_file).unwrap_or_default();

    wait_for("/healthz", Duration::from_secs(10), || healthz(port)).await;
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
    kill(&child, "-HUP");
    wait_for("the rejection", Duration::from_secs(5), || {
        log().contains("rejected")
    })
    .await;
    assert!(
        log().contains("every: \"soon\" is not a duration"),
        "{}",
        log()
    );
    assert!(child.try_wait().unwrap().is_none(), "still running");
    assert!(healthz(port));
    // A good one is taken.
    std::fs::write(&config, &good).unwrap();
    kill(&child, "-HUP");
    wait_for("the reload", Duration::from_secs(5), || {
        log().contains("reloaded")
    })
    .await;

    kill(&child, "-TERM");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "{}", log());
    assert!(log().contains("flushing the outbox"));
    assert_eq!(
        kinds(&hook),
        ["down", "resolved"],
        "no duplicates across the reload"
    );
    std::fs::remove_dir_all(&dir).ok();
}
