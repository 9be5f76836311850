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
