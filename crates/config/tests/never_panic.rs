//! Property tests: `watchpost_config::parse` answers any text with a config or errors, never a
//! panic, and every error (and warning) has a line and a column of at least 1. Besides
//! arbitrary text, a generator writes YAML shaped like a real config (monitors with
//! durations, schedules, conditions, URLs, names, the settings of every kind) with random
//! values and random damage.

mod common;

use proptest::prelude::*;
use watchpost_config::{ConfigErrors, parse};

fn setup_env() {
    common::set_env_once(&[("WATCHPOST_PT_SET", "pt-secret-value/+ &")]);
}

fn positions_are_valid(errors: &ConfigErrors) -> Result<(), TestCaseError> {
    prop_assert!(!errors.0.is_empty());
    for e in &errors.0 {
        prop_assert!(e.line >= 1 && e.column >= 1, "{e:?}");
        prop_assert!(!e.message.is_empty());
        prop_assert!(!e.message.contains("pt-secret-value"), "{e}");
    }
    Ok(())
}

fn check(text: &str) -> Result<(), TestCaseError> {
    setup_env();
    match parse("pt.yaml", text) {
        Ok(config) => {
            for w in &config.warnings {
                prop_assert!(w.line >= 1 && w.column >= 1, "{w:?}");
            }
            for m in &config.monitors {
                if m.check.kind().as_str() == "http" {
                    prop_assert!(!m.conditions.is_empty(), "HTTP always has a status rule");
                }
                let _ = m.schedule.upcoming(&chrono::Utc::now(), 2);
                for w in &m.maintenance {
                    let _ = w.active_at(chrono::Utc::now());
                }
            }
            let _ = format!("{config:?}");
        }
        Err(errors) => positions_are_valid(&errors)?,
    }
    Ok(())
}

/// A scalar written plain, double-quoted (JSON escaping is valid YAML) or single-quoted.
fn scalar(value: String) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(value.clone()),
        Just(serde_json::to_string(&value).unwrap()),
        Just(format!("'{}'", value.replace('\'', "''"))),
    ]
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "[1-9][0-9]{0,2}(s|m|h|d)",
        1 => "[0-9]{0,26}(\\.[0-9]{0,3})?(us|ms|s|m|h|d|x|)",
        1 => Just("99999999999999999999999d".to_string()),
        1 => Just("1e400s".to_string()),
        1 => Just("3650d".to_string()),
        1 => Just("-1s".to_string()),
    ]
}

fn schedule() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("*/5 * * * * * *".to_string()),
        1 => Just("0 0 0 1 1 * 2020".to_string()),
        1 => Just("0 0 0 30 2 * *".to_string()),
        1 => Just("@every 99999999999999999999999d".to_string()),
        3 => Just("@daily".to_string()),
        1 => "([0-9*/,?LW#-]{1,4} ){4,7}",
    ]
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("status == 200".to_string()),
        3 => Just("total < 1s".to_string()),
        1 => Just("header.名前 < 5 parsecs".to_string()),
        3 => Just("body contains \"ok\"".to_string()),
        1 => "(status|total|body|json\\.a|header\\.x|状态) (==|<|>|contains|matches|~) \\PC{0,8}",
    ]
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just("http://127.0.0.1:9/".to_string()),
        1 => Just("http://user:pw@127.0.0.1:9/".to_string()),
        4 => Just("http://127.0.0.1:9/?k=${WATCHPOST_PT_SET}".to_string()),
        1 => Just("${WATCHPOST_PT_SET}".to_string()),
        1 => Just("${WATCHPOST_PT_UNSET}".to_string()),
        1 => Just("http://[::1/${bad name}".to_string()),
        1 => "(http|https|ftp)://[a-z0-9.:@\\[\\]%-]{0,20}/\\PC{0,10}",
        1 => (0usize..10_000).prop_map(|n| format!("http://127.0.0.1/{}", "x".repeat(n))),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => "[a-z]{1,8}",
        1 => "\\PC{0,10}",
        1 => ".{0,6}",
        1 => Just("a\nb".to_string()),
        1 => Just("\u{1b}[2J".to_string()),
        1 => Just(" ".to_string()),
        1 => Just("n".repeat(201)),
    ]
}

/// A key of the tcp, tls or dns kinds with a value, well formed or not.
fn kind_setting() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        4 => Just("127.0.0.1:9".to_string()),
        2 => Just("[::1]:53".to_string()),
        2 => Just("example.com".to_string()),
        1 => Just("${WATCHPOST_PT_SET}".to_string()),
        1 => Just("${WATCHPOST_PT_SET}:99999".to_string()),
        1 => Just("AAAA".to_string()),
        1 => "[a-z0-9.:\\[\\]%_-]{0,24}",
        1 => "\\PC{0,12}",
    ];
    (
        prop::sample::select(vec![
            "address", "send", "expect", "sni", "query", "record", "server", "headers",
        ]),
        value.prop_flat_map(scalar),
    )
        .prop_map(|(key, value)| format!("    {key}: {value}\n"))
}

fn monitor() -> impl Strategy<Value = String> {
    (
        name().prop_flat_map(scalar),
        prop::sample::select(vec![
            "http", "http", "http", "http", "tcp", "tls", "dns", "Http",
        ]),
        url().prop_flat_map(scalar),
        prop::option::weighted(0.4, duration()),
        prop::option::weighted(0.2, schedule().prop_flat_map(scalar)),
        prop::option::of(duration()),
        prop::collection::vec(condition().prop_flat_map(scalar), 0..2),
        prop::collection::vec(
            prop::sample::select(vec!["local", "bj", "local", "local", "local"]),
            0..2,
        ),
        (
            prop::option::weighted(0.2, 0u32..3),
            prop::option::of(duration()),
        ),
        prop::option::weighted(0.2, (schedule().prop_flat_map(scalar), duration())),
        (
            prop::option::weighted(0.7, Just(())),
            prop::collection::vec(kind_setting(), 0..3),
        ),
    )
        .prop_map(
            |(
                name,
                kind,
                url,
                every,
                sched,
                timeout,
                conds,
                locs,
                (quorum, repeat),
                window,
                (with_url, settings),
            )| {
                let mut m = format!("  - name: {name}\n    type: {kind}\n");
                if with_url.is_some() {
                    m += &format!("    url: {url}\n");
                }
                // A key written twice is a YAML error; keep the first.
                let mut seen = Vec::new();
                for s in settings {
                    let key = s.split(':').next().unwrap_or("").to_string();
                    if !seen.contains(&key) {
                        m += &s;
                        seen.push(key);
                    }
                }
                if let Some(e) = every {
                    m += &format!("    every: {e}\n");
                }
                if let Some(s) = sched {
                    m += &format!("    schedule: {s}\n");
                }
                if let Some(t) = timeout {
                    m += &format!("    timeout: {t}\n");
                }
                if !conds.is_empty() {
                    m += &format!("    conditions: [{}]\n", conds.join(", "));
                }
                if !locs.is_empty() {
                    m += &format!("    locations: [{}]\n", locs.join(", "));
                }
                if quorum.is_some() || repeat.is_some() {
                    m += "    alert:\n";
                    if let Some(q) = quorum {
                        m += &format!("      quorum: {q}\n");
                    }
                    if let Some(r) = repeat {
                        m += &format!("      repeat: {r}\n");
                    }
                }
                if let Some((start, duration)) = window {
                    m += &format!(
                        "    maintenance:\n      - {{start: {start}, duration: {duration}}}\n"
                    );
                }
                m
            },
        )
}

fn config() -> impl Strategy<Value = String> {
    (
        prop::option::of(prop::sample::select(vec![
            "UTC",
            "Asia/Shanghai",
            "Mars/Base",
        ])),
        prop::option::of(prop::sample::select(vec![
            "sqlite://w.db",
            "postgres://u:pw@h/db",
            "\"sqlite:///x.db?mode=ro\"",
            "sqlite://w.db",
            "\"sqlite::memory:\"",
            "\"postgres://u:${WATCHPOST_PT_SET}@h/db\"",
        ])),
        prop::option::of(duration()),
        prop::option::of(duration()),
        prop::option::weighted(0.1, name().prop_flat_map(scalar)),
        prop::collection::vec(monitor(), 0..3),
    )
        .prop_map(|(tz, storage, retention, max_age, location, monitors)| {
            let mut c = String::new();
            if let Some(tz) = tz {
                c += &format!("timezone: {tz}\n");
            }
            if let Some(s) = storage {
                c += &format!("storage: {s}\n");
            }
            if let Some(r) = retention {
                c += &format!("retention: {r}\n");
            }
            if let Some(a) = max_age {
                c += &format!("delivery: {{max_age: {a}}}\n");
            }
            c += "channels:\n  screen: {type: console}\n";
            if let Some(l) = location {
                c += &format!(
                    "locations:\n  {l}: {{region: x, token: \"${{WATCHPOST_PT_SET}}\"}}\n"
                );
            }
            if !monitors.is_empty() {
                c += "monitors:\n";
                c += &monitors.concat();
            }
            c
        })
}

/// Damage a config: insert, delete or replace a character at some point.
fn damaged() -> impl Strategy<Value = String> {
    (
        config(),
        any::<prop::sample::Index>(),
        prop::sample::select(vec![
            ":", "-", " ", "\n", "[", "]", "{", "}", "\"", "'", "&a", "*a", "!", "#", "\t",
            "---\n", "\u{feff}", "\0", "名",
        ]),
        0u8..3,
    )
        .prop_map(|(text, at, piece, how)| {
            let boundaries: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect();
            let i = boundaries[at.index(boundaries.len())];
            let next = boundaries
                .iter()
                .copied()
                .find(|b| *b > i)
                .unwrap_or(text.len());
            match how {
                0 => format!("{}{piece}{}", &text[..i], &text[i..]),
                1 => format!("{}{}", &text[..i], &text[next..]),
                _ => format!("{}{piece}{}", &text[..i], &text[next..]),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_text(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn config_shaped_yaml(text in config()) {
        check(&text)?;
    }

    #[test]
    fn damaged_config_shaped_yaml(text in damaged()) {
        check(&text)?;
    }
}
