//! Config parsing and validation: positions, all errors at once, defaults, secrets.

mod common;

use chrono::{DateTime, Utc};
use std::time::Duration;
use watchpost_config::{Locale, parse, parse_at};
use watchpost_probes::CheckSpec;

/// Environment variables the tests use, set once before any test reads the environment.
fn setup_env() {
    let long = "L".repeat(9000);
    common::set_env_once(&[
        ("WATCHPOST_TEST_HOOK_TOKEN", "s3cret #not a comment"),
        ("WATCHPOST_TEST_URL_SECRET", "key=hunter2 bad"),
        ("WATCHPOST_TEST_DB_PASSWORD", "pg-sekrit-7731"),
        ("WATCHPOST_TEST_QUERY_TOKEN", "tok/en+with spaces&=ü"),
        ("WATCHPOST_TEST_LONG", &long),
        ("WATCHPOST_TEST_BAD_HEADER", "line1\nline2-sekrit"),
        ("WATCHPOST_TEST_DB_URL", "sqlite://db-sekrit/w.db"),
    ]);
}

fn errors(text: &str) -> Vec<String> {
    setup_env();
    match parse("watchpost.yaml", text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn a_valid_config_with_defaults_and_env() {
    setup_env();
    let text = r#"
timezone: Asia/Shanghai
locale: zh-CN
storage: sqlite:///tmp/wp.db
channels:
  hook: {type: webhook, url: "http://127.0.0.1:9/hook", headers: {Authorization: "Bearer ${WATCHPOST_TEST_HOOK_TOKEN}"}}
  screen: {type: console}
monitors:
  - name: homepage
    type: http
    url: http://127.0.0.1:9/
    schedule: "*/5 * * * * * *"
    timeout: 2500ms
    conditions: ["status == 200", "total < 1000ms", "body contains \"ok\""]
    alert: {channels: [hook, screen], failure_threshold: 3, repeat: 30m}
    maintenance:
      - {start: "0 0 2 * * SUN *", duration: 1h}
  - name: api
    type: http
    url: http://127.0.0.1:9/api
    every: 30s
"#;
    let c = parse("watchpost.yaml", text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.timezone.name(), "Asia/Shanghai");
    assert_eq!(c.locale, Locale::ZhCn);
    assert_eq!(c.storage, "sqlite:///tmp/wp.db");
    assert_eq!(c.retention.raw, Duration::from_secs(7 * 86_400));
    assert_eq!(c.retention.minutes, Duration::from_secs(30 * 86_400));
    assert_eq!(c.retention.hours, Duration::from_secs(400 * 86_400));
    assert_eq!(c.monitors.len(), 2);
    let home = &c.monitors[0];
    assert_eq!(home.timeout, Duration::from_millis(2500));
    assert_eq!(home.conditions.len(), 3);
    assert_eq!(home.alert.channels, ["hook", "screen"]);
    assert_eq!(home.alert.failure_threshold, 3);
    assert_eq!(home.alert.success_threshold, 1);
    assert!(home.alert.send_resolved);
    assert_eq!(home.alert.repeat, Some(Duration::from_secs(1800)));
    assert_eq!(home.locations, ["local"]);
    assert!(!home.spread);
    assert_eq!(home.maintenance.len(), 1);
    let api = &c.monitors[1];
    assert!(api.spread, "every: schedules are spread");
    assert_eq!(api.schedule.every(), Some(Duration::from_secs(30)));
    assert_eq!(api.conditions.len(), 2, "the default: status 200-399");
    // homepage names `status` itself, so the default is not added to its three.
    assert_eq!(home.conditions[0].source, "status == 200");
    assert!(c.warnings.is_empty());
    assert_eq!(api.alert.failure_threshold, 2);
    match &api.check {
        CheckSpec::Http(req) => assert_eq!(req.url.as_str(), "http://127.0.0.1:9/api"),
        other => panic!("{other:?}"),
    }
    // ${VAR} lands in the value as is, even with YAML-special characters in it.
    let hook = &c.channels["hook"];
    assert_eq!(
        hook.settings["headers"]["Authorization"],
        "Bearer s3cret #not a comment"
    );
    // ...and never in Debug output.
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[test]
fn every_semantic_error_at_once_with_line_and_column() {
    let text = r#"timezone: Mars/Base
channels:
  hook: {type: webhook, url: "http://127.0.0.1:9/"}
monitors:
  - name: home
    type: http
    url: http://127.0.0.1:9/
    schedule: "0 0 12 * * 8 *"
    timeout: 2 parsecs
    conditions: ["status == 200", "total < 800"]
    alert: {channels: [hook, pager], repeat: soon}
  - name: home
    type: http
    url: "http://127.0.0.1:9/${WATCHPOST_TEST_UNSET_VAR}"
    every: 30s
"#;
    let errs = errors(text);
    let expected = [
        "watchpost.yaml:1:11: timezone: unknown time zone \"Mars/Base\"",
        "watchpost.yaml:8:15: schedule: week: 8 is out of range 0-7 in \"0 0 12 * * 8 *\"",
        "watchpost.yaml:9:14: timeout: \"2 parsecs\": unknown duration unit",
        "watchpost.yaml:10:44: condition: total is a duration: add a unit, e.g. 800ms",
        "watchpost.yaml:11:30: unknown channel \"pager\" (defined under channels: hook)",
        "watchpost.yaml:11:46: repeat: \"soon\" is not a duration",
        "watchpost.yaml:12:11: duplicate monitor name \"home\" (first defined on line 5)",
        "watchpost.yaml:14:30: environment variable WATCHPOST_TEST_UNSET_VAR is not set",
    ];
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
    for (got, want) in errs.iter().zip(expected) {
        assert!(got.starts_with(want), "got {got:?}\nwant {want:?}");
    }
}

#[test]
fn more_semantic_errors() {
    let text = r#"locale: fr
storage: redis://x
monitors:
  - name: a
    type: http
    url: "ftp://example.test/"
    schedule: "0 0 0 30 2 * *"
    locations: [local, mars]
    alert: {quorum: 3, failure_threshold: 0}
  - name: b
    type: http
    schedule: "* * * * * * *"
    every: 10s
  - name: c
    type: http
    url: http://127.0.0.1:9/
    conditions: ["colour == red", "body contains \"a\\\"b\" extra"]
    maintenance:
      - {start: "0 0 25 * * * *", duration: 1h, timezone: Nowhere}
"#;
    let errs = errors(text);
    let want = [
        "watchpost.yaml:1:9: locale: \"fr\" is not supported",
        "watchpost.yaml:2:10: storage: use sqlite://PATH",
        "watchpost.yaml:6:10: url: unsupported URL scheme \"ftp\"",
        "watchpost.yaml:7:15: schedule: \"0 0 0 30 2 * *\" never fires",
        "watchpost.yaml:8:24: unknown location \"mars\" (`local`, or one declared under locations: none are)",
        "watchpost.yaml:9:21: quorum 3 is more than the monitor's 2 location(s)",
        "watchpost.yaml:9:43: failure_threshold must be at least 1",
        "watchpost.yaml:10:11: monitor \"b\": type http needs a `url:`",
        "watchpost.yaml:13:12: monitor \"b\": give either `schedule:` or `every:`, not both",
        "watchpost.yaml:17:19: condition: unknown operand \"colour\"",
        "watchpost.yaml:17:50: condition: unexpected text after the closing quote",
        "watchpost.yaml:19:17: maintenance start: hour: 25 is out of range 0-23",
        "watchpost.yaml:19:59: timezone: unknown time zone \"Nowhere\"",
    ];
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
    for (got, want) in errs.iter().zip(want) {
        assert!(got.starts_with(want), "got {got:?}\nwant {want:?}");
    }
}

#[test]
fn syntax_and_type_errors_have_positions() {
    let unknown = errors(
        "monitors:\n  - name: a\n    type: http\n    url: http://127.0.0.1:9/\n    colour: red\n",
    );
    assert_eq!(unknown.len(), 1);
    assert!(
        unknown[0].starts_with("watchpost.yaml:5:5: unknown field `colour`"),
        "{unknown:?}"
    );
    let kind = errors("monitors:\n  - name: a\n    type: carrier_pigeon\n");
    assert!(
        kind[0].starts_with(
            "watchpost.yaml:3:11: unknown value \"carrier_pigeon\" (one of: http, tcp, tls, dns, kafka_lag)"
        ),
        "{kind:?}"
    );
    let bad_type = errors("concurrency: lots\n");
    assert!(
        bad_type[0].starts_with("watchpost.yaml:1:14: "),
        "{bad_type:?}"
    );
    let broken = errors("monitors: [\n");
    assert!(broken[0].starts_with("watchpost.yaml:"), "{broken:?}");
    assert_eq!(broken.len(), 1);
    for e in unknown.iter().chain(&kind).chain(&bad_type).chain(&broken) {
        assert_eq!(e.lines().count(), 1, "one line per error: {e:?}");
    }
}

#[test]
fn secrets_never_appear_in_errors() {
    let errs = errors(
        "monitors:\n  - name: a\n    type: http\n    url: \"http://[oops/${WATCHPOST_TEST_URL_SECRET}\"\n",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("watchpost.yaml:4:10: url: invalid URL"),
        "{errs:?}"
    );
    assert!(!errs[0].contains("hunter2"), "{errs:?}");
}

#[test]
fn maintenance_windows() {
    setup_env();
    let c = parse(
        "w.yaml",
        "monitors:\n  - name: a\n    type: http\n    url: http://127.0.0.1:9/\n    maintenance:\n      - {start: \"0 0 2 * * * *\", duration: 30m, timezone: UTC}\n",
    )
    .unwrap();
    let w = &c.monitors[0].maintenance[0];
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    assert!(!w.active_at(at("2026-11-24T01:59:59Z")));
    assert!(w.active_at(at("2026-11-24T02:00:00Z")));
    assert!(w.active_at(at("2026-11-24T02:29:59Z")));
    assert!(!w.active_at(at("2026-11-24T02:30:01Z")));
}

/// 2026-06-01T00:00:00Z: "now" for the tests about schedules that have stopped firing.
fn june_2026() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
        .unwrap()
        .to_utc()
}

fn one_monitor(extra: &str) -> String {
    format!("monitors:\n  - name: a\n    type: http\n    url: http://127.0.0.1:9/\n{extra}")
}

/// Phrases that belong to a library, not to watchpost's messages.
fn assert_in_our_words(errs: &[String]) {
    for e in errs {
        for internal in [
            "Options",
            "Policy",
            "budget breached",
            "{ ",
            "u32",
            "struct ",
            "variant",
            "panicked",
        ] {
            assert!(!e.contains(internal), "{internal:?} in {e:?}");
        }
        assert_eq!(e.lines().count(), 1, "{e:?}");
    }
}

#[test]
fn durations_longer_than_ten_years_are_errors_at_their_position() {
    let huge = "99999999999999999999999d";
    let text = format!(
        "retention: {huge}\ndelivery: {{max_age: {huge}}}\nmonitors:\n  - name: a\n    type: http\n    url: http://127.0.0.1:9/\n    every: {huge}\n    timeout: {huge}\n    alert: {{repeat: {huge}}}\n    maintenance:\n      - {{start: \"0 0 2 * * * *\", duration: {huge}}}\n"
    );
    let errs = errors(&text);
    let want = [
        "watchpost.yaml:1:12: retention: ",
        "watchpost.yaml:2:21: delivery max_age: ",
        "watchpost.yaml:7:12: every: ",
        "watchpost.yaml:8:14: timeout: ",
        "watchpost.yaml:9:21: repeat: ",
        "watchpost.yaml:11:44: maintenance duration: ",
    ];
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
    for (got, want) in errs.iter().zip(want) {
        assert!(got.starts_with(want), "got {got:?}\nwant {want:?}");
        assert!(
            got.ends_with(
                "\"99999999999999999999999d\" is longer than the maximum, 3650d (10 years)"
            ),
            "{got}"
        );
    }
    // 1e400 overflows to infinity; a fraction just over the limit is over it too.
    for value in ["1e400s", "3650.5d", "87601h"] {
        let errs = errors(&one_monitor(&format!("    every: {value}\n")));
        assert_eq!(errs.len(), 1, "{value}: {errs:?}");
        assert!(!errs[0].contains("panicked"));
    }
}

#[test]
fn the_longest_durations_work_end_to_end() {
    setup_env();
    let c = parse(
        "w.yaml",
        &one_monitor("    every: 3650d\n    timeout: 3650d\n    alert: {repeat: 3650d}\n    maintenance:\n      - {start: \"0 0 2 * * * *\", duration: 3650d, timezone: UTC}\n"),
    )
    .unwrap();
    let m = &c.monitors[0];
    assert_eq!(m.schedule.every(), Some(watchpost_units::MAX_DURATION));
    let now = Utc::now();
    let next = m.schedule.next_after(&now).unwrap();
    assert!(next > now);
    let w = &m.maintenance[0];
    // Instant arithmetic at the ends of time: an answer, no overflow.
    assert!(!w.active_at(DateTime::<Utc>::MIN_UTC));
    assert!(!w.active_at(DateTime::<Utc>::MAX_UTC));
    assert!(w.active_at(now));
}

#[test]
fn locations_are_declared_and_listed_once_and_quorum_fits_them() {
    let text = r#"locations:
  bj: {region: beijing, isp: telecom, token: "${WATCHPOST_TEST_HOOK_TOKEN}"}
monitors:
  - name: a
    type: http
    url: http://127.0.0.1:9/
    locations: [local, bj]
    alert: {quorum: 2}
  - name: b
    type: http
    url: http://127.0.0.1:9/
    locations: [local, local]
    alert: {quorum: 2}
  - name: c
    type: http
    url: http://127.0.0.1:9/
    alert: {quorum: 2}
"#;
    let errs = errors(text);
    let want = [
        "watchpost.yaml:12:24: location \"local\" is listed twice".to_string(),
        "watchpost.yaml:13:21: quorum 2 is more than the monitor's 1 location(s)".to_string(),
        "watchpost.yaml:17:21: quorum 2 is more than the monitor's 1 location(s)".to_string(),
    ];
    assert_eq!(errs, want, "{errs:#?}");
    assert!(!errs.concat().contains("s3cret"));
}

#[test]
fn storage_must_be_a_url_the_store_opens() {
    let cases = [
        (
            "storage: postgres://watchpost:hunter2@db.example.com/watchpost?sslmode=hunter2\n",
            "watchpost.yaml:1:10: storage: sslmode must be disable, prefer, require, verify-ca or verify-full",
        ),
        (
            "storage: \"postgresql://u:${WATCHPOST_TEST_DB_PASSWORD}@db/w?sslmode=maybe\"\n",
            "watchpost.yaml:1:10: storage: sslmode must be disable, prefer, require, verify-ca or verify-full",
        ),
        (
            "storage: mysql://u:hunter2@db/w\n",
            "watchpost.yaml:1:10: storage: use sqlite://PATH (e.g. sqlite://watchpost.db), sqlite::memory: or postgres://USER:PASSWORD@HOST/DATABASE",
        ),
        (
            "storage: sqlite:///x.db?mode=ro\n",
            "watchpost.yaml:1:10: storage: query parameters (?...) are not supported; use sqlite://PATH",
        ),
        (
            "storage: \"sqlite://\"\n",
            "watchpost.yaml:1:10: storage: the SQLite file path is empty; use sqlite://PATH",
        ),
    ];
    for (text, want) in cases {
        let errs = errors(&format!("{text}monitors: []\n"));
        assert_eq!(errs, [want], "{text}");
        for secret in ["hunter2", "pg-sekrit", "mode=ro"] {
            assert!(!errs[0].contains(secret), "{errs:?}");
        }
    }
    setup_env();
    for ok in [
        "sqlite://w.db",
        "sqlite:w.db",
        "\"sqlite::memory:\"",
        "\"sqlite:///var/lib/${WATCHPOST_TEST_DB_PASSWORD}.db\"",
        "postgres://watchpost:hunter2@db.example.com/watchpost",
        "\"postgresql://u:${WATCHPOST_TEST_DB_PASSWORD}@db/w?sslmode=verify-full\"",
    ] {
        let c = parse("w.yaml", &format!("storage: {ok}\nmonitors: []\n"));
        assert!(c.is_ok(), "{ok}: {c:?}");
    }
}

#[test]
fn schedules_whose_last_fire_time_has_passed_are_errors() {
    setup_env();
    let text = "timezone: Asia/Shanghai\nmonitors:\n  - name: a\n    type: http\n    url: http://127.0.0.1:9/\n    schedule: \"0 0 0 1 1 * 2020\"\n    maintenance:\n      - {start: \"0 0 2 1 1 * 2021-2025\", duration: 1h, timezone: UTC}\n";
    let errs: Vec<String> = parse_at("watchpost.yaml", text, june_2026())
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        [
            "watchpost.yaml:6:15: schedule: \"0 0 0 1 1 * 2020\" does not fire any more: its last fire time has passed, at 2020-01-01 00:00:00 +08:00 (its year field has passed)",
            "watchpost.yaml:8:17: maintenance start: \"0 0 2 1 1 * 2021-2025\" does not fire any more: its last fire time has passed, at 2025-01-01 02:00:00 +00:00 (its year field has passed)",
        ]
    );
    // The same expression is fine while it still has a fire time ahead.
    let before = DateTime::parse_from_rfc3339("2019-06-01T00:00:00Z")
        .unwrap()
        .to_utc();
    assert!(parse_at("w.yaml", text, before).is_ok());
    // And `parse` checks from the real now: 2020 has passed.
    assert!(parse("w.yaml", text).is_err());
}

#[test]
fn urls_with_credentials_or_too_long_are_refused_without_quoting_them() {
    let cred =
        "credentials in the URL are not sent; use headers: {Authorization: ...} with a ${VAR}";
    let cases = [
        (
            "url: http://admin:hunter2@127.0.0.1:9/",
            format!("watchpost.yaml:4:10: url: {cred}"),
        ),
        (
            "url: \"http://admin:${WATCHPOST_TEST_DB_PASSWORD}@127.0.0.1:9/\"",
            format!("watchpost.yaml:4:10: url: {cred}"),
        ),
        (
            "url: \"http://user@127.0.0.1:9/\"",
            format!("watchpost.yaml:4:10: url: {cred}"),
        ),
        (
            "url: \"http://127.0.0.1:9/?t=${WATCHPOST_TEST_LONG}\"",
            "watchpost.yaml:4:10: url: the URL is 9022 bytes long; the limit is 8 KiB (8192 bytes)"
                .to_string(),
        ),
    ];
    for (line, want) in cases {
        let errs = errors(&format!(
            "monitors:\n  - name: a\n    type: http\n    {line}\n"
        ));
        assert_eq!(errs, [want], "{line}");
        assert!(
            !errs[0].contains("hunter2")
                && !errs[0].contains("pg-sekrit")
                && !errs[0].contains("LLLL")
        );
    }
    let long = format!("http://127.0.0.1:9/{}", "x".repeat(100_000));
    let errs = errors(&format!(
        "monitors:\n  - name: a\n    type: http\n    url: {long}\n"
    ));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].ends_with("url: the URL is 100019 bytes long; the limit is 8 KiB (8192 bytes)"),
        "{}",
        &errs[0][..200.min(errs[0].len())]
    );

    let errs = errors(&one_monitor(
        "    headers:\n      X-Big: \"${WATCHPOST_TEST_LONG}\"\n      X-Ok: fine\n      X-Bad: \"${WATCHPOST_TEST_BAD_HEADER}\"\n",
    ));
    assert_eq!(
        errs,
        [
            "watchpost.yaml:6:7: header \"X-Big\": the header line is 9007 bytes long; the limit is 8 KiB (8192 bytes)",
            "watchpost.yaml:8:7: header \"X-Bad\": invalid name or value",
        ]
    );
    assert!(!errs.concat().contains("sekrit"));
}

#[test]
fn names_with_control_characters_or_too_long_are_refused_escaped() {
    let long = "n".repeat(201);
    let text = format!(
        "channels:\n  \"ops\\u001b[2J\": {{type: console}}\nmonitors:\n  - name: \"home\\npage\"\n    type: http\n    url: http://127.0.0.1:9/\n  - name: \"\\u007f\"\n    type: http\n    url: http://127.0.0.1:9/\n  - name: {long}\n    type: http\n    url: http://127.0.0.1:9/\n  - name: \" \"\n    type: http\n    url: http://127.0.0.1:9/\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert_eq!(
        errs[0],
        "watchpost.yaml:2:3: channel name \"ops\\u{1b}[2J\" contains the control character \\u{1b}: names are printed on terminals and in alerts"
    );
    assert_eq!(
        errs[1],
        "watchpost.yaml:4:11: monitor name \"home\\npage\" contains the control character \\n: names are printed on terminals and in alerts"
    );
    assert!(
        errs[2].starts_with("watchpost.yaml:7:11: monitor name \"\\u{7f}\" contains"),
        "{}",
        errs[2]
    );
    assert!(
        errs[3].starts_with("watchpost.yaml:10:11: monitor name \"nnnn"),
        "{}",
        errs[3]
    );
    assert!(
        errs[3].ends_with("is 201 characters long; the limit is 200"),
        "{}",
        errs[3]
    );
    for e in &errs {
        assert!(!e.chars().any(char::is_control), "{e:?}");
    }
    assert_eq!(errs[4], "watchpost.yaml:13:11: monitor name is empty");
}

#[test]
fn an_empty_config_is_valid_with_a_warning() {
    setup_env();
    for text in [
        "",
        "# nothing yet\n",
        "monitors: []\n",
        "channels:\n  screen: {type: console}\n",
    ] {
        let c = parse("watchpost.yaml", text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let warnings: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            ["watchpost.yaml:1:1: no monitors are defined: watchpost has nothing to check"],
            "{text:?}"
        );
    }
}

#[test]
fn yaml_errors_are_in_watchposts_words() {
    let deep = format!(
        "channels:\n  a: {{type: console, x: {}{}}}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    let wide = format!(
        "channels:\n  a: {{type: console, x: [{}]}}\n",
        "1,".repeat(260_000)
    );
    let cases: Vec<(String, &str)> = vec![
        (
            "monitors: []\nmonitors: []\n".into(),
            "watchpost.yaml:2:1: duplicate key \"monitors\"",
        ),
        (
            "channels:\n  a: {type: console}\n  a: {type: console}\n".into(),
            "watchpost.yaml:3:3: duplicate key \"a\"",
        ),
        (
            wide,
            "watchpost.yaml:2:500008: the file is too large or too deeply nested (limit: 250000 nodes)",
        ),
        (
            deep,
            "watchpost.yaml:2:86: the file is too large or too deeply nested (limit: 64 levels)",
        ),
        (
            "monitors: []\n---\nmonitors: []\n".into(),
            "watchpost.yaml:3:1: only one YAML document is allowed in the config (remove the `---` lines)",
        ),
        (
            "timezone: *zone\n".into(),
            "watchpost.yaml:1:11: an alias (*name) refers to an unknown anchor (&name)",
        ),
        (
            "concurrency: lots\n".into(),
            "watchpost.yaml:1:14: expected a whole number (0 or more)",
        ),
        (
            "concurrency: -1\n".into(),
            "watchpost.yaml:1:14: expected a whole number (0 or more)",
        ),
        (
            "monitors: {}\n".into(),
            "watchpost.yaml:1:11: expected a list",
        ),
        (
            "monitors: [1]\n".into(),
            "watchpost.yaml:1:12: expected a mapping (key: value)",
        ),
        (
            "monitors:\n  - name: [a]\n".into(),
            "watchpost.yaml:2:11: expected text",
        ),
        (
            "monitors:\n  - name:\n    type: http\n".into(),
            "watchpost.yaml:2:9: a value is missing here (it is empty or null)",
        ),
        (
            "monitors:\n  - name: a\n    type: http\n    insecure: maybe\n".into(),
            "watchpost.yaml:4:15: expected true or false",
        ),
        (
            "monitors:\n  - name: a\n".into(),
            "watchpost.yaml:2:5: missing field `type`",
        ),
    ];
    for (text, want) in cases {
        let errs = errors(&text);
        assert_eq!(errs, [want], "{}", &text[..text.len().min(60)]);
        assert_in_our_words(&errs);
    }
}

#[test]
fn condition_columns_count_characters_after_wide_text() {
    let errs = errors(&one_monitor(
        "    conditions: [\"header.名前 < 5 parsecs\"]\n",
    ));
    // The string starts at column 19 (after `    conditions: ["`); its value, `5 parsecs`, 12
    // characters into it (`header.名前 < ` is 12 characters and 16 bytes).
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("watchpost.yaml:5:31: condition: < needs a number"),
        "{errs:?}"
    );
    // Wide text on an earlier line changes nothing either.
    let earlier = errors(
        "monitors:\n  - name: 首页\n    type: http\n    url: http://127.0.0.1:9/\n    conditions: [\"header.名前 < 5 parsecs\"]\n",
    );
    assert!(
        earlier[0].starts_with("watchpost.yaml:5:31: "),
        "{earlier:?}"
    );
}

#[test]
fn http_keeps_the_default_status_unless_a_condition_names_status() {
    setup_env();
    let c = parse(
        "w.yaml",
        "monitors:\n  - {name: a, type: http, url: \"http://127.0.0.1:9/\", conditions: [\"total < 1s\"]}\n  - {name: b, type: http, url: \"http://127.0.0.1:9/\", conditions: [\"status == 503\"]}\n",
    )
    .unwrap();
    let sources = |i: usize| common::sources(&c, i);
    assert_eq!(sources(0), ["status >= 200", "status <= 399", "total < 1s"]);
    assert_eq!(sources(1), ["status == 503"]);
}

#[test]
fn a_relative_sqlite_path_is_relative_to_the_config_file_and_stays_masked() {
    setup_env();
    let storage = |file: &str, value: &str| {
        let c = parse(file, &format!("storage: \"{value}\"\nmonitors: []\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        let debug = format!("{c:?}");
        (c, debug)
    };
    // Part of the path from the environment: the resolved URL shows its name.
    let (c, debug) = storage(
        "/srv/wp/w.yaml",
        "sqlite://${WATCHPOST_TEST_DB_PASSWORD}.db",
    );
    assert_eq!(c.storage, "sqlite:///srv/wp/pg-sekrit-7731.db");
    assert_eq!(
        c.secrets.redact(&c.storage),
        "sqlite:///srv/wp/${WATCHPOST_TEST_DB_PASSWORD}.db"
    );
    assert!(!debug.contains("sekrit"), "{debug}");
    // The whole URL from the environment: resolving splits the value, and what it became (the
    // URL, and the path a store error names) is masked as the value was.
    let (c, debug) = storage("/srv/wp/w.yaml", "${WATCHPOST_TEST_DB_URL}");
    assert_eq!(c.storage, "sqlite:///srv/wp/db-sekrit/w.db");
    assert_eq!(c.secrets.redact(&c.storage), "${WATCHPOST_TEST_DB_URL}");
    assert!(!debug.contains("sekrit"), "{debug}");
    let error = "cannot open store \"/srv/wp/db-sekrit/w.db\": unable to open database file";
    assert!(!c.secrets.redact(error).contains("sekrit"));
    // Absolute paths and memory are kept as written.
    let (c, _) = storage("/srv/wp/w.yaml", "sqlite:/var/lib/w.db");
    assert_eq!(c.storage, "sqlite:/var/lib/w.db");
    let (c, _) = storage("/srv/wp/w.yaml", "sqlite::memory:");
    assert_eq!(c.storage, "sqlite::memory:");
    // A PostgreSQL URL is kept as written, its ${VAR} password masked.
    let (c, debug) = storage(
        "/srv/wp/w.yaml",
        "postgres://wp:${WATCHPOST_TEST_DB_PASSWORD}@db.example.com/wp?sslmode=verify-full",
    );
    assert_eq!(
        c.storage,
        "postgres://wp:pg-sekrit-7731@db.example.com/wp?sslmode=verify-full"
    );
    assert_eq!(
        c.secrets.redact(&c.storage),
        "postgres://wp:${WATCHPOST_TEST_DB_PASSWORD}@db.example.com/wp?sslmode=verify-full"
    );
    assert!(!debug.contains("sekrit"), "{debug}");
}

#[test]
fn secrets_are_recorded_and_targets_show_the_url_as_written() {
    setup_env();
    let text = r#"storage: "sqlite:///tmp/${WATCHPOST_TEST_DB_PASSWORD}.db"
channels:
  hook: {type: webhook, url: "http://127.0.0.1:9/hook", headers: {Authorization: "Bearer ${WATCHPOST_TEST_HOOK_TOKEN}"}}
monitors:
  - name: api
    type: http
    url: "http://127.0.0.1:9/api?token=${WATCHPOST_TEST_QUERY_TOKEN}"
    headers: {X-Key: "${WATCHPOST_TEST_URL_SECRET}"}
"#;
    let c = parse("w.yaml", text).unwrap();
    let m = &c.monitors[0];
    assert_eq!(
        m.target,
        "http://127.0.0.1:9/api?token=${WATCHPOST_TEST_QUERY_TOKEN}"
    );
    let CheckSpec::Http(req) = &m.check else {
        panic!("{:?}", m.check)
    };
    let sent = req.url.as_str();
    assert!(sent.contains("tok/en+with%20spaces&=%C3%BC"), "{sent}");
    // The URL as sent, masked: the encoded token becomes its name.
    assert_eq!(
        c.secrets.redact(sent),
        "http://127.0.0.1:9/api?token=${WATCHPOST_TEST_QUERY_TOKEN}"
    );
    let mut names: Vec<&str> = c.secrets.names().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "WATCHPOST_TEST_DB_PASSWORD",
            "WATCHPOST_TEST_HOOK_TOKEN",
            "WATCHPOST_TEST_QUERY_TOKEN",
            "WATCHPOST_TEST_URL_SECRET",
        ]
    );
    assert_eq!(
        c.secrets
            .redact("error: Bearer s3cret #not a comment at sqlite:///tmp/pg-sekrit-7731.db"),
        "error: Bearer ${WATCHPOST_TEST_HOOK_TOKEN} at sqlite:///tmp/${WATCHPOST_TEST_DB_PASSWORD}.db"
    );
    let debug = format!("{c:?}");
    for value in ["s3cret", "pg-sekrit", "hunter2"] {
        assert!(!debug.contains(value), "{value} in Debug");
    }
}

#[test]
fn secrets_in_urls_never_appear_in_errors() {
    // A ${VAR} in the query of a URL that fails for another reason.
    let errs = errors(
        "monitors:\n  - name: a\n    type: http\n    url: \"http://127.0.0.1:99999/?k=${WATCHPOST_TEST_QUERY_TOKEN}\"\n",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("watchpost.yaml:4:10: url: invalid URL"),
        "{errs:?}"
    );
    assert!(
        !errs[0].contains("tok/en") && !errs[0].contains("tok%2Fen"),
        "{errs:?}"
    );
    // A whole URL from the environment, with credentials in it.
    let errs = errors(
        "monitors:\n  - name: a\n    type: http\n    url: \"${WATCHPOST_TEST_URL_SECRET}\"\n",
    );
    assert!(!errs.concat().contains("hunter2"), "{errs:?}");
}

#[test]
fn retention_is_one_duration_or_one_per_granularity() {
    let monitor = "monitors:\n  - {name: a, type: tcp, address: \"127.0.0.1:9\"}\n";
    let c = parse("w.yaml", &format!("retention: 3d\n{monitor}")).unwrap();
    assert_eq!(c.retention.raw, Duration::from_secs(3 * 86_400));
    assert_eq!(c.retention.minutes, Duration::from_secs(30 * 86_400));
    let c = parse(
        "w.yaml",
        &format!("retention: {{minutes: 2d, hours: 90d}}\n{monitor}"),
    )
    .unwrap();
    assert_eq!(c.retention.raw, Duration::from_secs(7 * 86_400));
    assert_eq!(c.retention.minutes, Duration::from_secs(2 * 86_400));
    assert_eq!(c.retention.hours, Duration::from_secs(90 * 86_400));
    assert_eq!(
        errors(&format!("retention: {{raw: 1d, minute: 2d}}\n{monitor}")),
        ["watchpost.yaml:1:22: unknown field `minute` (known: raw, minutes, hours)"]
    );
    assert_eq!(
        errors(&format!("retention: {{hours: 3x}}\n{monitor}")),
        [
            "watchpost.yaml:1:20: retention: hours: \"3x\": unknown duration unit \"x\" (use us, ms, s, m, h, d)"
        ]
    );
    assert_eq!(
        errors(&format!("retention: 7\n{monitor}")),
        [
            "watchpost.yaml:1:1: expected a duration such as 7d, or {raw: 7d, minutes: 30d, hours: 400d}, found the number 7"
        ]
    );
}

#[test]
fn quorum_is_a_count_or_a_percentage_of_the_locations() {
    let config = |quorum: &str| {
        format!(
            "monitors:\n  - name: a\n    type: http\n    url: http://127.0.0.1:9/\n    alert: {{quorum: {quorum}}}\n"
        )
    };
    for (written, want) in [
        ("1", 1),
        ("\"1\"", 1),
        ("100%", 1),
        ("\"50%\"", 1),
        ("0.5%", 1),
    ] {
        let parsed = parse("watchpost.yaml", &config(written))
            .unwrap_or_else(|e| panic!("{written}: {e:?}"));
        assert_eq!(parsed.monitors[0].alert.quorum, want, "{written}");
    }
    for (written, want) in [
        ("0", "watchpost.yaml:5:21: quorum must be at least 1"),
        ("-2", "watchpost.yaml:5:21: quorum must be at least 1"),
        (
            "2",
            "watchpost.yaml:5:21: quorum 2 is more than the monitor's 1 location(s)",
        ),
        (
            "0%",
            "watchpost.yaml:5:21: quorum 0% is not a percentage above 0% and at most 100%",
        ),
        (
            "150%",
            "watchpost.yaml:5:21: quorum 150% is not a percentage above 0% and at most 100%",
        ),
        (
            "most",
            "watchpost.yaml:5:21: quorum must be a number of locations (1, 2, ...) or a percentage of them (\"50%\"), not \"most\"",
        ),
        (
            "abc%",
            "watchpost.yaml:5:21: quorum must be a number of locations (1, 2, ...) or a percentage of them (\"50%\"), not \"abc%\"",
        ),
    ] {
        let errs = errors(&config(written));
        assert_eq!(errs, vec![want.to_string()], "{written}");
    }
}

#[test]
fn locations_get_their_silence_limit_and_channels_from_their_monitors_unless_given() {
    setup_env();
    let text = r#"
channels:
  ops: {type: console}
  pager: {type: console}
locations:
  gz: {region: 广东佛山, isp: 电信, token: "${WATCHPOST_TEST_HOOK_TOKEN}"}
  hrb: {region: 黑龙江哈尔滨, isp: 联通, token: "${WATCHPOST_TEST_HOOK_TOKEN}", silent_after: 5m, channels: [pager]}
monitors:
  - name: a
    type: tcp
    address: 127.0.0.1:9
    every: 30s
    locations: [local, gz, hrb]
    alert: {channels: [ops], quorum: 66%}
  - name: b
    type: tcp
    address: 127.0.0.1:9
    every: 10s
    locations: [gz]
"#;
    let config = parse("watchpost.yaml", text).unwrap();
    let gz = &config.locations["gz"];
    assert_eq!(gz.region.as_deref(), Some("广东佛山"));
    assert_eq!(gz.isp.as_deref(), Some("电信"));
    assert_eq!(gz.token.as_deref(), Some("s3cret #not a comment"));
    // 3 × the longest period of its monitors (30s), above the 1-minute floor.
    assert_eq!(gz.silent_after, Duration::from_secs(90));
    assert_eq!(gz.channels, ["ops"]);
    let hrb = &config.locations["hrb"];
    assert_eq!(hrb.silent_after, Duration::from_secs(300));
    assert_eq!(hrb.channels, ["pager"]);
    assert_eq!(config.monitors[0].locations, ["local", "gz", "hrb"]);
    assert_eq!(config.monitors[0].alert.quorum, 2);
    assert_eq!(config.monitors[1].locations, ["gz"]);
    assert!(!format!("{config:?}").contains("s3cret"));

    let errs = errors(
        r#"
locations:
  gz: {token: "${WATCHPOST_TEST_HOOK_TOKEN}", silent_after: 5s, channels: [nope]}
monitors: []
"#,
    );
    assert_eq!(
        errs,
        [
            "watchpost.yaml:3:61: silent_after: at least 10s",
            "watchpost.yaml:3:76: unknown channel \"nope\" (defined under channels: none)",
        ]
    );
}

#[test]
fn a_config_can_be_read_with_values_given_instead_of_the_environment() {
    let env = std::collections::BTreeMap::from([(
        "WATCHPOST_AGENT_ONLY".to_string(),
        "agent-secret-value".to_string(),
    )]);
    let text = "monitors:\n  - {name: a, type: http, url: \"http://127.0.0.1:9/?k=${WATCHPOST_AGENT_ONLY}\"}\n";
    let config = watchpost_config::parse_with_env("assignment", text, &env).unwrap();
    assert_eq!(
        config.secrets.value("WATCHPOST_AGENT_ONLY"),
        Some("agent-secret-value")
    );
    assert_eq!(
        config.monitors[0].target,
        "http://127.0.0.1:9/?k=${WATCHPOST_AGENT_ONLY}"
    );
    // The process's environment is read again afterwards.
    let errs = errors(text);
    assert_eq!(
        errs,
        [
            "watchpost.yaml:2:55: environment variable WATCHPOST_AGENT_ONLY is not set (used as ${WATCHPOST_AGENT_ONLY})"
        ]
    );
}
