//! `watchpost notify CHANNEL`: a test alert through one channel, the far end's answer printed,
//! exit 0 delivered / 1 delivery error / 2 config or usage error.

use std::process::Command;
use watchpost_testkit::{Receiver, Reply};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn notify(config: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchpost.yaml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_watchpost"));
    cmd.arg("notify").args(args).arg("-c").arg(&path);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let file = path.display().to_string();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).replace(&file, "FILE"),
        stderr: String::from_utf8_lossy(&out.stderr).replace(&file, "FILE"),
    }
}

fn config(url: &str) -> String {
    format!(
        "locale: zh-CN\nchannels:\n  ops-hook: {{type: webhook, url: \"{url}\"}}\n  screen: {{type: console}}\nmonitors: []\n"
    )
}

#[tokio::test]
async fn delivered_prints_the_answer_and_exits_0() {
    let mut rx = Receiver::start(vec![Reply::json(200, r#"{"received":true}"#)]).await;
    let run = notify(
        &config(&rx.url("/hook?key=SECRETKEY")),
        &["ops-hook", "--message", "上线前检查 channel"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "delivered to \"ops-hook\" (webhook): HTTP 200: {\"received\":true}\n"
    );
    assert!(!run.stderr.contains("SECRETKEY"), "{}", run.stderr);

    let seen = rx.next().await;
    let body = seen.json();
    assert_eq!(body["kind"], "test");
    assert_eq!(body["monitor"], "ops-hook");
    assert_eq!(body["title"], "【测试】ops-hook");
    // Webhook payload version 2: a test alert's text is its `message`.
    assert_eq!(body["message"], "上线前检查 channel");
    assert!(body["text"].as_str().unwrap().contains("测试告警"));
    // Exactly one request: notify does not retry.
    assert!(rx.drain().is_empty());
}

#[tokio::test]
async fn a_refused_alert_prints_the_providers_error_and_exits_1() {
    let mut rx = Receiver::start(vec![Reply::json(
        400,
        r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#,
    )])
    .await;
    let run = notify(&config(&rx.url("/hook")), &["ops-hook"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "failed to deliver to \"ops-hook\" (webhook): HTTP 400 Bad Request: \
             {\"errcode\":93000,\"errmsg\":\"invalid webhook url\"} (permanent; fix the channel's settings)"
        ),
        "{}",
        run.stderr
    );
    rx.next().await;

    rx.script(vec![Reply::status(503, "maintenance")]);
    let run = notify(&config(&rx.url("/hook")), &["ops-hook"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "HTTP 503 Service Unavailable: maintenance (temporary; alerts would be retried)"
        ),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn nobody_listening_is_a_delivery_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let run = notify(
        &config(&format!("http://127.0.0.1:{port}/x")),
        &["ops-hook"],
    )
    .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("connecting to 127.0.0.1"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn config_errors_exit_2() {
    // An unknown channel names the defined ones.
    let run = notify(&config("http://127.0.0.1:9/"), &["pager"]).await;
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "watchpost: no channel \"pager\" in FILE (defined: ops-hook, screen)\n"
    );
    // A channel whose settings are wrong: FILE:LINE:COL.
    let run = notify(
        "channels:\n  ops-hook: {type: webhook, url: \"ftp://127.0.0.1/\"}\nmonitors: []\n",
        &["ops-hook"],
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("FILE:2:13: channel \"ops-hook\": webhook: url: scheme \"ftp\""),
        "{}",
        run.stderr
    );
    // A broken config file.
    let run = notify("channels: [\n", &["ops-hook"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.starts_with("FILE:"), "{}", run.stderr);
    // No channel argument: usage.
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .arg("notify")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn the_console_channel_prints_the_test_alert() {
    let run = notify(
        &config("http://127.0.0.1:9/"),
        &["screen", "--message", "hello"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("【测试】screen\n"), "{}", run.stdout);
    assert!(run.stdout.contains("hello"), "{}", run.stdout);
    assert!(
        run.stdout
            .ends_with("delivered to \"screen\" (console): ok\n"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn provider_error_codes_are_printed_wecom_and_tencent_sms() {
    // WeCom answers HTTP 200 with an error code: the code and message decide.
    let mut rx = Receiver::start(vec![Reply::json(
        200,
        r#"{"errcode":93000,"errmsg":"invalid webhook url, hint: [1767322800_1]"}"#,
    )])
    .await;
    let cfg = format!(
        "channels:\n  ops-wecom: {{type: wecom, webhook: \"{}\"}}\nmonitors: []\n",
        rx.url("/cgi-bin/webhook/send?key=SECRETKEY")
    );
    let run = notify(&cfg, &["ops-wecom"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "failed to deliver to \"ops-wecom\" (wecom): wecom: errcode 93000: invalid webhook url"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("SECRETKEY"), "{}", run.stderr);
    let seen = rx.next().await;
    assert_eq!(seen.json()["msgtype"], "markdown");
    assert!(
        seen.json()["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("[TEST] ops-wecom")
    );

    // Success prints WeCom's own answer.
    rx.script(vec![Reply::json(200, r#"{"errcode":0,"errmsg":"ok"}"#)]);
    let run = notify(&cfg, &["ops-wecom"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "delivered to \"ops-wecom\" (wecom): HTTP 200: {\"errcode\":0,\"errmsg\":\"ok\"}\n"
    );

    // Tencent SMS: one number refused; the code reaches the operator, the number masked.
    let rx = Receiver::start(vec![Reply::json(
        200,
        r#"{"Response":{"SendStatusSet":[{"SerialNo":"","PhoneNumber":"+8613800000000","Fee":0,"SessionContext":"","Code":"FailedOperation.PhoneNumberInBlacklist","Message":"phone number in blacklist","IsoCode":"CN"}],"RequestId":"a0aabda6-cf91-4f3e-a81f-9198114a2279"}}"#,
    )])
    .await;
    let cfg = format!(
        "channels:\n  oncall-sms: {{type: tencent_sms, secret_id: AKIDtest, secret_key: testkey, sdk_app_id: \"1400006666\", sign_name: 腾讯云, template_id: \"1110\", phones: [\"+8613800000000\"], endpoint: \"{}\"}}\nmonitors: []\n",
        rx.url("")
    );
    let run = notify(&cfg, &["oncall-sms"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("FailedOperation.PhoneNumberInBlacklist"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("+86138****0000"), "{}", run.stderr);
    assert!(!run.stderr.contains("+8613800000000"), "{}", run.stderr);
}
