//! Secrets end to end through the real binary: a `${VAR}` value never appears in what
//! watchpost prints, stores or sends — not in a monitor's URL, not in a provider's echo of
//! the request — and credentials are not forwarded to another origin on a redirect.

mod common;

use common::{echo_server, server, store_bytes, watchpost, write_config};
use std::time::Duration;
use watchpost_testkit::{Receiver, Reply};

const TOKEN: &str = "QUERYTOKEN-9f8e7d6c5b4a";
const HOOK_KEY: &str = "HOOKKEY-0a1b2c3d4e5f";
const BEARER: &str = "BEARERSECRET-11223344";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_a_monitor_url_is_never_printed_stored_or_sent() {
    // The target echoes the request (the URL with its token) into its answer, and fails.
    let target = echo_server(503).await;
    let mut hook = Receiver::start(vec![Reply::status(200, "ok")]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"{}\"}}\nmonitors:\n  - name: api\n    type: http\n    url: \"http://{}/v1/health?token=${{WP_TEST_QUERY_TOKEN}}\"\n    conditions: [\"status == 200\", \"body contains \\\"healthy\\\"\"]\n    alert: {{channels: [hook], failure_threshold: 1}}\n",
            hook.url("/alerts"),
            target
        ),
    );
    let c = config.display().to_string();
    let envs = [("WP_TEST_QUERY_TOKEN", TOKEN.to_string())];
    let out = watchpost(&["once", "--json", "-c", &c], &envs).await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // The URL is shown as written in the config.
    assert_eq!(
        v[0]["observations"][0]["check"]["url"],
        format!("http://{target}/v1/health?token=${{WP_TEST_QUERY_TOKEN}}")
    );
    let alert = hook.next().await;
    let sent = String::from_utf8_lossy(&alert.body).into_owned();
    assert_eq!(alert.json()["kind"], "down");
    for (what, text) in [
        ("stdout", stdout.to_string()),
        ("stderr", stderr.to_string()),
        ("the alert", sent.clone()),
        ("the store", store_bytes(dir.path())),
    ] {
        assert!(!text.contains(TOKEN), "the token is in {what}: {text}");
    }
    assert!(sent.contains("${WP_TEST_QUERY_TOKEN}"), "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_echoing_the_request_never_gets_the_key_printed_or_stored() {
    let echo = echo_server(400).await;
    let target = server(503).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook:\n    type: webhook\n    url: \"http://{echo}/hook?key=${{WP_TEST_HOOK_KEY}}\"\n    headers: {{Authorization: \"Bearer ${{WP_TEST_BEARER}}\"}}\nmonitors:\n  - {{name: shop, type: http, url: \"http://{}/\", alert: {{channels: [hook], failure_threshold: 1}}}}\n",
            target.addr
        ),
    );
    let c = config.display().to_string();
    let envs = [
        ("WP_TEST_HOOK_KEY", HOOK_KEY.to_string()),
        ("WP_TEST_BEARER", BEARER.to_string()),
    ];
    // `notify` prints what the far end said.
    let out = watchpost(&["notify", "hook", "-c", &c], &envs).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("you sent"),
        "the provider's answer is shown: {stderr}"
    );
    // The outbox keeps the error of a real alert.
    let out = watchpost(&["once", "-c", &c], &envs).await;
    let once_stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{once_stderr}");
    let stored = store_bytes(dir.path());
    assert!(stored.contains("you sent"), "the error is kept");
    for (what, text) in [
        (
            "notify's output",
            stderr.to_string() + &String::from_utf8_lossy(&out.stdout),
        ),
        ("once's output", once_stderr.to_string()),
        ("the store", stored),
    ] {
        for secret in [HOOK_KEY, BEARER] {
            assert!(!text.contains(secret), "{secret} in {what}: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_not_forwarded_when_a_redirect_changes_the_port() {
    // `first` redirects to `second`, on another port of the same host.
    let mut second = Receiver::start(vec![Reply::status(200, "arrived")]).await;
    let mut first = Receiver::start(vec![
        Reply::status(302, "").header("Location", &second.url("/landing")),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "monitors:\n  - name: shop\n    type: http\n    url: \"{}\"\n    follow_redirects: true\n    headers: {{Authorization: \"Bearer ${{WP_TEST_BEARER}}\", Cookie: \"session=${{WP_TEST_BEARER}}\", Proxy-Authorization: \"Basic ${{WP_TEST_BEARER}}\"}}\n",
            first.url("/start")
        ),
    );
    let c = config.display().to_string();
    let out = watchpost(
        &["once", "-c", &c],
        &[("WP_TEST_BEARER", BEARER.to_string())],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at_first = first.next().await;
    assert_eq!(at_first.header("authorization"), format!("Bearer {BEARER}"));
    let at_second = second.next().await;
    assert_eq!(at_second.path(), "/landing");
    for header in ["authorization", "cookie", "proxy-authorization"] {
        assert!(
            at_second.headers.get(header).is_none(),
            "{header} was forwarded: {:?}",
            at_second.headers
        );
    }
    assert!(
        first
            .next_within(Duration::from_millis(100))
            .await
            .is_none()
    );
}
