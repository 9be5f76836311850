//! The real binary on PostgreSQL (the local test server, a database of its own per test):
//! two `once` processes run at the same moment send one DOWN, then one RESOLVED; a process
//! SIGKILLed right after its commit has its alert delivered once by the next run; `status`
//! reads the same database. With `CI=true` a server that can't be reached fails the test.

mod common;

use common::{Database, kinds, server, watchpost};
use std::sync::atomic::Ordering;

fn config(
    dir: &std::path::Path,
    db: &Database,
    target: &common::Server,
    hook: &common::Server,
) -> String {
    let path = dir.join("watchpost.yaml");
    std::fs::write(
        &path,
        format!(
            "storage: \"{}\"\nchannels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - name: shop\n    type: http\n    url: \"http://{}/\"\n    alert: {{channels: [hook], failure_threshold: 1}}\n",
            db.url, hook.addr, target.addr
        ),
    )
    .unwrap();
    path.display().to_string()
}

async fn once(config: &str, fault: Option<&str>) -> std::process::Output {
    let envs: Vec<(&str, String)> = fault
        .map(|f| ("WATCHPOST_FAULT", f.to_string()))
        .into_iter()
        .collect();
    watchpost(&["once", "--json", "-c", config], &envs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_at_once_alert_once_and_resolve_once() {
    let Some(db) = Database::new("wp_cli") else {
        return;
    };
    let target = server(503).await;
    let hook = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &db, &target, &hook);
    for round in 0..3 {
        let (a, b) = tokio::join!(once(&c, None), once(&c, None));
        for out in [&a, &b] {
            assert_eq!(
                out.status.code(),
                Some(1),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert_eq!(
        kinds(&hook),
        ["down"],
        "six failing runs, three pairs at once: one DOWN"
    );

    target.status.store(200, Ordering::SeqCst);
    for _ in 0..2 {
        let (a, b) = tokio::join!(once(&c, None), once(&c, None));
        assert_eq!(a.status.code(), Some(0));
        assert_eq!(b.status.code(), Some(0));
    }
    assert_eq!(kinds(&hook), ["down", "resolved"], "one RESOLVED");

    // `status` reads the same database: 6 failing and 4 passing checks.
    let out = watchpost(&["status", "--json", "-c", &c], &[]).await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(doc["monitors"][0]["state"], "up", "{doc}");
    assert_eq!(doc["monitors"][0]["uptime_pct"]["24h"], 40.0, "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_commit_the_next_run_delivers_once() {
    let Some(db) = Database::new("wp_cli") else {
        return;
    };
    let target = server(503).await;
    let hook = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &db, &target, &hook);
    let killed = once(&c, Some("kill-after-commit")).await;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.status.signal(), Some(9), "the process was SIGKILLed");
    assert!(kinds(&hook).is_empty(), "nothing delivered before the kill");
    once(&c, None).await;
    assert_eq!(
        kinds(&hook),
        ["down"],
        "the committed alert, delivered by the next run"
    );
    once(&c, None).await;
    assert_eq!(kinds(&hook), ["down"], "and never again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_on_postgres_checks_serves_status_and_stops_cleanly() {
    let Some(db) = Database::new("wp_cli") else {
        return;
    };
    let target = server(200).await;
    let hook = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &db, &target, &hook);
    let text = std::fs::read_to_string(&c).unwrap();
    std::fs::write(&c, text.replace("    alert:", "    every: 1s\n    alert:")).unwrap();
    let mut daemon = common::Daemon::start(std::path::Path::new(&c), &[]);
    let mut body = String::new();
    common::wait_for(
        "two checks in /api/v1/status",
        std::time::Duration::from_secs(20),
        || {
            body = common::http_get(daemon.port, "/api/v1/status")
                .map(|(_, b)| b)
                .unwrap_or_default();
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|d| d["monitors"][0]["uptime_pct"]["24h"].as_f64())
                == Some(100.0)
        },
    )
    .await;
    daemon.signal("-TERM");
    let code = daemon.exit_code(std::time::Duration::from_secs(20)).await;
    let log = daemon.log();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("internal error"), "{log}");
}
