//! Operating watchpost, through the real binary: log lines carry a timestamp and a level,
//! reloads refuse what they can't apply, bad durations never crash a running daemon, what
//! can't work is refused up front, messages show the config's time zone, and the exit codes
//! tell "a site is down" from "watchpost could not work".

mod common;

use common::{Daemon, healthz, hook_and_shop, kinds, server, wait_for, watchpost, write_config};
use std::time::Duration;
use watchpost_testkit::{Receiver, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_logs_are_timestamped_and_reloads_refuse_what_they_cannot_apply() {
    let target = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let monitors = format!(
        "monitors:\n  - {{name: shop, type: http, url: \"http://{}/\", every: 1s}}\n",
        target.addr
    );
    let config = write_config(dir.path(), &monitors);
    let daemon = Daemon::start(&config, &[]);
    wait_for("a check", Duration::from_secs(10), || {
        daemon.log().contains("  shop  PASS")
    })
    .await;
    // Every line: an RFC 3339 timestamp with its offset, then a level.
    for line in daemon.log().lines().filter(|l| !l.trim().is_empty()) {
        let (stamp, rest) = line.split_once(' ').unwrap_or_default();
        assert!(
            stamp.len() >= 25 && stamp.as_bytes()[4] == b'-' && stamp.contains('T'),
            "no timestamp: {line:?}"
        );
        let level = rest.trim_start().split(' ').next().unwrap_or_default();
        assert!(
            ["INFO", "WARN", "ERROR", "DEBUG", "TRACE"].contains(&level),
            "no level: {line:?}"
        );
    }

    // A duration too large to represent, sent by SIGHUP: rejected, the daemon keeps running.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("every: 1s", "every: 99999999999999999999999d"),
    )
    .unwrap();
    daemon.signal("-HUP");
    wait_for("the rejection", Duration::from_secs(5), || {
        daemon.log().contains("rejected")
    })
    .await;
    assert!(daemon.log().contains("maximum"), "{}", daemon.log());

    // A new `storage:` takes a restart: said so, not "reloaded".
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    write_config(&other, &monitors);
    std::fs::copy(other.join("watchpost.yaml"), &config).unwrap();
    daemon.signal("-HUP");
    wait_for("the storage refusal", Duration::from_secs(5), || {
        daemon.log().contains("takes a restart")
    })
    .await;
    assert!(!daemon.log().contains("reloaded"), "{}", daemon.log());
    let (code, body) = healthz(daemon.port).unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, "ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_work_is_refused_before_it_runs() {
    let target = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    for (body, expect) in [
        (
            "  - {name: far, type: http, url: \"http://T/\", every: 1000000000000d}\n",
            "maximum",
        ),
        (
            "  - {name: far, type: http, url: \"http://T/\", locations: [local, bj], alert: {quorum: 2}}\n",
            "bj",
        ),
    ] {
        let config = write_config(
            dir.path(),
            &format!("monitors:\n{}", body.replace('T', &target.addr.to_string())),
        );
        let c = config.display().to_string();
        for cmd in ["validate", "once", "run"] {
            let out = watchpost(&[cmd, "-c", &c], &[]).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd}: {stderr}");
            assert!(stderr.contains(expect), "{cmd}: {stderr}");
            assert!(!stderr.contains("panicked"), "{cmd}: {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_status_check_holds_whatever_other_conditions_say() {
    let target = server(503).await;
    let hook = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &hook_and_shop(hook.addr, target.addr, r#"conditions: ["total < 5s"]"#, 1),
    );
    let c = config.display().to_string();
    let out = watchpost(&["once", "--json", "-c", &c], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failures = v[0]["observations"][0]["failures"].to_string();
    assert!(failures.contains("status 503"), "{failures}");
    assert_eq!(kinds(&hook), ["down"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_texts_show_the_configured_time_zone_and_json_stays_utc() {
    let target = server(503).await;
    let mut hook = Receiver::start(vec![Reply::status(200, "ok")]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "timezone: Asia/Shanghai\nchannels:\n  hook: {{type: webhook, url: \"{}\"}}\nmonitors:\n  - {{name: shop, type: http, url: \"http://{}/\", alert: {{channels: [hook], failure_threshold: 1}}}}\n",
            hook.url("/alerts"),
            target.addr
        ),
    );
    let c = config.display().to_string();
    let out = watchpost(&["once", "-c", &c], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let alert = hook.next().await.json();
    let text = alert["text"].as_str().unwrap();
    assert!(text.contains(" +08:00"), "{text}");
    let at = alert["at"].as_str().unwrap();
    assert!(at.ends_with('Z'), "machine fields stay RFC 3339 UTC: {at}");
    let stamp = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    let local = stamp
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M:%S +08:00")
        .to_string();
    assert!(text.contains(&local), "{local} in {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_documents_the_exit_codes() {
    let out = watchpost(&["--help"], &[]).await;
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("3 watchpost itself could not do its job"),
        "{help}"
    );
    let out = watchpost(&["once", "--help"], &[]).await;
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("3 watchpost could not do its job"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_right_after_a_reload_is_still_graceful() {
    let target = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "monitors:\n  - {{name: shop, type: http, url: \"http://{}/?slow\", every: 1s}}\n",
            target.addr
        ),
    );
    let mut daemon = Daemon::start(&config, &[]);
    wait_for("a check", Duration::from_secs(10), || {
        daemon.log().contains("  shop  PASS")
    })
    .await;
    daemon.signal("-HUP");
    daemon.signal("-TERM");
    let code = daemon.exit_code(Duration::from_secs(10)).await;
    assert_eq!(
        code,
        Some(0),
        "one SIGTERM is a graceful stop: {}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("flushing the outbox"),
        "{}",
        daemon.log()
    );
}
