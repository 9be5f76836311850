//! `watchpost validate` end to end.

use std::process::Command;

fn validate(text: &str) -> (i32, String, String) {
    let dir =
        std::env::temp_dir().join(format!("wp-validate-{}-{}", std::process::id(), text.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("watchpost.yaml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["validate", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "FILE"),
    )
}

#[test]
fn ok_and_exit_0() {
    let (code, out, _) = validate(
        "channels:\n  screen: {type: console}\nmonitors:\n  - {name: a, type: http, url: \"http://127.0.0.1:9/\", alert: {channels: [screen]}}\n",
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("ok: 1 monitor(s), 1 channel(s)"), "{out}");
}

#[test]
fn every_error_and_exit_2() {
    let (code, out, err) = validate(
        "monitors:\n  - name: a\n    type: http\n    url: http://127.0.0.1:9/\n    every: soon\n    alert: {channels: [nowhere]}\n",
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with("FILE:5:12: every: \"soon\" is not a duration"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("FILE:6:24: unknown channel \"nowhere\""),
        "{err}"
    );
    assert_eq!(lines[2], "2 error(s) in FILE");
}

#[test]
fn missing_file_is_a_config_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["validate", "-c", "/nonexistent/watchpost.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the config"));
}

#[test]
fn sms_notes_what_only_tencent_can_check() {
    let (code, out, err) = validate(
        "channels:\n  sms: {type: tencent_sms, secret_id: AKIDx, secret_key: k, sdk_app_id: \"1400006666\", sign_name: 腾讯云, template_id: \"1110\", phones: [\"+8613800000000\"], endpoint: \"http://127.0.0.1:9\"}\n  sms-checked: {type: tencent_sms, secret_id: AKIDx, secret_key: k, sdk_app_id: \"1400006666\", sign_name: 腾讯云, template_id: \"1110\", phones: [\"+8613800000000\"], template_text: \"监控{1}状态{2}\"}\nmonitors: []\n",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("ok: 0 monitor(s), 2 channel(s)"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("note: channel \"sms\": tencent_sms: the parameter count of template 1110 can't be checked offline"),
        "{out}"
    );

    // A template_text whose placeholders don't match the params: exit 2, at the channel.
    let (code, _, err) = validate(
        "channels:\n  sms: {type: tencent_sms, secret_id: AKIDx, secret_key: k, sdk_app_id: \"1400006666\", sign_name: 腾讯云, template_id: \"1110\", phones: [\"+8613800000000\"], template_text: \"{1}{2}{3}\"}\nmonitors: []\n",
    );
    assert_eq!(code, 2);
    assert!(
        err.starts_with("FILE:2:8: channel \"sms\": tencent_sms: template_text has 3 placeholders"),
        "{err}"
    );
}

#[test]
fn every_channel_type_builds() {
    let (code, out, err) = validate(concat!(
        "channels:\n",
        "  a: {type: console}\n",
        "  b: {type: webhook, url: \"https://hooks.example.com/x\", template: '{\"t\": {{ title|tojson }}}'}\n",
        "  c: {type: email, server: \"smtps://smtp.exmail.qq.com\", username: u@example.com, password: p, from: \"网站监控 <u@example.com>\", to: [o@example.com]}\n",
        "  d: {type: wecom, webhook: \"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k\", mentions: [\"13800001111\"]}\n",
        "  e: {type: tencent_sms, secret_id: AKIDx, secret_key: k, sdk_app_id: \"1400006666\", sign_name: 腾讯云, template_id: \"1110\", phones: [\"+8613800000000\"], template_text: \"{1}{2}\"}\n",
        "  f: {type: dingtalk, webhook: \"https://oapi.dingtalk.com/robot/send?access_token=t\", secret: SECabc}\n",
        "  g: {type: feishu, webhook: \"https://open.feishu.cn/open-apis/bot/v2/hook/x\", secret: s}\n",
        "  h: {type: slack, webhook: \"https://hooks.slack.com/services/T/B/X\"}\n",
        "  i: {type: telegram, bot_token: \"123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq\", chat_id: -1001234567890}\n",
        "  j: {type: alertmanager, url: \"http://127.0.0.1:9093\", labels: {team: web}}\n",
        "monitors: []\n",
    ));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().next().unwrap().split(" in ").next().unwrap(),
        "ok: 0 monitor(s), 10 channel(s)"
    );

    // Problems in several channels are all reported, each at its channel.
    let (code, _, err) = validate(concat!(
        "channels:\n",
        "  d: {type: wecom, webhook: \"ftp://x/\"}\n",
        "  i: {type: telegram, bot_token: \"nope\", chat_id: 1}\n",
        "monitors: []\n",
    ));
    assert_eq!(code, 2);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("FILE:2:6: channel \"d\": wecom: webhook"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("FILE:3:6: channel \"i\": telegram: bot_token"),
        "{err}"
    );
    assert!(!err.contains("nope"), "{err}");
}
