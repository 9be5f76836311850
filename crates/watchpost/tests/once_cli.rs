//! `watchpost once` end to end: separate processes sharing one SQLite store, a local target
//! that goes down and up, and a local webhook receiver.

mod common;

use common::{Server, kinds, server, store_bytes, watchpost, watchpost_in};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::Ordering;
use std::time::Duration;

struct Setup {
    dir: PathBuf,
    config: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn setup(name: &str, target: &Server, hook: &Server, extra: &str) -> Setup {
    let dir = std::env::temp_dir().join(format!("wp-once-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("watchpost.yaml");
    std::fs::write(
        &config,
        format!(
            "storage: sqlite://{}/state.db\nchannels:\n  hook: {{type: webhook, url: \"http://{}/alerts\", timeout: 2s}}\nmonitors:\n  - name: shop\n    type: http\n    url: http://{}/\n    conditions: [\"status == 200\"]\n{extra}",
            dir.display(),
            hook.addr,
            target.addr
        ),
    )
    .unwrap();
    Setup { dir, config }
}

async fn once(config: &Path) -> Output {
    once_with(config, None).await
}

async fn once_with(config: &Path, fault: Option<&str>) -> Output {
    let c = config.display().to_string();
    let envs: Vec<(&str, String)> = fault
        .map(|f| ("WATCHPOST_FAULT", f.to_string()))
        .into_iter()
        .collect();
    watchpost(&["once", "--json", "-c", &c], &envs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_after_the_threshold_reminder_and_one_resolved_across_processes() {
    let target = server(503).await;
    let hook = server(200).await;
    let s = setup(
        "flow",
        &target,
        &hook,
        "    alert: {channels: [hook], failure_threshold: 2, repeat: 1s}\n",
    );
    let first = once(&s.config).await;
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let v: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(v[0]["name"], "shop");
    assert_eq!(v[0]["observations"][0]["failures"][0], "status 503 != 200");
    assert!(
        kinds(&hook).is_empty(),
        "one failing tick is below the threshold"
    );

    once(&s.config).await;
    assert_eq!(kinds(&hook), ["down"]);
    once(&s.config).await;
    assert_eq!(
        kinds(&hook),
        ["down"],
        "still down: no second alert before `repeat`"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    once(&s.config).await;
    assert_eq!(kinds(&hook), ["down", "reminder"]);

    target.status.store(200, Ordering::SeqCst);
    let ok = once(&s.config).await;
    assert_eq!(ok.status.code(), Some(0));
    once(&s.config).await;
    assert_eq!(kinds(&hook), ["down", "reminder", "resolved"]);
    let requests = hook.requests.lock().unwrap();
    let down = &requests[0].0;
    assert_eq!(down["monitor"], "shop");
    // Webhook payload version 2: failures and metrics as data.
    assert_eq!(down["version"], 2);
    assert_eq!(down["failures"][0]["location"], "local");
    assert_eq!(down["failures"][0]["text"], "status 503 != 200");
    assert_eq!(down["failures"][0]["actual"], "503");
    let status = down["locations"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "status")
        .unwrap();
    assert_eq!(status["value"], 503.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_outage_delays_the_alert_and_never_duplicates_it() {
    let target = server(500).await;
    let hook = server(500).await;
    let s = setup(
        "retry",
        &target,
        &hook,
        "    alert: {channels: [hook], failure_threshold: 1}\n",
    );
    once(&s.config).await;
    {
        let r = hook.requests.lock().unwrap();
        assert_eq!(r.len(), 1, "one attempt, answered 500");
        assert_eq!(r[0].2, 500);
    }
    // Too early for the retry (backoff ~1 s): nothing is sent.
    once(&s.config).await;
    assert_eq!(hook.requests.lock().unwrap().len(), 1);
    hook.status.store(200, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    once(&s.config).await;
    once(&s.config).await;
    let r = hook.requests.lock().unwrap();
    assert_eq!(r.len(), 2, "retried once, then delivered: {r:?}");
    assert_eq!(r[1].2, 200);
    assert_eq!(r[0].1, r[1].1, "the same idempotency key on the retry");
    assert_eq!(kinds_of(&r), ["down"]);
}

fn kinds_of(r: &[(Value, String, u16)]) -> Vec<String> {
    r.iter()
        .filter(|(_, _, c)| *c == 200)
        .map(|(b, _, _)| b["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_at_once_send_one_alert() {
    let target = server(503).await;
    let hook = server(200).await;
    let s = setup(
        "race",
        &target,
        &hook,
        "    alert: {channels: [hook], failure_threshold: 1}\n",
    );
    let (a, b) = tokio::join!(once(&s.config), once(&s.config));
    assert_eq!(a.status.code(), Some(1));
    assert_eq!(b.status.code(), Some(1));
    assert_eq!(
        kinds(&hook),
        ["down"],
        "exactly one DOWN for two concurrent runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_alert_during_maintenance() {
    let target = server(503).await;
    let hook = server(200).await;
    let s = setup(
        "maint",
        &target,
        &hook,
        "    alert: {channels: [hook], failure_threshold: 1}\n    maintenance:\n      - {start: \"0 0 0 * * * *\", duration: 24h, timezone: UTC}\n",
    );
    for _ in 0..2 {
        let out = once(&s.config).await;
        assert_eq!(out.status.code(), Some(1), "results are still judged");
    }
    target.status.store(200, Ordering::SeqCst);
    once(&s.config).await;
    assert!(kinds(&hook).is_empty(), "{:?}", kinds(&hook));
}

#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_commit_the_next_run_delivers_once() {
    let target = server(503).await;
    let hook = server(200).await;
    let s = setup(
        "kill",
        &target,
        &hook,
        "    alert: {channels: [hook], failure_threshold: 1}\n",
    );
    let killed = once_with(&s.config, Some("kill-after-commit")).await;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.status.signal(), Some(9), "the process was SIGKILLed");
    assert!(
        kinds(&hook).is_empty(),
        "nothing was delivered before the kill"
    );
    once(&s.config).await;
    assert_eq!(
        kinds(&hook),
        ["down"],
        "the committed alert is delivered by the next run"
    );
    once(&s.config).await;
    assert_eq!(kinds(&hook), ["down"], "and never again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_given_up_after_the_configured_max_age_and_kept() {
    let target = server(503).await;
    let hook = server(500).await;
    let s = setup(
        "giveup",
        &target,
        &hook,
        "    alert: {channels: [hook], failure_threshold: 1}\n",
    );
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, format!("delivery: {{max_age: 1s}}\n{text}")).unwrap();
    // Given up only after both the minimum number of attempts (3) and max_age of retrying.
    once(&s.config).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let out = once(&s.config).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("giving up"), "too early: {stderr}");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let out = once(&s.config).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("giving up on"), "{stderr}");
    assert!(
        stderr.contains("500"),
        "the last error is reported: {stderr}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    once(&s.config).await;
    assert_eq!(
        hook.requests.lock().unwrap().len(),
        3,
        "no attempts after giving up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_channel_neither_blocks_the_others_nor_loses_its_alert() {
    use watchpost_testkit::{Receiver, Reply};
    let target = server(503).await;
    let hook = server(200).await;
    // `stuck` answers after 30 s (beyond its 1 s timeout), `refusing` says 400: neither may
    // delay `hook`, and `stuck`'s alert must still arrive once it recovers.
    let mut stuck = Receiver::start(vec![
        Reply::status(200, "late").delayed(Duration::from_secs(30)),
    ])
    .await;
    let mut refusing = Receiver::start(vec![Reply::status(400, "bad token")]).await;
    let s = setup(
        "isolation",
        &target,
        &hook,
        "    alert: {channels: [stuck, hook, refusing], failure_threshold: 1}\n",
    );
    // Add the two extra channels to the config.
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        "channels:\n",
        &format!(
            "channels:\n  stuck: {{type: webhook, url: \"{}\", timeout: 1s}}\n  refusing: {{type: webhook, url: \"{}\"}}\n",
            stuck.url("/alerts"),
            refusing.url("/alerts")
        ),
    );
    std::fs::write(&s.config, text).unwrap();

    let started = std::time::Instant::now();
    let first = once(&s.config).await;
    let took = started.elapsed();
    assert_eq!(first.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&first.stderr);
    // The working channel got the alert; the stuck one cost its timeout, not more.
    assert_eq!(kinds(&hook), ["down"], "{stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(stderr.contains("→ stuck failed (attempt 1)"), "{stderr}");
    assert!(
        stderr.contains("giving up on") && stderr.contains("bad token"),
        "{stderr}"
    );
    assert_eq!(stuck.next().await.json()["kind"], "down");
    assert_eq!(refusing.next().await.json()["kind"], "down");

    // `stuck` recovers: the next run (after the backoff) delivers the kept alert, once; the
    // others are not sent again.
    stuck.script(vec![Reply::status(200, "ok")]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = once(&s.config).await;
    let stderr = String::from_utf8_lossy(&second.stderr);
    let seen = stuck.next().await;
    assert_eq!(seen.json()["kind"], "down", "{stderr}");
    assert!(stderr.contains("→ stuck (200)"), "{stderr}");
    assert_eq!(kinds(&hook), ["down"]);
    assert!(refusing.drain().is_empty());
    let third = once(&s.config).await;
    assert!(
        stuck
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );
    assert_eq!(third.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_queued_for_a_robot_go_out_as_one_merged_message() {
    use watchpost_testkit::{Receiver, Reply};
    let target = server(503).await;
    let mut robot = Receiver::start(vec![Reply::json(200, r#"{"errcode":0,"errmsg":"ok"}"#)]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchpost.yaml");
    let mut text = format!(
        "storage: sqlite://{}/state.db\nchannels:\n  ops-wecom: {{type: wecom, webhook: \"{}\"}}\nmonitors:\n",
        dir.path().display(),
        robot.url("/cgi-bin/webhook/send?key=k")
    );
    for name in ["shop", "api", "cdn"] {
        text.push_str(&format!(
            "  - {{name: {name}, type: http, url: \"http://{}/{name}\", alert: {{channels: [ops-wecom], failure_threshold: 1}}}}\n",
            target.addr
        ));
    }
    std::fs::write(&config, text).unwrap();
    let out = once(&config).await;
    assert_eq!(out.status.code(), Some(1));
    let seen = robot.next().await;
    let content = seen.json()["markdown"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        content.starts_with("## [watchpost] 3 alerts: 3 DOWN"),
        "{content}"
    );
    for name in ["shop", "api", "cdn"] {
        assert!(content.contains(&format!("[DOWN] {name}")), "{content}");
    }
    // One message, not three.
    assert!(
        robot
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("→ ops-wecom (200)").count(), 3, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_console_alerts_go_to_stderr_and_stdout_stays_json() {
    let target = server(503).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchpost.yaml");
    std::fs::write(
        &config,
        format!(
            "storage: sqlite://{}/state.db\nchannels:\n  screen: {{type: console}}\nmonitors:\n  - {{name: shop, type: http, url: \"http://{}/\", alert: {{channels: [screen], failure_threshold: 1}}}}\n",
            dir.path().display(),
            target.addr
        ),
    )
    .unwrap();
    let out = once(&config).await;
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is only the JSON");
    assert_eq!(v[0]["name"], "shop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[DOWN] shop"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robot_keys_never_reach_the_output_or_the_store() {
    use watchpost_testkit::{Receiver, Reply};
    let target = server(503).await;
    // One robot refuses (its error is stored), one is unreachable (its error is stored too).
    let mut refusing = Receiver::start(vec![Reply::json(
        200,
        r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#,
    )])
    .await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchpost.yaml");
    std::fs::write(
        &config,
        format!(
            "storage: sqlite://{}/state.db\nchannels:\n  a: {{type: wecom, webhook: \"${{WP_TEST_WECOM_URL}}\"}}\n  b: {{type: telegram, bot_token: \"${{WP_TEST_TG_TOKEN}}\", chat_id: 1, api_base: \"http://{closed}\"}}\n  c: {{type: dingtalk, webhook: \"http://{closed}/robot/send?access_token=${{WP_TEST_DT_TOKEN}}\", secret: \"${{WP_TEST_DT_SECRET}}\"}}\nmonitors:\n  - {{name: shop, type: http, url: \"http://{}/\", alert: {{channels: [a, b, c], failure_threshold: 1}}}}\n",
            dir.path().display(),
            target.addr
        ),
    )
    .unwrap();
    let secrets = [
        (
            "WP_TEST_WECOM_URL",
            refusing.url("/cgi-bin/webhook/send?key=WECOMSECRETKEY"),
        ),
        (
            "WP_TEST_TG_TOKEN",
            "123456789:TELEGRAMSECRETTOKENxxxxxxxxxxxxxxxxx".to_string(),
        ),
        ("WP_TEST_DT_TOKEN", "DINGTALKSECRETTOKEN".to_string()),
        ("WP_TEST_DT_SECRET", "SECDINGTALKSIGNINGSECRET".to_string()),
    ];
    let cfg = config.clone();
    let envs = secrets.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args(["once", "--json", "-c"])
            .arg(&cfg)
            .envs(envs)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("errcode 93000"), "{stderr}");
    refusing.next().await;
    // Nothing printed and nothing stored (the SQLite files, WAL included, read as bytes)
    // holds a key, token or secret.
    let stored = store_bytes(dir.path());
    assert!(stored.contains("errcode 93000"), "the error itself is kept");
    for needle in [
        "WECOMSECRETKEY",
        "TELEGRAMSECRETTOKEN",
        "DINGTALKSECRETTOKEN",
        "SECDINGTALKSIGNINGSECRET",
    ] {
        assert!(!stderr.contains(needle), "{needle} in stderr: {stderr}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(needle),
            "{needle} in stdout"
        );
        assert!(!stored.contains(needle), "{needle} in the store");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_storage_path_is_relative_to_the_config_file_not_the_working_directory() {
    let hook = server(200).await;
    let closed = std::net::SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let root = tempfile::tempdir().unwrap();
    let [conf, first_cwd, second_cwd] = ["conf", "a", "b"].map(|d| root.path().join(d));
    for d in [&conf, &first_cwd, &second_cwd] {
        std::fs::create_dir(d).unwrap();
    }
    let config = conf.join("watchpost.yaml");
    let write = |storage: &str| {
        std::fs::write(
            &config,
            format!(
                "storage: {storage}\n{}",
                common::hook_and_shop(hook.addr, closed, "", 2)
            ),
        )
        .unwrap()
    };
    let c = config.display().to_string();
    let once_in = |cwd: PathBuf| {
        let c = c.clone();
        async move { watchpost_in(Some(&cwd), &["once", "--json", "-c", &c], &[]).await }
    };

    write("sqlite://state.db");
    let first = once_in(first_cwd.clone()).await;
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        conf.join("state.db").exists(),
        "the store is next to the config"
    );
    assert!(!first_cwd.join("state.db").exists());
    assert!(
        kinds(&hook).is_empty(),
        "one failure is below the threshold"
    );

    // Another working directory, the `sqlite:` form: the same file, so the second failure in
    // a row opens the incident.
    write("sqlite:state.db");
    let second = once_in(second_cwd.clone()).await;
    assert_eq!(
        second.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(kinds(&hook), ["down"]);
    assert!(!second_cwd.join("state.db").exists());
    let entries = |d: &Path| std::fs::read_dir(d).unwrap().count();
    assert_eq!((entries(&first_cwd), entries(&second_cwd)), (0, 0));

    // An error naming the database names the file that was meant.
    write("sqlite://missing/state.db");
    let failed = once_in(first_cwd.clone()).await;
    let err = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(3), "{err}");
    let meant = conf.join("missing/state.db").display().to_string();
    assert!(err.contains(&format!("{meant:?}")), "{err}");
}
