//! Bounded resources and watchpost's own failures, end to end through the real binary: under
//! the common `ulimit -n 1024` thousands of monitors run without a single failure, idle
//! connections to the listener can't starve the checks, a full disk under the store is
//! watchpost's failure (exit 3, /healthz 503), never the target's (no DOWN), and a panicking
//! check is isolated.

mod common;

use common::{
    Daemon, healthz, hook_and_shop, kinds, server, shim, wait_for, watchpost, write_config,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// This test process serves thousands of connections: give it room.
fn raise_our_limit() {
    let _ = rlimit::increase_nofile_limit(65_536);
}

/// `watchpost ARGS` under `ulimit -n LIMIT` (soft and hard: it can't raise it).
async fn under_ulimit(limit: u32, args: &str) -> std::process::Output {
    let script = format!(
        "ulimit -n {limit} && exec \"{}\" {args}",
        env!("CARGO_BIN_EXE_watchpost")
    );
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_monitors_under_ulimit_1024_give_no_failure_and_no_false_down() {
    raise_our_limit();
    let target = server(200).await;
    let hook = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let mut monitors = String::from("monitors:\n");
    for i in 0..1500 {
        monitors.push_str(&format!(
            "  - {{name: m{i}, type: http, url: \"http://{}/{i}\", alert: {{channels: [hook], failure_threshold: 1}}}}\n",
            target.addr
        ));
    }
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\n{monitors}",
            hook.addr
        ),
    );
    for run in 0..2 {
        let out = under_ulimit(1024, &format!("once --json -c {}", config.display())).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "run {run}: {stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let results = v.as_array().unwrap();
        assert_eq!(results.len(), 1500);
        let failed: Vec<&serde_json::Value> = results.iter().filter(|r| r["ok"] != true).collect();
        assert!(
            failed.is_empty(),
            "run {run}: {} failed: {:?}",
            failed.len(),
            failed.first()
        );
        assert!(!stderr.contains("Too many open files"), "{stderr}");
    }
    assert!(kinds(&hook).is_empty(), "no false DOWN: {:?}", kinds(&hook));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_that_could_not_run_are_not_blamed_on_the_target_and_the_next_alert_says_so() {
    raise_our_limit();
    // Every target answers after 1 s: the checks that got a socket hold it that long, so
    // under `ulimit -n 36` most of the others can't open one.
    let target = watchpost_testkit::HttpServer::start(None).await;
    let hook = server(200).await;
    // Which checks get a socket is a race; the assertions below need the failing
    // monitor's own check to have run, so a run where it didn't is repeated.
    let mut body = format!(
        "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - {{name: down, type: http, url: \"http://{}/?wait=1000&status=503\", alert: {{channels: [hook], failure_threshold: 1}}}}\n",
        hook.addr, target.addr
    );
    for i in 0..60 {
        body.push_str(&format!(
            "  - {{name: m{i}, type: http, url: \"http://{}/?wait=1000&n={i}\", alert: {{channels: [hook], failure_threshold: 1}}}}\n",
            target.addr
        ));
    }
    let mut attempt = 0;
    let stderr = loop {
        attempt += 1;
        hook.requests.lock().unwrap().clear();
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &body);
        let out = under_ulimit(36, &format!("once --json -c {}", config.display())).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(3),
            "watchpost's own failure: {stderr}"
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let not_run: Vec<&serde_json::Value> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["state"] == "unknown")
            .collect();
        assert!(!not_run.is_empty(), "some checks could not run: {stderr}");
        for m in &not_run {
            assert!(
                m["error"].as_str().unwrap().contains("file descriptors"),
                "{m}"
            );
            assert_eq!(m["notifications"], 0);
        }
        if not_run.iter().any(|m| m["name"] == "down") {
            // Nothing may alert when the failing target was never reached either.
            assert!(kinds(&hook).is_empty(), "{stderr}");
            assert!(
                attempt < 8,
                "the failing monitor never got a socket: {stderr}"
            );
            continue;
        }
        break stderr;
    };
    // Only the monitor whose target really failed alerted, and its alert says what
    // happened to the others.
    assert_eq!(kinds(&hook), ["down"], "{stderr}");
    let alert = hook.requests.lock().unwrap()[0].0.clone();
    assert_eq!(alert["monitor"], "down");
    let note = alert["notes"][0].as_str().unwrap_or_default();
    assert!(
        note.contains("could not run") && note.contains("Too many open files"),
        "{alert}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_to_the_listener_cannot_starve_the_checks() {
    raise_our_limit();
    let target = server(200).await;
    let hook = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &hook_and_shop(hook.addr, target.addr, "every: 1s", 1),
    );
    let daemon = Daemon::start_with(&config, &[], |cmd| {
        // Run the same binary under `ulimit -n 1024` through a shell.
        let program = cmd.get_program().to_owned();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| format!("\"{}\"", a.to_string_lossy()))
            .collect();
        let script = format!(
            "ulimit -n 1024 && exec \"{}\" {}",
            program.to_string_lossy(),
            args.join(" ")
        );
        let mut shell = std::process::Command::new("bash");
        shell.args(["-c", &script]);
        std::mem::swap(cmd, &mut shell);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(config.with_extension("stderr.log")).unwrap());
    });
    let log = || std::fs::read_to_string(config.with_extension("stderr.log")).unwrap_or_default();
    wait_for("/healthz", Duration::from_secs(10), || {
        healthz(daemon.port).is_some_and(|(c, _)| c == 200)
    })
    .await;
    // 1,100 connections that send nothing.
    let mut idle = Vec::new();
    for _ in 0..1100 {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", daemon.port)) {
            idle.push(s);
        }
    }
    assert!(idle.len() >= 1000, "opened {}", idle.len());
    let passes = |log: &str| log.matches("  shop  PASS").count();
    let before = passes(&log());
    wait_for(
        "checks while the listener is flooded",
        Duration::from_secs(15),
        || passes(&log()) >= before + 5,
    )
    .await;
    assert!(kinds(&hook).is_empty(), "a false DOWN: {}", log());
    assert!(!log().contains("FAIL"), "{}", log());
    // The flood ends: what it left in the accept queue is cleared at once, and /healthz
    // answers again.
    drop(idle);
    wait_for("/healthz after the flood", Duration::from_secs(15), || {
        healthz(daemon.port).is_some_and(|(c, _)| c == 200)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_watchpost_failing_not_the_target() {
    let target = server(503).await;
    let hook = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hook_and_shop(hook.addr, target.addr, "", 1));
    // The store exists (a first healthy run), then the disk fills up.
    target.status.store(200, Ordering::SeqCst);
    let c = config.display().to_string();
    assert_eq!(
        watchpost(&["once", "-c", &c], &[]).await.status.code(),
        Some(0)
    );
    target.status.store(503, Ordering::SeqCst);
    let full = dir.path().join("disk-full");
    std::fs::write(&full, "").unwrap();
    let envs = [
        ("LD_PRELOAD", shim().display().to_string()),
        ("WATCHPOST_SHIM_FULL_FILE", full.display().to_string()),
        // Commits fail (writes to the write-ahead log); opening the store still works.
        ("WATCHPOST_SHIM_FULL_MATCH", "state.db-wal".to_string()),
    ];
    let out = watchpost(&["once", "-c", &c], &envs).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("shop") && stderr.contains("disk is full"),
        "{stderr}"
    );
    assert!(stdout.contains("ERROR"), "the table still prints: {stdout}");
    assert!(
        kinds(&hook).is_empty(),
        "no DOWN while nothing could be recorded"
    );

    // The daemon: /healthz says what is wrong while the disk is full, and recovers.
    std::fs::remove_file(&full).unwrap();
    let daemon_config = write_config(
        dir.path(),
        &hook_and_shop(hook.addr, target.addr, "every: 1s", 1000),
    );
    let daemon = Daemon::start(&daemon_config, &envs);
    wait_for("a healthy daemon", Duration::from_secs(10), || {
        healthz(daemon.port).is_some_and(|(c, _)| c == 200)
    })
    .await;
    std::fs::write(&full, "").unwrap();
    wait_for(
        "/healthz to report the store",
        Duration::from_secs(10),
        || {
            healthz(daemon.port)
                .is_some_and(|(c, body)| c == 503 && body.contains("store commit failed"))
        },
    )
    .await;
    std::fs::remove_file(&full).unwrap();
    wait_for("/healthz to recover", Duration::from_secs(10), || {
        healthz(daemon.port).is_some_and(|(c, _)| c == 200)
    })
    .await;
}

#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_check_is_isolated_logged_and_reported() {
    let target = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "monitors:\n  - {{name: bad, type: http, url: \"http://{0}/\", every: 1s}}\n  - {{name: good, type: http, url: \"http://{0}/\", every: 1s}}\n",
            target.addr
        ),
    );
    let daemon = Daemon::start(
        &config,
        &[("WATCHPOST_FAULT", "panic-in-check:bad".to_string())],
    );
    wait_for(
        "good to keep being checked",
        Duration::from_secs(15),
        || daemon.log().matches("  good  PASS").count() >= 4,
    )
    .await;
    let log = daemon.log();
    assert!(
        log.contains("injected fault: panic in the check of \"bad\""),
        "{log}"
    );
    assert!(!log.contains("RUST_BACKTRACE"), "no backtrace noise: {log}");
    // It panicked more than once: the job was not left marked as running forever.
    assert!(log.matches("injected fault").count() >= 2, "{log}");
    let (code, body) = healthz(daemon.port).unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("panicked"), "{body}");
}

#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_scheduler_loop_ends_the_process_instead_of_looking_alive() {
    let target = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "monitors:\n  - {{name: shop, type: http, url: \"http://{}/\", every: 1s}}\n",
            target.addr
        ),
    );
    let mut daemon = Daemon::start(
        &config,
        &[("WATCHPOST_FAULT", "scheduler-panic".to_string())],
    );
    let code = daemon.exit_code(Duration::from_secs(15)).await;
    let log = daemon.log();
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("the scheduler loop panicked"), "{log}");
    assert!(log.contains("supervisor"), "{log}");
}

/// The tests above that need the `fault-injection` feature must not silently vanish in CI.
#[cfg(not(feature = "fault-injection"))]
#[test]
fn fault_injection_tests_are_compiled_in_ci() {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the fault-injection tests are not compiled: run \
         `cargo test --features watchpost/fault-injection` (scripts/test.sh does)"
    );
}
