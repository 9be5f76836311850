//! Probe locations end to end: `watchpost probe` agents on loopback report to a `watchpost
//! run`; quorum over locations; an agent's buffer across a server restart; the dead-man
//! switch of a silent location. The target tells the agents apart by the
//! `X-Watchpost-Location` header every agent's HTTP check sends, and answers each location as
//! the test says (slow, failing).

mod common;

use common::{Daemon, alerts, http_get, server, stored_observations, wait_for, write_config};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A target answering per location: 503 for the locations in `failing`, 200 after
/// `slow_ms` for those in `slow`, 200 at once otherwise; counts requests per location.
#[derive(Clone, Default)]
struct Target {
    failing: Arc<Mutex<BTreeSet<String>>>,
    slow: Arc<Mutex<BTreeMap<String, u64>>>,
    hits: Arc<Mutex<BTreeMap<String, u64>>>,
}

async fn target() -> (Target, u16) {
    let t = Target::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shared = t.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let t = shared.clone();
            tokio::spawn(async move {
                let Some(req) = common::read_request(&mut s).await else {
                    return;
                };
                let location = req.header("x-watchpost-location").unwrap_or("local".into());
                *t.hits.lock().unwrap().entry(location.clone()).or_default() += 1;
                let delay = t.slow.lock().unwrap().get(&location).copied();
                if let Some(ms) = delay {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                let code = if t.failing.lock().unwrap().contains(&location) {
                    503
                } else {
                    200
                };
                let reply = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    (t, port)
}

fn token(location: &str) -> String {
    format!("{location}-token-0123456789abcdef")
}

/// A running `watchpost probe`; killed when dropped.
struct Agent {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Agent {
    fn start(dir: &std::path::Path, server_port: u16, location: &str) -> Agent {
        let log = dir.join(format!("agent-{location}.log"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args([
                "probe",
                "-v",
                "--server",
                &format!("http://127.0.0.1:{server_port}"),
                "--location",
                location,
                "--buffer-dir",
            ])
            .arg(dir.join(format!("buffer-{location}")))
            .env("WATCHPOST_TOKEN", token(location))
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        Agent { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, wait for the exit, and return how many observations it said it made.
    async fn stop(mut self) -> u64 {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        for _ in 0..300 {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = self.log();
        let line = log
            .lines()
            .rfind(|l| l.contains("stopped after"))
            .unwrap_or_else(|| panic!("no final line in the agent's log:\n{log}"));
        assert!(line.contains("; 0 wait in the buffer"), "{line}");
        line.split("stopped after ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn locations_block(names: &[&str], extra: &str) -> String {
    let mut out = String::from("locations:\n");
    for n in names {
        let var = format!("TOKEN_{}", n.to_uppercase().replace('-', "_"));
        out.push_str(&format!(
            "  {n}: {{region: region-{n}, isp: isp-{n}, token: \"${{{var}}}\"{extra}}}\n"
        ));
    }
    out
}

fn token_env(names: &[&str]) -> Vec<(&'static str, String)> {
    names
        .iter()
        .map(|n| {
            let var: &'static str =
                Box::leak(format!("TOKEN_{}", n.to_uppercase().replace('-', "_")).into_boxed_str());
            (var, token(n))
        })
        .collect()
}

fn status(port: u16) -> serde_json::Value {
    let (code, body) = http_get(port, "/api/v1/status").expect("the daemon answers");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn two_failing_locations_of_three_raise_one_alert_naming_them_and_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (t, port) = target().await;
    t.slow.lock().unwrap().insert("slow".into(), 1200);
    t.failing.lock().unwrap().insert("bad".into());
    let hook = server(200).await;
    let names = ["fast", "slow", "bad"];
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\n{}monitors:\n  - {{name: shop, type: http, url: \"http://127.0.0.1:{port}/\", every: 5s, timeout: 3s, locations: [fast, slow, bad], alert: {{channels: [hook], quorum: 2, failure_threshold: 1}}}}\n",
            hook.addr,
            locations_block(&names, "")
        ),
    );
    let d = Daemon::start(&config, &token_env(&names));
    wait_for("the daemon", Duration::from_secs(20), || {
        common::healthz(d.port).is_some()
    })
    .await;
    let agents: Vec<Agent> = names
        .iter()
        .map(|n| Agent::start(dir.path(), d.port, n))
        .collect();

    // Every location reports; one fails: the ticks pass (quorum 2), no alert.
    wait_for(
        "three judged ticks with every location",
        Duration::from_secs(40),
        || {
            let s = status(d.port);
            let rows = s["monitors"][0]["locations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            rows.len() == 3
                && rows.iter().all(|r| r["missing"] == false)
                && t.hits.lock().unwrap().values().all(|n| *n >= 3)
                && t.hits.lock().unwrap().len() == 3
        },
    )
    .await;
    let s = status(d.port);
    let m = &s["monitors"][0];
    assert_eq!(m["state"], "up", "{s:#}");
    let rows = m["locations"].as_array().unwrap();
    let by: BTreeMap<&str, &serde_json::Value> = rows
        .iter()
        .map(|r| (r["location"].as_str().unwrap(), r))
        .collect();
    assert_eq!(by["fast"]["region"], "region-fast");
    assert_eq!(by["fast"]["isp"], "isp-fast");
    assert_eq!(by["fast"]["ok"], true);
    assert_eq!(by["bad"]["ok"], false);
    assert_eq!(by["bad"]["metrics"]["status"], 503.0);
    assert!(
        by["slow"]["metrics"]["total_ms"].as_f64().unwrap() >= 1100.0,
        "{s:#}"
    );
    assert!(
        by["fast"]["metrics"]["total_ms"].as_f64().unwrap() < 1000.0,
        "{s:#}"
    );
    assert!(
        alerts(&hook).is_empty(),
        "one failing location alerted: {:?}",
        alerts(&hook)
    );

    // A second location fails: one DOWN naming both.
    t.failing.lock().unwrap().insert("slow".into());
    wait_for("the DOWN alert", Duration::from_secs(30), || {
        !alerts(&hook).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let got = alerts(&hook);
    assert_eq!(got.len(), 1, "{got:#?}");
    let down = &got[0];
    assert_eq!(down["kind"], "down", "{down:#}");
    let failing: BTreeSet<&str> = down["locations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ok"] == false)
        .map(|r| r["location"].as_str().unwrap())
        .collect();
    assert_eq!(failing, BTreeSet::from(["bad", "slow"]), "{down:#}");
    let failed_at: BTreeSet<&str> = down["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["location"].as_str().unwrap())
        .collect();
    assert_eq!(failed_at, BTreeSet::from(["bad", "slow"]), "{down:#}");
    let regions: BTreeSet<&str> = down["locations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["region"].as_str())
        .collect();
    assert_eq!(regions.len(), 3, "{down:#}");

    // Back to one failing location: resolved.
    t.failing.lock().unwrap().remove("slow");
    wait_for("the RESOLVED alert", Duration::from_secs(30), || {
        alerts(&hook).len() >= 2
    })
    .await;
    assert_eq!(alerts(&hook)[1]["kind"], "resolved");
    drop(agents);
}

#[tokio::test]
async fn observations_made_while_the_server_is_down_are_stored_once_after_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, port) = target().await;
    let names = ["east", "west"];
    let config = write_config(
        dir.path(),
        &format!(
            "{}monitors:\n  - {{name: shop, type: http, url: \"http://127.0.0.1:{port}/\", every: 1s, timeout: 1s, locations: [east, west]}}\n",
            locations_block(&names, "")
        ),
    );
    let env = token_env(&names);
    let d = Daemon::start(&config, &env);
    wait_for("the daemon", Duration::from_secs(20), || {
        common::healthz(d.port).is_some()
    })
    .await;
    let server_port = d.port;
    let agents: Vec<Agent> = names
        .iter()
        .map(|n| Agent::start(dir.path(), server_port, n))
        .collect();
    wait_for("observations from both", Duration::from_secs(20), || {
        stored_observations(dir.path()).len() == 2
    })
    .await;
    // The server goes away for a while; the agents keep checking into their buffers.
    d.signal("-TERM");
    let mut d = d;
    d.exit_code(Duration::from_secs(20)).await;
    let before: u64 = stored_observations(dir.path()).values().sum();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        agents
            .iter()
            .any(|a| a.log().contains("cannot reach the server")),
        "{}",
        agents[0].log()
    );
    // Back on the same port: the backlog arrives.
    let back = Daemon::start_on(&config, &env, server_port);
    wait_for("the daemon back", Duration::from_secs(20), || {
        common::healthz(back.port).is_some()
    })
    .await;
    wait_for("the backlog", Duration::from_secs(60), || {
        agents
            .iter()
            .all(|a| a.log().matches("cannot reach the server").count() > 0)
            && stored_observations(dir.path()).values().sum::<u64>() > before + 8
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut made = 0;
    for a in agents {
        made += a.stop().await;
    }
    let stored: u64 = stored_observations(dir.path()).values().sum();
    assert_eq!(stored, made, "every observation made is stored, once");
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let distinct: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM (SELECT DISTINCT monitor, location, slot FROM observations)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(distinct as u64, stored);
    drop(back);
}

#[tokio::test]
async fn a_silent_location_raises_one_alert_of_its_own_and_no_false_down() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, port) = target().await;
    let hook = server(200).await;
    let names = ["ghost"];
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\n{}monitors:\n  - {{name: shop, type: http, url: \"http://127.0.0.1:{port}/\", every: 1s, timeout: 1s, locations: [local, ghost], alert: {{channels: [hook], failure_threshold: 1}}}}\n",
            hook.addr,
            locations_block(&names, ", silent_after: 10s")
        ),
    );
    let d = Daemon::start(&config, &token_env(&names));
    wait_for("the probe-missing alert", Duration::from_secs(40), || {
        !alerts(&hook).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let got = alerts(&hook);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["monitor"], "location:ghost");
    assert_eq!(got[0]["kind"], "down");
    let why = got[0]["failures"][0]["text"].as_str().unwrap();
    assert!(
        why.contains("no report from location ghost (region-ghost isp-ghost)"),
        "{why}"
    );
    // No false DOWN: with ghost missing, a passing local check can't tell whether quorum 1
    // is reached (ghost might be failing), so the ticks stay undecided; ghost's row is
    // missing.
    let s = status(d.port);
    assert_eq!(s["monitors"][0]["state"], "pending", "{s:#}");
    assert!(d.log().contains("UNDECIDED"), "{}", d.log());
    let ghost = &s["monitors"][0]["locations"][1];
    assert_eq!(
        (ghost["location"].as_str(), ghost["missing"].as_bool()),
        (Some("ghost"), Some(true))
    );

    // The agent starts: the location's alert resolves, once.
    let agent = Agent::start(dir.path(), d.port, "ghost");
    wait_for("the resolved alert", Duration::from_secs(30), || {
        alerts(&hook).len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let got = alerts(&hook);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1]["monitor"], "location:ghost");
    assert_eq!(got[1]["kind"], "resolved");
    drop(agent);
}

#[tokio::test]
async fn probe_refuses_a_server_url_it_cannot_use_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = dir.path().join("buffer").display().to_string();
    let out = common::watchpost(
        &[
            "probe",
            "--server",
            "ftp://x",
            "--location",
            "a",
            "--buffer-dir",
            &buffer,
        ],
        &[("WATCHPOST_TOKEN", "0123456789abcdef0".to_string())],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("--server"),
        "{}",
        common::stderr(&out)
    );
    assert!(!common::stderr(&out).contains("0123456789abcdef0"));
}

#[tokio::test]
async fn once_shows_every_location_and_a_location_without_a_report_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, port) = target().await;
    let names = ["ghost"];
    let config = write_config(
        dir.path(),
        &format!(
            "{}monitors:\n  - {{name: shop, type: http, url: \"http://127.0.0.1:{port}/\", locations: [local, ghost]}}\n",
            locations_block(&names, "")
        ),
    );
    let c = config.display().to_string();
    let env = token_env(&names);
    let out = common::watchpost(&["once", "-c", &c], &env).await;
    let text = common::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", common::stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("shop") && l.contains("local") && l.contains("PASS")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ghost (region-ghost isp-ghost)") && l.contains("MISSING")),
        "{text}"
    );
    let out = common::watchpost(&["once", "--json", "-c", &c], &env).await;
    let report = common::json(&out);
    assert_eq!(
        report[0]["missing"],
        serde_json::json!(["ghost"]),
        "{report:#}"
    );
    assert_eq!(report[0]["ok"], true, "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_covers_a_location_one_round_per_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let (t, port) = target().await;
    let names = ["cloud-fn"];
    let config = write_config(
        dir.path(),
        &format!(
            "{}monitors:\n  - {{name: shop, type: http, url: \"http://127.0.0.1:{port}/\", every: 1h, locations: [local, cloud-fn]}}\n  - {{name: other, type: tcp, address: \"127.0.0.1:{port}\", every: 1h}}\n",
            locations_block(&names, "")
        ),
    );
    let d = Daemon::start(&config, &token_env(&names));
    wait_for("the daemon", Duration::from_secs(20), || {
        common::healthz(d.port).is_some()
    })
    .await;
    let fn_port = common::free_port();
    let log = dir.path().join("function.log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args([
            "function",
            "--runtime",
            "http",
            "--location",
            "cloud-fn",
            "--server",
        ])
        .arg(format!("http://127.0.0.1:{}", d.port))
        .env("WATCHPOST_TOKEN", token("cloud-fn"))
        .env("PORT", fn_port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _agent = Agent { child, log };
    wait_for("the function to listen", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", fn_port)).is_ok()
    })
    .await;
    let invoke = || {
        let event =
            serde_json::json!({"triggerTime": chrono::Utc::now().to_rfc3339(), "triggerName": "t"});
        common::http_post(fn_port, "/invoke", &[], event.to_string().as_bytes()).unwrap()
    };
    let (code, body) = invoke();
    assert_eq!(code, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["location"], "cloud-fn", "{answer:#}");
    assert_eq!(answer["observed"], 1, "only its own monitor: {answer:#}");
    assert_eq!(
        (answer["stored"].as_u64(), answer["duplicates"].as_u64()),
        (Some(1), Some(0))
    );
    let hits = t.hits.lock().unwrap().clone();
    assert_eq!(hits.get("cloud-fn"), Some(&1), "{hits:?}");
    // The same slot again (a retried event): checked again, stored once.
    let (code, body) = invoke();
    assert_eq!(code, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (answer["stored"].as_u64(), answer["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(
        stored_observations(dir.path()),
        [("cloud-fn".to_string(), 1)].into()
    );

    // The server gone: the invocation fails (FC's failed invocation, retried by the platform).
    drop(d);
    let (code, body) = invoke();
    assert_eq!(code, 404, "{body}");
    assert!(
        body.contains("\"ok\":false") && body.contains("Connection refused"),
        "{body}"
    );
    assert!(!body.contains(&token("cloud-fn")), "{body}");
}

#[tokio::test]
async fn an_agent_follows_the_servers_config_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (first, first_port) = target().await;
    let (second, second_port) = target().await;
    let names = ["edge"];
    let monitor = |name: &str, port: u16| {
        format!(
            "  - {{name: {name}, type: http, url: \"http://127.0.0.1:{port}/\", every: 1s, locations: [edge]}}\n"
        )
    };
    let config = write_config(
        dir.path(),
        &format!(
            "{}monitors:\n{}",
            locations_block(&names, ""),
            monitor("a", first_port)
        ),
    );
    let d = Daemon::start(&config, &token_env(&names));
    wait_for("the daemon", Duration::from_secs(20), || {
        common::healthz(d.port).is_some()
    })
    .await;
    let agent = Agent::start(dir.path(), d.port, "edge");
    wait_for("the agent checking a", Duration::from_secs(20), || {
        first
            .hits
            .lock()
            .unwrap()
            .get("edge")
            .is_some_and(|n| *n >= 2)
    })
    .await;
    assert!(second.hits.lock().unwrap().is_empty());
    // The server's config gains a monitor for the location; SIGHUP.
    write_config(
        dir.path(),
        &format!(
            "{}monitors:\n{}{}",
            locations_block(&names, ""),
            monitor("a", first_port),
            monitor("b", second_port)
        ),
    );
    d.signal("-HUP");
    // The next push's answer names a new generation: the agent pulls it at once (well
    // before its 30 s refresh).
    wait_for("the agent checking b", Duration::from_secs(15), || {
        second
            .hits
            .lock()
            .unwrap()
            .get("edge")
            .is_some_and(|n| *n >= 2)
    })
    .await;
    assert!(
        agent.log().matches("running").count() >= 2,
        "{}",
        agent.log()
    );
    drop(agent);
}
