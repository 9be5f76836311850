//! `watchpost cron` end to end.

use std::process::{Command, Output};

fn watchpost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(args)
        .output()
        .expect("run watchpost")
}

fn lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn prints_the_next_fire_times() {
    let out = watchpost(&[
        "cron",
        "0 15 10 * * MON-FRI *",
        "-n",
        "3",
        "--tz",
        "Asia/Shanghai",
        "--after",
        "2026-11-24T00:00:00+08:00",
    ]);
    assert_eq!(out.status.code(), Some(0));
    // Piped: no description line, just the times.
    assert_eq!(
        lines(&out),
        [
            "2026-11-24T10:15:00+08:00",
            "2026-11-25T10:15:00+08:00",
            "2026-11-26T10:15:00+08:00"
        ]
    );
    let utc = watchpost(&[
        "cron",
        "@every 30s",
        "-n",
        "2",
        "--tz",
        "UTC",
        "--after",
        "2026-11-24T00:00:10Z",
    ]);
    assert_eq!(
        lines(&utc),
        ["2026-11-24T00:00:30+00:00", "2026-11-24T00:01:00+00:00"]
    );
    // --after in another offset is converted to --tz.
    let converted = watchpost(&[
        "cron",
        "0 0 12 * * * *",
        "-n",
        "1",
        "--tz",
        "Asia/Shanghai",
        "--after",
        "2026-11-24T00:00:00Z",
    ]);
    assert_eq!(lines(&converted), ["2026-11-24T12:00:00+08:00"]);
    // Default count is 5.
    let five = watchpost(&["cron", "*/5 * * * * * *", "--tz", "UTC"]);
    assert_eq!(lines(&five).len(), 5);
}

#[test]
fn bad_expressions_exit_2_and_never_firing_exit_1() {
    let bad = watchpost(&["cron", "0 0 12 * * 8 *"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim(),
        "watchpost: week: 8 is out of range 0-7 in \"0 0 12 * * 8 *\""
    );
    assert!(bad.stdout.is_empty());
    for args in [
        &["cron", "* * *"][..],
        &["cron", "* * * * *", "--tz", "Mars/Olympus"],
        &["cron", "* * * * *", "--after", "yesterday"],
        &["cron", "* * * * *", "-n", "zero"],
    ] {
        let out = watchpost(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim().lines().count(),
            1
        );
    }
    let never = watchpost(&["cron", "0 0 0 30 2 * *"]);
    assert_eq!(never.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&never.stderr).contains("never fires"));
    assert!(never.stdout.is_empty());
    let past = watchpost(&[
        "cron",
        "0 0 0 1 1 * 2020",
        "--after",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(past.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&past.stderr).contains("year field has passed"));
}
