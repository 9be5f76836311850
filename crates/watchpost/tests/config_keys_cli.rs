//! Every documented config key does what it says, shown through the real binary (nothing is
//! accepted and then ignored): method, body, insecure, max_body, timeout, schedule,
//! success_threshold, send_resolved, locale, retention and concurrency. (url, headers,
//! follow_redirects, every, conditions, channels, failure_threshold, repeat, maintenance,
//! timezone, storage and delivery.max_age have their own end-to-end tests.)

mod common;

use common::{Daemon, kinds, once_json, server, wait_for, write_config};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use watchpost_testkit::{HttpServer, Receiver, Reply, TestCa, TlsOptions};

fn failures(out: &std::process::Output) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|m| {
            m["observations"][0]["failures"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|f| f.as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_body_and_headers_are_sent() {
    let mut target = Receiver::start(vec![Reply::status(200, "ok")]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "monitors:\n  - name: api\n    type: http\n    url: \"{}\"\n    method: PUT\n    headers: {{Content-Type: application/json}}\n    body: '{{\"ping\": true}}'\n",
            target.url("/v1/ping")
        ),
    );
    let out = once_json(&config).await;
    assert_eq!(out.status.code(), Some(0));
    let seen = target.next().await;
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.path(), "/v1/ping");
    assert_eq!(seen.header("content-type"), "application/json");
    assert_eq!(seen.json(), serde_json::json!({"ping": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_max_body_and_timeout_are_applied() {
    let ca = TestCa::new("config keys test CA");
    let tls = HttpServer::start(Some(TlsOptions {
        config: ca.leaf(&["localhost"]).server_config(&[b"http/1.1"]),
        handshake_delay: Duration::ZERO,
        stall: false,
    }))
    .await;
    let plain = HttpServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "monitors:\n  - {{name: strict, type: http, url: \"https://{tls}/\"}}\n  - {{name: lax, type: http, url: \"https://{tls}/\", insecure: true}}\n  - {{name: big, type: http, url: \"http://{plain}/?size=4096\", max_body: 1KiB}}\n  - {{name: slow, type: http, url: \"http://{plain}/?wait=3000\", timeout: 500ms}}\n",
            tls = tls.addr,
            plain = plain.addr
        ),
    );
    let started = Instant::now();
    let out = once_json(&config).await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "timeout: 500ms held"
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |name: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()
            .clone()
    };
    let kind = |name: &str| by_name(name)["observations"][0]["check"]["error"]["kind"].clone();
    assert_eq!(kind("strict"), "certificate", "verified by default");
    assert_eq!(
        by_name("lax")["ok"],
        true,
        "insecure: true accepts the certificate"
    );
    assert_eq!(kind("big"), "too_large");
    assert_eq!(kind("slow"), "timeout");
    let all = failures(&out).join("\n");
    assert!(all.contains("1024"), "the cap is named: {all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_schedule_fires_on_its_seconds() {
    let target = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "timezone: UTC\nmonitors:\n  - {{name: even, type: http, url: \"http://{}/\", schedule: \"*/2 * * * * * *\"}}\n",
            target.addr
        ),
    );
    let daemon = Daemon::start(&config, &[]);
    let lines = || -> Vec<String> {
        daemon
            .log()
            .lines()
            .filter(|l| l.contains("  even  PASS"))
            .map(str::to_string)
            .collect()
    };
    wait_for("three checks", Duration::from_secs(15), || {
        lines().len() >= 3
    })
    .await;
    for line in lines() {
        // `... INFO 12:00:04  even  PASS ...`: the tick's time, on an even second.
        let tick = line.split("  even").next().unwrap();
        let seconds: u32 = tick[tick.len() - 2..].parse().unwrap();
        assert_eq!(seconds % 2, 0, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_threshold_send_resolved_and_locale_shape_the_alerts() {
    let target = server(503).await;
    let hook = server(200).await;
    let quiet = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "locale: zh-CN\nchannels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\n  quiet: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - {{name: shop, type: http, url: \"http://{t}/\", alert: {{channels: [hook], failure_threshold: 1, success_threshold: 2}}}}\n  - {{name: blog, type: http, url: \"http://{t}/\", alert: {{channels: [quiet], failure_threshold: 1, send_resolved: false}}}}\n",
            hook.addr,
            quiet.addr,
            t = target.addr
        ),
    );
    once_json(&config).await;
    assert_eq!(kinds(&hook), ["down"]);
    assert_eq!(kinds(&quiet), ["down"]);
    let title = hook.requests.lock().unwrap()[0].0["title"].clone();
    assert_eq!(title, "【故障】shop", "locale: zh-CN");
    target.status.store(200, Ordering::SeqCst);
    once_json(&config).await;
    assert_eq!(kinds(&hook), ["down"], "one passing tick is not enough");
    once_json(&config).await;
    assert_eq!(kinds(&hook), ["down", "resolved"], "two are");
    assert_eq!(kinds(&quiet), ["down"], "send_resolved: false");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_old_results() {
    // Failing checks: their full results are kept (passing ones live on in the rollups).
    let target = server(503).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "retention: 1s\nmonitors:\n  - {{name: shop, type: http, url: \"http://{}/\"}}\n",
            target.addr
        ),
    );
    let rows = || -> i64 {
        let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
        db.query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0))
            .unwrap()
    };
    once_json(&config).await;
    once_json(&config).await;
    assert_eq!(rows(), 2, "recent results are kept");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    once_json(&config).await;
    assert_eq!(rows(), 1, "results older than 1s are pruned");
}

/// Counts connections open at once; answers each after `hold`.
async fn counting_server(hold: Duration) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (open, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen = max.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (open, max) = (open.clone(), max.clone());
            tokio::spawn(async move {
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                let _ = common::read_request(&mut s).await;
                tokio::time::sleep(hold).await;
                use tokio::io::AsyncWriteExt;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_bounds_the_checks_in_flight() {
    let (addr, max_open) = counting_server(Duration::from_millis(150)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut monitors = String::from("concurrency: 2\nmonitors:\n");
    for i in 0..8 {
        monitors.push_str(&format!(
            "  - {{name: m{i}, type: http, url: \"http://{addr}/{i}\"}}\n"
        ));
    }
    let config = write_config(dir.path(), &monitors);
    let started = Instant::now();
    let out = once_json(&config).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        max_open.load(Ordering::SeqCst),
        2,
        "at most 2 checks at once"
    );
    // 8 checks of 150 ms, two at a time: at least 4 rounds.
    assert!(started.elapsed() >= Duration::from_millis(600));
}
