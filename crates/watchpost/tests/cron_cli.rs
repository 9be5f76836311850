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
    // ...and says when it last fired.
    let past = watchpost(&[
        "cron",
        "0 0 0 1 1 * 2020",
        "--tz",
        "Asia/Shanghai",
        "--after",
        "2026-01-01T00:00:00+08:00",
    ]);
    assert_eq!(past.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&past.stderr).trim(),
        "watchpost: \"0 0 0 1 1 * 2020\" does not fire after 2026-01-01T00:00:00+08:00: it last fired at 2020-01-01T00:00:00+08:00 (its year field has passed)"
    );
}

#[test]
fn periods_beyond_the_maximum_exit_2_never_crash() {
    for expr in [
        "@every 99999999999999999999999d",
        "@every 3650.5d",
        "@every 1e400s",
        "@every 100000000000000000000000000000000000000000000000000s",
    ] {
        let out = watchpost(&["cron", expr]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{expr}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("watchpost: @every: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.stdout.is_empty());
    }
    let out = watchpost(&["cron", "@every 99999999999999999999999d"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "watchpost: @every: \"99999999999999999999999d\" is longer than the maximum, 3650d (10 years) in \"@every 99999999999999999999999d\""
    );
    // The maximum itself works.
    let out = watchpost(&[
        "cron",
        "@every 3650d",
        "-n",
        "2",
        "--tz",
        "UTC",
        "--after",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        lines(&out),
        ["2029-12-17T00:00:00+00:00", "2039-12-15T00:00:00+00:00"]
    );
}

#[test]
fn a_huge_count_streams_and_stops_with_its_reader() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args([
            "cron",
            "* * * * * * *",
            "-n",
            "18446744073709551615",
            "--tz",
            "UTC",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    for _ in 0..3 {
        first.clear();
        reader.read_line(&mut first).unwrap();
        assert!(first.ends_with("+00:00\n"), "{first:?}");
    }
    // The reader goes away, as with `| head -3`: the command ends, quietly.
    drop(reader);
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "still running after its reader left"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
