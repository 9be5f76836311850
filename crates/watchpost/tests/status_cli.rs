//! `watchpost status` and `GET /api/v1/status` through the real binary: after a known
//! sequence of passing and failing ticks they report the uptime that sequence implies, the
//! open incident, percentiles of the main metric and each location's latest result; and a
//! daemon with a short retention prunes while it runs.

mod common;

use common::{Daemon, http_get, server, wait_for, watchpost, write_config};
use serde_json::Value;
use std::time::Duration;

async fn status_json(config: &std::path::Path, extra: &[&str]) -> Value {
    let c = config.display().to_string();
    let mut args = vec!["status", "--json", "-c", &c];
    args.extend_from_slice(extra);
    let out = watchpost(&args, &[]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_the_uptime_of_a_known_sequence() {
    let target = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "monitors:\n  - name: shop\n    type: http\n    url: \"http://{}/\"\n    alert: {{failure_threshold: 1}}\n  - name: idle\n    type: tcp\n    address: \"127.0.0.1:9\"\n    schedule: \"0 0 0 1 1 * 2099\"\n",
            target.addr
        ),
    );
    let c = config.display().to_string();
    let once_args = ["once", "--json", "-c", c.as_str()];
    let once = || watchpost(&once_args, &[]);
    // Three passing ticks, then one failing: 75% up, and down now.
    for _ in 0..3 {
        assert_eq!(once().await.status.code(), Some(1), "idle always fails");
    }
    target
        .status
        .store(503, std::sync::atomic::Ordering::SeqCst);
    once().await;

    let doc = status_json(&config, &["--monitor", "shop"]).await;
    let monitors = doc["monitors"].as_array().unwrap();
    assert_eq!(monitors.len(), 1, "{doc}");
    let shop = &monitors[0];
    assert_eq!(shop["name"], "shop");
    assert_eq!(shop["state"], "down", "{shop}");
    assert!(
        shop["incident"].as_str().unwrap().starts_with("shop:"),
        "{shop}"
    );
    assert!(shop["since"].is_string(), "{shop}");
    for window in ["24h", "7d", "30d"] {
        assert_eq!(shop["uptime_pct"][window], 75.0, "{window}: {shop}");
    }
    let total = &shop["metrics_24h"]["total_ms"];
    assert!(total["p50"].as_f64().unwrap() > 0.0, "{shop}");
    assert!(total["p95"].as_f64().unwrap() >= total["p50"].as_f64().unwrap());
    let location = &shop["locations"][0];
    assert_eq!(location["location"], "local");
    assert_eq!(location["ok"], false);
    assert_eq!(location["metrics"]["status"], 503.0, "{location}");

    // Every monitor without --monitor.
    let all = status_json(&config, &[]).await;
    assert_eq!(all["monitors"].as_array().unwrap().len(), 2);
    let idle = &all["monitors"][1];
    assert_eq!(idle["name"], "idle");
    assert_eq!(
        idle["uptime_pct"]["24h"], 0.0,
        "idle ran (and failed) in every once: {idle}"
    );

    // The table says the same.
    let out = watchpost(&["status", "-c", &c], &[]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("shop")).unwrap();
    assert!(line.contains("down") && line.contains("75.00%"), "{text}");

    // An unknown monitor is bad usage.
    let out = watchpost(&["status", "-c", &c, "--monitor", "nope"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shop, idle"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_the_status_and_prunes_while_it_runs() {
    let target = server(503).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "retention: {{raw: 3s, minutes: 1h, hours: 1h}}\nmonitors:\n  - name: shop\n    type: http\n    url: \"http://{}/\"\n    every: 1s\n",
            target.addr
        ),
    );
    let daemon = Daemon::start(&config, &[]);
    let db = dir.path().join("state.db");
    let failing_rows = |older_than_secs: i64| -> i64 {
        let Ok(conn) = rusqlite::Connection::open(&db) else {
            return -1;
        };
        let cutoff = (chrono::Utc::now().timestamp() - older_than_secs) * 1_000_000_000;
        conn.query_row(
            "SELECT count(*) FROM results WHERE at < ?1",
            [cutoff],
            |r| r.get(0),
        )
        .unwrap_or(-1)
    };
    // Failing ticks are kept in full...
    wait_for("failing results", Duration::from_secs(20), || {
        failing_rows(0) >= 3
    })
    .await;
    // ...and none lives much past the 3 s retention (pruned every 1 s while running).
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(failing_rows(5), 0, "{}", daemon.log());
    assert!(failing_rows(0) >= 1);

    let (code, body) = http_get(daemon.port, "/api/v1/status").unwrap();
    assert_eq!(code, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    let shop = &doc["monitors"][0];
    assert_eq!(shop["name"], "shop");
    assert_eq!(shop["uptime_pct"]["24h"], 0.0, "{shop}");
    assert_eq!(shop["locations"][0]["ok"], false);

    // The history, per minute, from the rollups: every check failed.
    let (code, body) = http_get(
        daemon.port,
        "/api/v1/monitors/shop/history?since=1h&step=1m",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let history: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(history["monitor"], "shop");
    assert_eq!(history["step"], "1m");
    let points = history["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{history}");
    let checks: u64 = points.iter().map(|p| p["checks"].as_u64().unwrap()).sum();
    let failures: u64 = points.iter().map(|p| p["failures"].as_u64().unwrap()).sum();
    assert!(checks >= 3 && failures == checks, "{history}");
    assert_eq!(points[0]["uptime_pct"], 0.0);
    assert!(
        points[0]["metrics"]["total_ms"]["p50"].as_f64().unwrap() > 0.0,
        "{history}"
    );
    let (code, _) = http_get(daemon.port, "/api/v1/monitors/shop/history?step=1h").unwrap();
    assert_eq!(code, 200);
    let (code, body) = http_get(daemon.port, "/api/v1/monitors/nope/history").unwrap();
    assert_eq!(code, 404, "{body}");
    let (code, body) = http_get(daemon.port, "/api/v1/monitors/shop/history?step=5m").unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("1m or 1h"), "{body}");
}

/// Quiet ticks (passing, nothing to tell) wait in memory and are written every 15 seconds:
/// another process reads them while the daemon runs, and when it stops every check is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_ticks_of_a_running_daemon_are_written_while_it_runs_and_all_at_stop() {
    let target = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "monitors:\n  - name: shop\n    type: http\n    url: \"http://{}/\"\n    every: 1s\n",
            target.addr
        ),
    );
    let mut daemon = Daemon::start(&config, &[]);
    let db = dir.path().join("state.db");
    let counted = || -> i64 {
        let Ok(conn) = rusqlite::Connection::open(&db) else {
            return -1;
        };
        conn.query_row(
            "SELECT coalesce(sum(checks), 0) FROM rollups WHERE monitor = 'shop' AND step = 60",
            [],
            |r| r.get(0),
        )
        .unwrap_or(-1)
    };
    let served = || target.hits.load(std::sync::atomic::Ordering::SeqCst) as i64;
    // Written while running: more than the first (durable) tick by the first flushes.
    wait_for("quiet ticks in the file", Duration::from_secs(45), || {
        counted() >= 4
    })
    .await;
    let c = config.display().to_string();
    let doc = status_json(&config, &[]).await;
    assert_eq!(doc["monitors"][0]["uptime_pct"]["24h"], 100.0, "{doc}");
    assert_eq!(doc["monitors"][0]["state"], "up", "{doc}");
    // At a clean stop, what waits is written: every check the target saw is counted.
    daemon.signal("-TERM");
    assert_eq!(
        daemon.exit_code(Duration::from_secs(20)).await,
        Some(0),
        "{}",
        daemon.log()
    );
    assert!(served() >= 5, "{}", served());
    assert_eq!(counted(), served(), "{}", daemon.log());
    let out = watchpost(&["status", "-c", &c], &[]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("100.00%"));
}

/// `text` parsed by prometheus-client's parser (Python, from the test venv): `{family:
/// {"type", "samples": [[name, labels, value]]}}`. In CI a missing parser fails the test.
fn parse_prometheus(text: &str) -> Option<Value> {
    let python = watchpost_testkit::kafka::python();
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {f.name: {'type': f.type, 'samples': [[s.name, s.labels, s.value] for s in f.samples]}\n\
               for f in text_string_to_metric_families(sys.stdin.read())}\n\
        print(json.dumps(out))";
    let child = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no Python at {} for the Prometheus parser (run scripts/test.sh)",
            python.display()
        );
        eprintln!("skipped: no Python for the Prometheus parser");
        return None;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'prometheus_client'") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "prometheus-client missing in {} (run scripts/test.sh)",
            python.display()
        );
        return None;
    }
    assert!(
        out.status.success(),
        "the parser refused the page: {stderr}\n{text}"
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_carry_the_probe_phases_under_blackbox_names() {
    let target = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "monitors:\n  - name: \"shop \\\"eu\\\"\"\n    type: http\n    url: \"http://{}/\"\n    every: 1s\n  - name: cache\n    type: tcp\n    address: \"127.0.0.1:9\"\n    every: 1s\n",
            target.addr
        ),
    );
    let daemon = Daemon::start(&config, &[]);
    let mut page = String::new();
    wait_for("both monitors in /metrics", Duration::from_secs(20), || {
        page = http_get(daemon.port, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default();
        page.contains("monitor=\"cache\"") && page.contains("phase=\"connect\"")
    })
    .await;
    let Some(families) = parse_prometheus(&page) else {
        return;
    };
    let samples = |family: &str| -> Vec<Value> {
        families[family]["samples"]
            .as_array()
            .unwrap_or_else(|| panic!("no {family} in {page}"))
            .clone()
    };
    let value = |family: &str, monitor: &str| -> f64 {
        samples(family)
            .iter()
            .find(|s| s[1]["monitor"] == monitor)
            .unwrap_or_else(|| panic!("no {family} for {monitor}"))[2]
            .as_f64()
            .unwrap()
    };
    // The label value with quotes came through escaped and parses back as written.
    assert_eq!(value("probe_success", "shop \"eu\""), 1.0);
    assert_eq!(value("probe_success", "cache"), 0.0);
    assert_eq!(value("probe_http_status_code", "shop \"eu\""), 200.0);
    assert!(value("probe_duration_seconds", "shop \"eu\"") > 0.0);
    let phases: Vec<String> = samples("probe_http_duration_seconds")
        .iter()
        .map(|s| s[1]["phase"].as_str().unwrap().to_string())
        .collect();
    for phase in ["resolve", "connect", "processing", "transfer"] {
        assert!(phases.iter().any(|p| p == phase), "{phase}: {phases:?}");
    }
    assert_eq!(
        families["watchpost_scheduler_lateness_seconds"]["type"],
        "histogram"
    );
    assert!(samples("watchpost_scheduler_runs")[0][2].as_f64().unwrap() >= 2.0);
    assert_eq!(
        families["watchpost_store_commit_seconds"]["type"],
        "histogram"
    );
    assert!(families.get("watchpost_outbox_pending").is_some(), "{page}");
}
