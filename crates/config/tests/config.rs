//! Config parsing and validation: positions, all errors at once, defaults, secrets.

use std::time::Duration;
use watchpost_config::{Check, Locale, parse};

/// Environment variables the tests use, set once before any test reads the environment.
fn setup_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: every test calls this first, and Once blocks them until it is done, so no other
    // thread reads the environment while it is written.
    ONCE.call_once(|| unsafe {
        std::env::set_var("WATCHPOST_TEST_HOOK_TOKEN", "s3cret #not a comment");
        std::env::set_var("WATCHPOST_TEST_URL_SECRET", "key=hunter2 bad");
    });
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
    assert_eq!(c.retention, Duration::from_secs(7 * 86_400));
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
    assert_eq!(api.alert.failure_threshold, 2);
    match &api.check {
        Check::Http(req) => assert_eq!(req.url.as_str(), "http://127.0.0.1:9/api"),
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
        "watchpost.yaml:8:24: unknown location \"mars\" (known: local)",
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
        kind[0].starts_with("watchpost.yaml:3:11: unknown variant `carrier_pigeon`"),
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
