//! `watchpost function` end to end, through the real binary: fake Tencent SCF and AWS Lambda
//! runtime APIs on 127.0.0.1 serve timer events and record what watchpost posts back; the
//! HTTP runtime is called as Alibaba FC and Cloud Run would. Alert state lives in a SQLite
//! file shared by separate processes, one per cold start.

mod common;

use common::{Server, kinds, read_request, server};
use serde_json::Value;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A config in a fresh directory: the SQLite store there, a webhook channel `hook`, and the
/// monitors `shop` (on `target`, alerting on the first failure) and `other` (on `hook`).
fn setup(name: &str, target: &Server, hook: &Server) -> (Dir, PathBuf) {
    let dir = std::env::temp_dir().join(format!("wp-function-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("watchpost.yaml");
    std::fs::write(
        &config,
        format!(
            "storage: sqlite://{dir}/state.db\n\
             channels:\n  hook: {{type: webhook, url: \"http://{hook}/alerts\", timeout: 2s}}\n\
             monitors:\n  \
             - {{name: shop, type: http, url: \"http://{target}/\", conditions: [\"status == 200\"], alert: {{channels: [hook], failure_threshold: 1}}}}\n  \
             - {{name: other, type: tcp, address: \"{hook}\", alert: {{channels: [hook]}}}}\n",
            dir = dir.display(),
            hook = hook.addr,
            target = target.addr,
        ),
    )
    .unwrap();
    (Dir(dir), config)
}

/// One request a fake runtime API received.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    body: Vec<u8>,
}

impl Call {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {}: not JSON ({e}): {}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    Scf,
    Lambda,
}

/// A fake runtime API: serves `events` in order on `next`, then drops the connection of the
/// next `next` (the instance is being shut down), which ends watchpost's loop.
struct FakeApi {
    addr: std::net::SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl FakeApi {
    async fn start(flavor: Flavor, events: Vec<String>, deadline_ms: u64) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let events = Arc::new(Mutex::new(VecDeque::from(events)));
        let recorded = calls.clone();
        tokio::spawn(async move {
            let mut served = 0u32;
            while let Ok((mut s, _)) = listener.accept().await {
                let Some(req) = read_request(&mut s).await else {
                    continue;
                };
                let head = String::from_utf8_lossy(&req.bytes).to_string();
                let mut words = head.split_whitespace();
                let method = words.next().unwrap_or_default().to_string();
                let path = words.next().unwrap_or_default().to_string();
                recorded.lock().unwrap().push(Call {
                    method: method.clone(),
                    path: path.clone(),
                    body: req.body().to_vec(),
                });
                let is_next = path.ends_with("/runtime/invocation/next");
                let reply = if is_next {
                    let Some(event) = events.lock().unwrap().pop_front() else {
                        // Out of events: hang up without answering.
                        drop(s);
                        continue;
                    };
                    served += 1;
                    let extra = match flavor {
                        Flavor::Scf => String::new(),
                        Flavor::Lambda => {
                            let deadline = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .unwrap()
                                .as_millis() as u64
                                + deadline_ms;
                            format!(
                                "Lambda-Runtime-Aws-Request-Id: req-{served}\r\n\
                                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:watchpost\r\n\
                                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n"
                            )
                        }
                    };
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{event}",
                        event.len()
                    )
                } else {
                    let status = if flavor == Flavor::Lambda {
                        "202 Accepted"
                    } else {
                        "200 OK"
                    };
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                    )
                };
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        FakeApi { addr, calls }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

/// Run `watchpost -v function ARGS` with `envs` until it exits (at most 60 s).
async fn function(args: &[&str], envs: &[(&str, String)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_watchpost"));
    cmd.arg("function").args(args);
    for var in [
        "AWS_LAMBDA_RUNTIME_API",
        "SCF_RUNTIME_API",
        "SCF_RUNTIME_API_PORT",
        "PORT",
        "FC_SERVER_PORT",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(envs.iter().map(|(k, v)| (k, v)));
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Its own child, ended if it outlives a minute (a loop that never stops).
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn scf_env(api: &FakeApi) -> Vec<(&'static str, String)> {
    vec![
        ("SCF_RUNTIME_API", "127.0.0.1".into()),
        ("SCF_RUNTIME_API_PORT", api.addr.port().to_string()),
    ]
}

/// A new event time on each call: a minute after the previous one, starting half an hour ago.
/// The function judges which monitors are due at the event's time (near enough to now), so
/// each event is a new fire time of the monitors' default `every: 1m`, as a timer firing every
/// minute would be.
fn event_time() -> String {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NEXT: AtomicI64 = AtomicI64::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let start = chrono::Utc::now().timestamp() / 60 * 60 - 30 * 60;
    chrono::DateTime::from_timestamp(start + n * 60, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn timer(message: &str) -> String {
    timer_at(message, &event_time())
}

fn timer_at(message: &str, time: &str) -> String {
    serde_json::json!({"Type": "Timer", "TriggerName": "every-minute", "Time": time, "Message": message}).to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scf_ready_first_one_response_per_event_and_state_across_processes() {
    let target = server(503).await;
    let hook = server(200).await;
    let (_dir, config) = setup("scf", &target, &hook);
    let c = config.display().to_string();

    // First instance: two timer events while the shop is down.
    let api = FakeApi::start(
        Flavor::Scf,
        vec![timer("monitors=shop"), timer("monitors=shop")],
        0,
    )
    .await;
    let out = function(
        &["-c", &c, "--runtime", "scf", "--deadline", "10s"],
        &scf_env(&api),
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let calls = api.calls();
    let route: Vec<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert_eq!(
        route,
        [
            "POST /runtime/init/ready",
            "GET /runtime/invocation/next",
            "POST /runtime/invocation/response",
            "GET /runtime/invocation/next",
            "POST /runtime/invocation/response",
            "GET /runtime/invocation/next",
        ],
        "{}",
        stderr(&out)
    );
    let first = calls[2].json();
    assert_eq!(first["ok"], false);
    assert_eq!(first["watchpost_failed"], false);
    assert_eq!(first["trigger"]["kind"], "scf-timer");
    assert_eq!(first["trigger"]["name"], "every-minute");
    assert_eq!(first["selected"], serde_json::json!(["shop"]));
    assert_eq!(first["monitors_run"], 1);
    assert_eq!(first["failed"], 1);
    assert_eq!(first["monitors"][0]["name"], "shop");
    assert_eq!(first["monitors"][0]["state"], "down");
    assert_eq!(first["notifications"]["created"], 1);
    assert_eq!(first["notifications"]["sent"], 1);
    assert_eq!(first["notifications"]["queued"], 0);
    let second = calls[4].json();
    assert_eq!(second["notifications"]["created"], 0);
    assert_eq!(kinds(&hook), ["down"]);
    // A local SQLite file: the cold start says, once, that state may not persist.
    let err = stderr(&out);
    assert_eq!(err.matches("STATE WILL NOT PERSIST").count(), 1, "{err}");

    // A new instance (a new process): the shop is back, one RESOLVED, from the stored state.
    target
        .status
        .store(200, std::sync::atomic::Ordering::SeqCst);
    let api = FakeApi::start(Flavor::Scf, vec![timer("")], 0).await;
    let out = function(
        &["-c", &c, "--runtime", "scf", "--deadline", "10s"],
        &scf_env(&api),
    )
    .await;
    let calls = api.calls();
    assert_eq!(calls[0].path, "/runtime/init/ready", "{}", stderr(&out));
    assert_eq!(calls[2].path, "/runtime/invocation/response");
    let answer = calls[2].json();
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["selected"], Value::Null);
    assert_eq!(answer["monitors_run"], 2);
    assert_eq!(answer["passed"], 2);
    assert_eq!(kinds(&hook), ["down", "resolved"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scf_reports_errors_instead_of_crashing() {
    let target = server(200).await;
    let hook = server(200).await;
    let (_dir, config) = setup("scf-errors", &target, &hook);
    let c = config.display().to_string();
    // An unknown monitor, a message that says something else, then a run with no time left
    // for the checks: three error reports, and the loop goes on after each.
    let api = FakeApi::start(
        Flavor::Scf,
        vec![
            timer("monitors=nope"),
            timer("check everything"),
            timer("monitors=shop"),
        ],
        0,
    )
    .await;
    let out = function(
        &["-c", &c, "--runtime", "scf", "--deadline", "1ms"],
        &scf_env(&api),
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let calls = api.calls();
    let posted: Vec<&Call> = calls
        .iter()
        .filter(|c| c.path.starts_with("/runtime/invocation/") && c.method == "POST")
        .collect();
    assert_eq!(posted.len(), 3, "{calls:?}");
    assert!(posted.iter().all(|c| c.path == "/runtime/invocation/error"));
    let unknown = posted[0].json();
    assert!(
        unknown["error"].as_str().unwrap().contains("nope"),
        "{unknown}"
    );
    assert!(
        posted[1].json()["error"]
            .as_str()
            .unwrap()
            .contains("not understood")
    );
    let not_run = posted[2].json();
    assert_eq!(not_run["watchpost_failed"], true, "{not_run}");
    assert_eq!(not_run["not_run"], 1);
    assert!(
        not_run["monitors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("deadline")
    );
    assert!(kinds(&hook).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scf_without_its_environment_is_a_usage_error() {
    let out = function(&["--runtime", "scf"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("SCF_RUNTIME_API"), "{}", stderr(&out));
}

fn lambda_env(api: &FakeApi) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", api.addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "watchpost".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "test".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "test".into()),
    ]
}

fn scheduled(detail: &str) -> String {
    format!(
        r#"{{"version":"0","id":"53dc4d37","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"{time}","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/watchpost-every-minute"],"detail":{detail}}}"#,
        time = event_time()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_answers_each_event_and_keeps_state_across_processes() {
    let target = server(503).await;
    let hook = server(200).await;
    let (_dir, config) = setup("lambda", &target, &hook);
    let c = config.display().to_string();
    let api = FakeApi::start(
        Flavor::Lambda,
        vec![
            scheduled(r#"{"monitors":["shop"]}"#),
            scheduled(r#"{"monitors":["missing"]}"#),
        ],
        30_000,
    )
    .await;
    // `auto` finds AWS_LAMBDA_RUNTIME_API.
    let out = function(&["-c", &c], &lambda_env(&api)).await;
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    let calls = api.calls();
    let posted: Vec<&Call> = calls.iter().filter(|c| c.method == "POST").collect();
    assert_eq!(posted.len(), 2, "{calls:?}\n{}", stderr(&out));
    assert_eq!(
        posted[0].path,
        "/2018-06-01/runtime/invocation/req-1/response"
    );
    let answer = posted[0].json();
    assert_eq!(answer["trigger"]["kind"], "eventbridge");
    assert_eq!(answer["trigger"]["name"], "watchpost-every-minute");
    assert_eq!(answer["failed"], 1);
    assert_eq!(answer["notifications"]["sent"], 1);
    // Lambda's deadline (30 s away) bounds the invocation, less the margin.
    let budget = answer["budget_ms"].as_u64().unwrap();
    assert!((25_000..=28_000).contains(&budget), "{budget}");
    assert_eq!(posted[1].path, "/2018-06-01/runtime/invocation/req-2/error");
    assert!(
        String::from_utf8_lossy(&posted[1].body).contains("missing"),
        "{:?}",
        posted[1]
    );
    assert_eq!(kinds(&hook), ["down"]);

    target
        .status
        .store(200, std::sync::atomic::Ordering::SeqCst);
    let api = FakeApi::start(Flavor::Lambda, vec![scheduled("{}")], 30_000).await;
    let out = function(&["-c", &c, "--runtime", "lambda"], &lambda_env(&api)).await;
    let posted: Vec<Call> = api
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST")
        .collect();
    assert_eq!(posted.len(), 1, "{}", stderr(&out));
    assert_eq!(posted[0].json()["ok"], true);
    assert_eq!(kinds(&hook), ["down", "resolved"]);
}

/// A free port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`: status, headers (lower-case names) and body.
async fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, String, String) {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_runtime_serves_fc_invoke_and_post_root() {
    let target = server(503).await;
    let hook = server(200).await;
    let (_dir, config) = setup("http", &target, &hook);
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["function", "-c", &config.display().to_string()])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("SCF_RUNTIME_API")
        .env_remove("FC_SERVER_PORT")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _, body) = request(port, "GET", "/healthz", "").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Alibaba FC: a timer trigger's event on /invoke.
    let fc = serde_json::json!({"triggerTime": event_time(), "triggerName": "every-minute", "payload": "monitors=shop"}).to_string();
    let (status, head, body) = request(port, "POST", "/invoke", &fc).await;
    assert_eq!(status, 200, "{head}{body}");
    assert!(head.contains("x-fc-status: 200"), "{head}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["trigger"]["kind"], "fc-timer");
    assert_eq!(answer["failed"], 1);
    assert_eq!(kinds(&hook), ["down"]);

    // A failed invocation: 404 and x-fc-status: 404.
    let bad =
        r#"{"triggerTime":"2026-01-01T00:00:00Z","triggerName":"t","payload":"monitors=nope"}"#;
    let (status, head, body) = request(port, "POST", "/invoke", bad).await;
    assert_eq!(status, 404, "{head}{body}");
    assert!(head.contains("x-fc-status: 404"), "{head}");
    assert!(body.contains("nope"), "{body}");

    // Cloud Run / Knative / SCF web functions: POST / with an SCF timer body.
    target
        .status
        .store(200, std::sync::atomic::Ordering::SeqCst);
    let (status, _, body) = request(port, "POST", "/", &timer("monitors=shop")).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(kinds(&hook), ["down", "resolved"]);
    let (status, _, _) = request(port, "POST", "/", "nonsense").await;
    assert_eq!(status, 400);
}

/// An invocation runs only the monitors whose schedule fired since their last run, judged at
/// the event's time: the same timer event delivered twice (a platform retry) runs nothing the
/// second time, and says what it skipped; the next minute's event runs them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_due_monitors_run_and_a_repeated_event_runs_nothing() {
    let target = server(200).await;
    let hook = server(200).await;
    let (_dir, config) = setup("scf-due", &target, &hook);
    let c = config.display().to_string();
    let minute = event_time();
    let api = FakeApi::start(
        Flavor::Scf,
        vec![
            timer_at("", &minute),
            timer_at("", &minute),
            timer_at("", &event_time()),
        ],
        0,
    )
    .await;
    let out = function(
        &["-c", &c, "--runtime", "scf", "--deadline", "10s"],
        &scf_env(&api),
    )
    .await;
    let answers: Vec<Value> = api
        .calls()
        .iter()
        .filter(|c| c.path == "/runtime/invocation/response")
        .map(|c| c.json())
        .collect();
    assert_eq!(answers.len(), 3, "{}", stderr(&out));
    assert_eq!(answers[0]["monitors_run"], 2, "{}", answers[0]);
    assert_eq!(answers[0]["skipped"], serde_json::json!([]));
    assert_eq!(answers[1]["monitors_run"], 0, "{}", answers[1]);
    let skipped: Vec<&str> = answers[1]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["shop", "other"], "{}", answers[1]);
    assert!(answers[1]["skipped"][0]["next"].is_string());
    assert_eq!(answers[2]["monitors_run"], 2, "{}", answers[2]);
    // The target saw the first and the third invocation only.
    assert_eq!(target.hits.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// A target that accepts connections and never answers: each connection is held open, unread,
/// for a minute. Counts the connections it accepted.
async fn silent_target() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(s);
            });
        }
    });
    (addr, accepted)
}

/// An invocation with 2 s left and a check whose timeout is 10 s: the check is cut at the
/// checks' deadline, the monitor is down, the DOWN alert is delivered, and the answer comes
/// back before the invocation's 2 s are up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_with_2s_left_and_a_10s_check_returns_in_time_with_the_alert_sent() {
    let (target, accepted) = silent_target().await;
    let hook = server(200).await;
    let dir = std::env::temp_dir().join(format!("wp-function-deadline-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    let _dir = Dir(dir.clone());
    let config = dir.join("watchpost.yaml");
    std::fs::write(
        &config,
        format!(
            "storage: sqlite://{dir}/state.db\n\
             channels:\n  hook: {{type: webhook, url: \"http://{hook}/alerts\", timeout: 2s}}\n\
             monitors:\n  \
             - {{name: stuck, type: http, url: \"http://{target}/\", timeout: 10s, conditions: [\"status == 200\"], alert: {{channels: [hook], failure_threshold: 1}}}}\n",
            dir = dir.display(),
            hook = hook.addr,
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args([
            "function",
            "-c",
            &config.display().to_string(),
            "--runtime",
            "http",
            "--deadline",
            "2s",
        ])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("SCF_RUNTIME_API")
        .env_remove("FC_SERVER_PORT")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let sent = Instant::now();
    let (status, _, body) = request(port, "POST", "/", &timer("")).await;
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    // The checks end a quarter of the 1.8 s allowed (2 s less the 200 ms margin) before it:
    // the check ran until it was cut, not failed at once.
    assert!(
        took >= Duration::from_millis(1200),
        "answered after {took:?}"
    );
    // A monitor that is down is a successful invocation: the alert is its output.
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["watchpost_failed"], false, "{answer}");
    assert_eq!(answer["monitors_run"], 1, "{answer}");
    assert_eq!(answer["failed"], 1, "{answer}");
    assert_eq!(answer["not_run"], 0, "{answer}");
    assert_eq!(answer["monitors"][0]["name"], "stuck");
    assert_eq!(answer["monitors"][0]["state"], "down", "{answer}");
    assert!(answer["monitors"][0]["error"].is_null(), "{answer}");
    assert_eq!(answer["notifications"]["sent"], 1, "{answer}");
    assert_eq!(answer["notifications"]["queued"], 0, "{answer}");
    assert_eq!(answer["budget_ms"], 1800, "{answer}");
    assert_eq!(
        kinds(&hook),
        ["down"],
        "the DOWN alert reached the receiver"
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}
