//! `watchpost once --due` and `--deadline` through the real binary: each monitor runs once per
//! fire time of its own schedule however often `once --due` is started, a monitor that missed
//! several fire times runs once, two processes started at the same moment (SQLite and
//! PostgreSQL) run each due monitor once, and `--deadline` bounds the run with the alert of a
//! check it cut still delivered. Schedules with seconds keep it short; invocations start at
//! odd seconds, a second away from every fire time (all at even seconds), so what is due is
//! known from the test's clock.

mod common;

use common::{json, stderr, watchpost};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use watchpost_testkit::contract;

/// Answers 200 to every request and counts them by path; a path starting `/slow` answers
/// only after 30 s.
struct Target {
    addr: std::net::SocketAddr,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Target {
    async fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Some(req) = common::read_request(&mut s).await else {
                        return;
                    };
                    let head = String::from_utf8_lossy(&req.bytes).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("?").to_string();
                    *counted.lock().unwrap().entry(path.clone()).or_default() += 1;
                    if path.starts_with("/slow") {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    let reply =
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        Target { addr, hits }
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Sleeps until the next odd second since the epoch (plus 50 ms), a second away from the fire
/// times of every schedule here.
async fn until_odd_second() {
    let now = now_secs();
    let mut next = now.floor() + 1.0;
    if next as i64 % 2 == 0 {
        next += 1.0;
    }
    tokio::time::sleep(Duration::from_secs_f64(next - now + 0.05)).await;
}

/// The period a fire time of `period` seconds (multiples since the epoch) that `t` falls in.
fn bucket(t: f64, period: i64) -> i64 {
    (t.floor() as i64).div_euclid(period)
}

fn config(dir: &std::path::Path, storage: &str, target: &Target) -> std::path::PathBuf {
    let path = dir.join("watchpost.yaml");
    std::fs::write(
        &path,
        format!(
            "storage: \"{storage}\"\nmonitors:\n\
             \x20 - {{name: cron4, type: http, url: \"http://{0}/cron4\", schedule: \"*/4 * * * * *\"}}\n\
             \x20 - {{name: every6, type: http, url: \"http://{0}/every6\", schedule: \"@every 6s\"}}\n",
            target.addr
        ),
    )
    .unwrap();
    path
}

/// `once --due --json`: the monitors it ran and those it skipped, by name.
async fn once_due(config: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let out = watchpost(
        &["once", "--due", "--json", "-c", config.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    let (mut ran, mut skipped) = (Vec::new(), Vec::new());
    for m in doc.as_array().unwrap() {
        let name = m["name"].as_str().unwrap().to_string();
        match m["skipped"].as_str() {
            None => {
                assert_eq!(common::keys(m), contract::ONCE_DUE_RAN_KEYS, "{m}");
                assert!(m["skipped"].is_null(), "{m}");
                assert_eq!(m["state"], "up", "{m}");
                ran.push(name);
            }
            Some(why) => {
                assert_eq!(common::keys(m), contract::ONCE_NOT_DUE_KEYS, "{m}");
                assert_eq!(why, "not due", "{m}");
                assert_eq!(m["ok"], true, "{m}");
                assert!(m["next"].is_string(), "{m}");
                skipped.push(name);
            }
        }
    }
    (ran, skipped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_monitor_runs_once_per_fire_time_of_its_own_schedule() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &format!("sqlite://{}/state.db", dir.path().display()),
        &target,
    );
    let periods = [("cron4", 4), ("every6", 6)];
    let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
    let mut last: Option<f64> = None;
    // Every 2 s for 12 s, a gap of several periods of both, then twice in the same second.
    let mut plan = vec![0.0; 7];
    plan.push(13.0);
    plan.push(-1.0);
    for (round, gap) in plan.into_iter().enumerate() {
        if gap >= 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(gap)).await;
            until_odd_second().await;
        }
        let started = now_secs();
        let (ran, skipped) = once_due(&c).await;
        let ended = now_secs();
        let mut due = Vec::new();
        for (name, period) in periods {
            assert_eq!(
                bucket(started, period),
                bucket(ended, period),
                "round {round}: `once` took too long to tell what was due ({started}..{ended})"
            );
            let is_due = last.is_none_or(|l| bucket(l, period) != bucket(started, period));
            if is_due {
                due.push(name.to_string());
                *expected.entry(name).or_default() += 1;
            }
        }
        assert_eq!(ran, due, "round {round} at {started}: skipped {skipped:?}");
        assert_eq!(ran.len() + skipped.len(), 2, "round {round}");
        for (name, _) in periods {
            assert_eq!(
                target.hits(&format!("/{name}")),
                expected.get(name).copied().unwrap_or(0),
                "round {round}: requests to {name}"
            );
        }
        if gap == 13.0 {
            assert_eq!(ran, ["cron4", "every6"], "missed fire times run once");
        }
        if gap < 0.0 {
            assert!(ran.is_empty(), "the same second again: nothing is due");
        }
        last = Some(started);
    }
    // Never run before, then over ~14 s: cron4 and every6 each ran several times, not every time.
    assert!(
        expected["cron4"] >= 4 && expected["every6"] >= 3,
        "{expected:?}"
    );
    assert!(
        expected["cron4"] < 9 && expected["every6"] < 9,
        "{expected:?}"
    );

    // The table says which were skipped.
    let out = watchpost(&["once", "--due", "-c", c.to_str().unwrap()], &[]).await;
    let table = common::stdout(&out);
    assert!(
        table.contains("SKIP") && table.contains("not due (next "),
        "{table}"
    );
}

/// Two `once --due` processes at the same moment, round after round (fire times every 2 s):
/// every due monitor runs once per round in all.
async fn two_processes_at_once_run_each_due_monitor_once(storage: &str) {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchpost.yaml");
    std::fs::write(
        &path,
        format!(
            "storage: \"{storage}\"\nmonitors:\n\
             \x20 - {{name: a, type: http, url: \"http://{0}/a\", schedule: \"*/2 * * * * *\"}}\n\
             \x20 - {{name: b, type: http, url: \"http://{0}/b\", schedule: \"@every 2s\"}}\n",
            target.addr
        ),
    )
    .unwrap();
    for round in 1..=3 {
        until_odd_second().await;
        let (x, y) = tokio::join!(once_due(&path), once_due(&path));
        let mut ran: Vec<String> = x.0.into_iter().chain(y.0).collect();
        ran.sort();
        assert_eq!(ran, ["a", "b"], "round {round}: each ran once in all");
        assert_eq!(target.hits("/a"), round, "round {round}");
        assert_eq!(target.hits("/b"), round, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_at_once_on_sqlite_run_each_due_monitor_once() {
    let dir = tempfile::tempdir().unwrap();
    two_processes_at_once_run_each_due_monitor_once(&format!(
        "sqlite://{}/state.db",
        dir.path().display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_at_once_on_postgres_run_each_due_monitor_once() {
    let Some(db) = common::Database::new("wp_due") else {
        return;
    };
    two_processes_at_once_run_each_due_monitor_once(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_bounds_the_run_and_the_alert_of_a_cut_check_is_sent() {
    let target = Target::start().await;
    let hook = common::server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let c = common::write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n\
             \x20 - name: slow\n    type: http\n    url: \"http://{}/slow\"\n    timeout: 10s\n\
             \x20   alert: {{channels: [hook], failure_threshold: 1}}\n",
            hook.addr, target.addr
        ),
    );
    let started = std::time::Instant::now();
    let out = watchpost(
        &[
            "once",
            "--json",
            "--deadline",
            "3s",
            "-c",
            c.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(4500), "took {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "the check ran until cut: {took:?}"
    );
    // The target didn't answer in time: the monitor failed (exit 1), watchpost did its job.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(
        common::keys(&doc[0]),
        contract::ONCE_KEYS,
        "without --due as before"
    );
    assert_eq!(doc[0]["name"], "slow");
    assert_eq!(doc[0]["ok"], false, "{doc}");
    assert!(doc[0]["error"].is_null(), "{doc}");
    assert_eq!(doc[0]["state"], "down", "{doc}");
    assert_eq!(
        common::kinds(&hook),
        ["down"],
        "committed and sent before the deadline"
    );
    assert_eq!(target.hits("/slow"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deadlines_are_usage_errors() {
    for bad in ["0s", "soon", "-5s", "20"] {
        let arg = format!("--deadline={bad}");
        let err = common::usage_error(&["once", &arg]).await;
        assert!(err.contains("--deadline"), "{bad}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_wall_clock_went_back_a_monitor_runs_again_once() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock-offset");
    let c = common::write_config(
        dir.path(),
        &format!(
            "monitors:\n  - {{name: hourly, type: http, url: \"http://{}/hourly\", schedule: \"0 0 * * * * *\"}}\n",
            target.addr
        ),
    );
    let run = |offset_hours: i64| {
        std::fs::write(&clock, (offset_hours * 3600).to_string()).unwrap();
        let envs = [
            ("LD_PRELOAD", common::shim().display().to_string()),
            ("WATCHPOST_SHIM_CLOCK_FILE", clock.display().to_string()),
        ];
        let c = c.clone();
        async move {
            let out = watchpost(
                &["once", "--due", "--json", "-c", c.to_str().unwrap()],
                &envs,
            )
            .await;
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            json(&out)[0]["skipped"].is_null()
        }
    };
    assert!(run(2).await, "first run, two hours ahead");
    assert!(!run(2).await, "the same hour: not due");
    assert!(run(0).await, "the clock went back two hours: runs again");
    assert!(!run(0).await, "and once");
    assert_eq!(target.hits("/hourly"), 2);
}
