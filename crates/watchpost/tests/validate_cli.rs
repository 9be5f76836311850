//! `watchpost validate` end to end.

use std::process::Command;

fn validate(text: &str) -> (i32, String, String) {
    validate_with_env(text, &[])
}

/// `watchpost validate` on `text`, with extra environment variables; stderr has the file's
/// path replaced by `FILE`.
fn validate_with_env(text: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("wp-validate-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("watchpost.yaml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["validate", "-c"])
        .arg(&path)
        .envs(env.iter().copied())
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

/// Every line of stderr is `FILE:LINE:COL: message` except the count at the end; no panic, no
/// raw control character.
fn assert_error_lines(err: &str, count: usize) {
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), count + 1, "{err}");
    for line in &lines[..count] {
        assert!(line.starts_with("FILE:"), "{line}");
        let mut parts = line.splitn(4, ':');
        parts.next();
        for _ in 0..2 {
            let n: u64 = parts.next().unwrap().parse().unwrap_or(0);
            assert!(n >= 1, "{line}");
        }
    }
    assert_eq!(lines[count], format!("{count} error(s) in FILE"));
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !err.chars().any(|c| c.is_control() && c != '\n'),
        "raw control character in {err:?}"
    );
}

#[test]
fn durations_too_long_are_errors_never_crashes() {
    let huge = "99999999999999999999999d";
    let (code, out, err) = validate(&format!(
        "retention: {huge}\ndelivery: {{max_age: {huge}}}\nmonitors:\n  - name: a\n    type: http\n    url: http://127.0.0.1:9/\n    every: {huge}\n    timeout: {huge}\n    alert: {{repeat: {huge}}}\n    maintenance:\n      - {{start: \"0 0 2 * * * *\", duration: {huge}}}\n  - name: b\n    type: http\n    url: http://127.0.0.1:9/\n    schedule: \"@every {huge}\"\n"
    ));
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert_error_lines(&err, 7);
    let lines: Vec<&str> = err.lines().collect();
    for (line, at) in lines.iter().zip([
        "FILE:1:12: retention:",
        "FILE:2:21: delivery max_age:",
        "FILE:7:12: every:",
        "FILE:8:14: timeout:",
        "FILE:9:21: repeat:",
        "FILE:11:44: maintenance duration:",
        "FILE:15:15: schedule: @every:",
    ]) {
        assert!(line.starts_with(at), "{line} / {at}");
        assert!(
            line.contains(
                "\"99999999999999999999999d\" is longer than the maximum, 3650d (10 years)"
            ),
            "{line}"
        );
    }
    // The maximum itself is accepted.
    let (code, _, err) = validate(
        "monitors:\n  - {name: a, type: http, url: \"http://127.0.0.1:9/\", every: 3650d, timeout: 3650d}\n",
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn what_this_version_cannot_do_is_refused_at_its_position() {
    let (code, out, err) = validate_with_env(
        "storage: \"postgres://watchpost:${WP_TEST_DB_PW}@db.internal/watchpost?sslmode=${WP_TEST_DB_PW}\"\nlocations:\n  bj: {region: beijing, token: \"${WP_TEST_BJ_TOKEN}\"}\nmonitors:\n  - name: a\n    type: http\n    url: http://admin:hunter2@127.0.0.1:9/\n    locations: [local, bj]\n    alert: {quorum: 2}\n  - name: b\n    type: http\n    url: http://127.0.0.1:9/\n    schedule: \"0 0 0 1 1 * 2020\"\n",
        &[
            ("WP_TEST_DB_PW", "pg-sekrit-4411"),
            ("WP_TEST_BJ_TOKEN", "bj-sekrit-token-0123456789"),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert_error_lines(&err, 3);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        "FILE:1:10: storage: sslmode must be disable, prefer, require, verify-ca or verify-full"
    );
    assert_eq!(
        lines[1],
        "FILE:7:10: url: credentials in the URL are not sent; use headers: {Authorization: ...} with a ${VAR}"
    );
    assert!(
        lines[2].starts_with("FILE:13:15: schedule: \"0 0 0 1 1 * 2020\" does not fire any more: its last fire time has passed, at 2020-01-01 00:00:00"),
        "{}",
        lines[2]
    );
    for secret in ["hunter2", "pg-sekrit", "admin:", "bj-sekrit"] {
        assert!(!err.contains(secret), "{secret} in {err}");
    }

    let (code, _, err) = validate("storage: sqlite:///x.db?mode=ro\nmonitors: []\n");
    assert_eq!(code, 2);
    assert_eq!(
        err.lines().next().unwrap(),
        "FILE:1:10: storage: query parameters (?...) are not supported; use sqlite://PATH"
    );
    assert!(!err.contains("mode=ro"), "{err}");
}

#[test]
fn oversized_urls_and_headers_and_bad_names_are_refused() {
    let long_url = format!("http://127.0.0.1:9/{}", "a".repeat(100 * 1024));
    let long_header = "h".repeat(9000);
    let (code, out, err) = validate(&format!(
        "channels:\n  \"ops\\e[31m\": {{type: console}}\nmonitors:\n  - name: \"home\\npage\\e[2J\"\n    type: http\n    url: {long_url}\n  - name: b\n    type: http\n    url: http://127.0.0.1:9/\n    headers: {{X-Big: {long_header}}}\n  - name: {}\n    type: http\n    url: http://127.0.0.1:9/\n",
        "n".repeat(201)
    ));
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert_error_lines(&err, 5);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        "FILE:2:3: channel name \"ops\\u{1b}[31m\" contains the control character \\u{1b}: names are printed on terminals and in alerts"
    );
    assert_eq!(
        lines[1],
        "FILE:4:11: monitor name \"home\\npage\\u{1b}[2J\" contains the control character \\n: names are printed on terminals and in alerts"
    );
    assert_eq!(
        lines[2],
        "FILE:6:10: url: the URL is 102419 bytes long; the limit is 8 KiB (8192 bytes)"
    );
    assert_eq!(
        lines[3],
        "FILE:10:15: header \"X-Big\": the header line is 9007 bytes long; the limit is 8 KiB (8192 bytes)"
    );
    assert!(
        lines[4].starts_with("FILE:11:11: monitor name \"nnnn")
            && lines[4].ends_with("is 201 characters long; the limit is 200"),
        "{}",
        lines[4]
    );
    assert!(
        err.len() < 2000,
        "the URL is not quoted back: {} bytes",
        err.len()
    );
}

#[test]
fn an_empty_config_warns_and_still_exits_0() {
    for text in [
        "",
        "monitors: []\n",
        "channels:\n  screen: {type: console}\n",
    ] {
        let (code, out, err) = validate(text);
        assert_eq!(code, 0, "{text:?}: {err}");
        assert_eq!(
            err, "warning: FILE:1:1: no monitors are defined: watchpost has nothing to check\n",
            "{text:?}"
        );
        assert!(out.starts_with("ok: 0 monitor(s)"), "{out}");
    }
}

#[test]
fn yaml_problems_are_told_in_watchposts_words() {
    let wide = format!(
        "channels:\n  a: {{type: console, x: [{}]}}\nmonitors: []\n",
        "1,".repeat(260_000)
    );
    let deep = format!(
        "channels:\n  a: {{type: console, x: {}{}}}\nmonitors: []\n",
        "[".repeat(80),
        "]".repeat(80)
    );
    // The 62nd `[` is the 64th level (the file, `channels:` and `a:` are the first three).
    let cases = [
        (
            "monitors: []\nmonitors: []\n".to_string(),
            "FILE:2:1: duplicate key \"monitors\"",
        ),
        (
            "channels:\n  a: {type: console}\n  a: {type: console}\nmonitors: []\n".to_string(),
            "FILE:3:3: duplicate key \"a\"",
        ),
        (
            wide,
            "FILE:2:500008: the file is too large or too deeply nested (limit: 250000 nodes)",
        ),
        (
            deep,
            "FILE:2:86: the file is too large or too deeply nested (limit: 64 levels)",
        ),
        (
            "monitors: []\n---\nmonitors: []\n".to_string(),
            "FILE:3:1: only one YAML document is allowed in the config (remove the `---` lines)",
        ),
        (
            "concurrency: lots\nmonitors: []\n".to_string(),
            "FILE:1:14: expected a whole number (0 or more)",
        ),
        (
            "monitors:\n  - name: a\n    type: pigeon\n".to_string(),
            "FILE:3:11: unknown value \"pigeon\" (one of: http, tcp, tls, dns, kafka_lag)",
        ),
    ];
    for (text, want) in cases {
        let (code, _, err) = validate(&text);
        assert_eq!(code, 2, "{want}");
        assert_error_lines(&err, 1);
        assert_eq!(err.lines().next().unwrap(), want);
        for internal in [
            "DuplicateKeyPolicy",
            "Options",
            "budget breached",
            "Nodes {",
            "u32",
            "variant",
        ] {
            assert!(!err.contains(internal), "{internal} in {err}");
        }
    }
}

#[test]
fn condition_errors_point_at_the_character_after_wide_text() {
    let (code, _, err) = validate(
        "monitors:\n  - name: 首页\n    type: http\n    url: http://127.0.0.1:9/\n    conditions: [\"header.名前 < 5 parsecs\"]\n",
    );
    assert_eq!(code, 2);
    assert!(
        err.starts_with("FILE:5:31: condition: < needs a number on the right"),
        "{err}"
    );
}

#[test]
fn quorum_above_the_locations_that_can_run_is_refused() {
    let (code, _, err) = validate(
        "monitors:\n  - name: a\n    type: http\n    url: http://127.0.0.1:9/\n    locations: [local, local]\n    alert: {quorum: 2}\n",
    );
    assert_eq!(code, 2);
    assert_error_lines(&err, 2);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], "FILE:5:24: location \"local\" is listed twice");
    assert_eq!(
        lines[1],
        "FILE:6:21: quorum 2 is more than the monitor's 1 location(s)"
    );
}

#[test]
fn channel_errors_never_show_substituted_secrets() {
    // A channel built from a ${VAR} whose value is wrong: the channel's own error is masked.
    let (code, _, err) = validate_with_env(
        "channels:\n  w: {type: wecom, webhook: \"${WP_TEST_HOOK}\"}\nmonitors: []\n",
        &[("WP_TEST_HOOK", "ftp://hooks.internal/key=sekrit-8842")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("FILE:2:6: channel \"w\": wecom: webhook"),
        "{err}"
    );
    assert!(!err.contains("sekrit-8842"), "{err}");
}

#[test]
fn a_misspelt_template_variable_is_refused_even_inside_a_filter() {
    // `{{ monitr|tojson }}` used to render `null` at every alert instead of failing here.
    let (code, _, err) = validate(
        "channels:\n  hook: {type: webhook, url: \"http://127.0.0.1:9/\", template: '{\"m\": {{ monitr|tojson }}}'}\nmonitors:\n  - {name: a, type: http, url: \"http://127.0.0.1:9/\", alert: {channels: [hook]}}\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("FILE:2:9: channel \"hook\""), "{err}");
    assert!(err.contains("monitr"), "{err}");
}

#[test]
fn a_relative_ca_file_is_next_to_the_config_whatever_the_working_directory() {
    let ca = watchpost_testkit::TestCa::new("relative CA");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/ca.pem"), &ca.cert_pem).unwrap();
    let config = dir.path().join("watchpost.yaml");
    let write = |channel_ca: &str, kafka_ca: &str| {
        std::fs::write(
            &config,
            format!(
                "channels:\n  hook: {{type: webhook, url: \"https://127.0.0.1:9/h\", ca_file: {channel_ca}}}\nmonitors:\n  - name: lag\n    type: kafka_lag\n    bootstrap: \"127.0.0.1:9\"\n    group: g\n    tls: {{ca_file: {kafka_ca}}}\n    alert: {{channels: [hook]}}\n"
            ),
        )
        .unwrap()
    };
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args(["validate", "-c"])
            .arg(&config)
            .current_dir("/")
            .output()
            .unwrap()
    };
    write("certs/ca.pem", "certs/ca.pem");
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A missing one is named by the path it was looked for at.
    let looked_at = dir.path().join("certs/other.pem").display().to_string();
    for (channel_ca, kafka_ca, line) in [
        ("certs/other.pem", "certs/ca.pem", ":2:"),
        ("certs/ca.pem", "certs/other.pem", ":8:"),
    ] {
        write(channel_ca, kafka_ca);
        let out = run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&looked_at), "{stderr}");
        assert!(stderr.contains(line), "{stderr}");
    }
}

#[test]
fn quorum_as_a_percentage_is_checked_against_the_locations() {
    let config = |quorum: &str| {
        format!(
            "monitors:\n  - {{name: a, type: http, url: \"http://127.0.0.1:9/\", alert: {{quorum: {quorum}}}}}\n"
        )
    };
    let (code, out, err) = validate(&config("100%"));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok: 1 monitor(s)"), "{out}");
    let (code, _, err) = validate(&config("150%"));
    assert_eq!(code, 2);
    assert!(
        err.starts_with("FILE:2:71: quorum 150% is not a percentage above 0% and at most 100%"),
        "{err}"
    );
}

#[test]
fn a_location_needs_a_token_from_the_environment() {
    let (code, _, err) = validate_with_env(
        "locations:\n  local: {region: here, token: \"${WP_TEST_LONG_TOKEN}\"}\n  gz: {region: 广东佛山, isp: 电信}\n  sh: {token: plain-text-token-in-the-file}\n  bj: {token: \"${WP_TEST_SHORT_TOKEN}\"}\nmonitors:\n  - {name: a, type: http, url: \"http://127.0.0.1:9/\", locations: [local, mars]}\n",
        &[
            ("WP_TEST_LONG_TOKEN", "long-enough-token-0123456789"),
            ("WP_TEST_SHORT_TOKEN", "short-tok"),
        ],
    );
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let want = [
        "FILE:2:3: `local` is this machine (every monitor's default location): it can't be declared",
        "FILE:3:3: location \"gz\" needs a `token:`, taken from the environment (token: \"${MY_LOCATION_TOKEN}\")",
        "FILE:4:15: token: write it as \"${VARIABLE}\" and set it in the environment, not in the file",
        "FILE:5:15: token: at least 16 characters (it is the agent's password)",
        "FILE:7:74: unknown location \"mars\" (`local`, or one declared under locations: bj, gz, sh)",
    ];
    assert_eq!(lines.len(), want.len() + 1, "{err}");
    for (got, want) in lines.iter().zip(want) {
        assert!(got.starts_with(want), "got {got:?}\nwant {want:?}");
    }
    for secret in ["short-tok", "long-enough"] {
        assert!(!err.contains(secret), "{secret} in {err}");
    }
}

#[test]
fn a_location_no_monitor_lists_gets_a_warning() {
    let (code, out, err) = validate_with_env(
        "locations:\n  idle: {token: \"${WP_TEST_IDLE_TOKEN}\"}\nmonitors:\n  - {name: a, type: http, url: \"http://127.0.0.1:9/\"}\n",
        &[("WP_TEST_IDLE_TOKEN", "idle-token-0123456789")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok"), "{out}");
    assert!(
        err.contains("warning: FILE:2:3: location \"idle\" is declared but no monitor lists it"),
        "{err}"
    );
}
