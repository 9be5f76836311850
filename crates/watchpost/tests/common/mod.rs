//! Helpers shared by the end-to-end tests: a target whose status can be flipped, a webhook
//! receiver that records what it got, and running the binary and reading what it printed.
#![allow(dead_code)]

use serde_json::Value;
use std::sync::atomic::AtomicU16;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers every request with the status currently in `status`.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub status: Arc<AtomicU16>,
    /// Bodies of the requests received, with the status answered.
    pub requests: Arc<Mutex<Vec<(Value, String, u16)>>>,
    /// Every request received, with a body or not.
    pub hits: Arc<std::sync::atomic::AtomicUsize>,
}

pub async fn server(initial: u16) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let status = Arc::new(AtomicU16::new(initial));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (st, rq, ht) = (status.clone(), requests.clone(), hits.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (st, rq, ht) = (st.clone(), rq.clone(), ht.clone());
            tokio::spawn(async move {
                let Some(req) = read_request(&mut s).await else {
                    return;
                };
                ht.fetch_add(1, Ordering::SeqCst);
                let code = st.load(Ordering::SeqCst);
                if !req.body().is_empty() {
                    let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
                    let key = req.header("idempotency-key").unwrap_or_default();
                    rq.lock().unwrap().push((body, key, code));
                }
                let reply = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    Server {
        addr,
        status,
        requests,
        hits,
    }
}

/// One HTTP/1.1 request as read off a socket: its raw bytes (head and body).
pub struct RawRequest {
    pub bytes: Vec<u8>,
    head_end: usize,
}

impl RawRequest {
    /// A header's value (the name in lower case), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = String::from_utf8_lossy(&self.bytes[..self.head_end]).to_lowercase();
        head.lines().find_map(|l| {
            l.strip_prefix(&format!("{name}: "))
                .map(|v| v.trim().to_string())
        })
    }

    pub fn body(&self) -> &[u8] {
        &self.bytes[self.head_end..]
    }
}

/// Read one request: the head, then as much body as its Content-Length says. None when the
/// client went away before a whole head arrived.
pub async fn read_request(s: &mut tokio::net::TcpStream) -> Option<RawRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let mut req = RawRequest {
        bytes: buf,
        head_end,
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while req.bytes.len() < head_end + len {
        let Ok(n) = s.read(&mut chunk).await else {
            break;
        };
        if n == 0 {
            break;
        }
        req.bytes.extend_from_slice(&chunk[..n]);
    }
    Some(req)
}

/// Write `watchpost.yaml` in `dir`: the store in `dir`, then `body`.
pub fn write_config(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let config = dir.join("watchpost.yaml");
    std::fs::write(
        &config,
        format!("storage: sqlite://{}/state.db\n{body}", dir.display()),
    )
    .unwrap();
    config
}

/// A config body: a webhook channel `hook` to `hook`'s `/alerts`, and one monitor `shop` on
/// `target` alerting it; `settings` are the monitor's further settings (`every: 1s, ...`), and
/// `failure_threshold` its alert threshold.
pub fn hook_and_shop(
    hook: std::net::SocketAddr,
    target: std::net::SocketAddr,
    settings: &str,
    failure_threshold: u32,
) -> String {
    let settings = if settings.is_empty() {
        String::new()
    } else {
        format!("{settings}, ")
    };
    format!(
        "channels:\n  hook: {{type: webhook, url: \"http://{hook}/alerts\"}}\nmonitors:\n  - {{name: shop, type: http, url: \"http://{target}/\", {settings}alert: {{channels: [hook], failure_threshold: {failure_threshold}}}}}\n"
    )
}

/// `watchpost once --json -c CONFIG`.
pub async fn once_json(config: &std::path::Path) -> std::process::Output {
    let c = config.display().to_string();
    watchpost(&["once", "--json", "-c", &c], &[]).await
}

/// Every alert the webhook received, in order.
pub fn alerts(hook: &Server) -> Vec<Value> {
    hook.requests
        .lock()
        .unwrap()
        .iter()
        .map(|(body, _, _)| body.clone())
        .collect()
}

/// `watchpost once --json -c CONFIG`: its JSON report and exit code.
pub async fn once_report(config: &std::path::Path) -> (Value, Option<i32>) {
    let out = once_json(config).await;
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "once --json printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code())
}

/// The kinds of the alerts the receiver accepted (answered 200), in order.
pub fn kinds(hook: &Server) -> Vec<String> {
    hook.requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, code)| *code == 200)
        .map(|(b, _, _)| b["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The LD_PRELOAD test shim (tests/support/shim.c: wall-clock steps and a full disk), built
/// once per test binary with the system C compiler (`$CC`, else `cc`).
pub fn shim() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/shim.c");
            let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("watchpost-shim-{}.so", std::process::id()));
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
            let status = std::process::Command::new(&cc)
                .args(["-shared", "-fPIC", "-O2", "-o"])
                .arg(&out)
                .arg(&src)
                .arg("-ldl")
                .status()
                .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} (install gcc): {e}"));
            assert!(status.success(), "building the test shim failed");
            out
        })
        .clone()
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Poll `cond` every 50 ms until it holds; fail the test after `limit`.
pub async fn wait_for(what: &str, limit: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `GET /healthz` on 127.0.0.1:port: (status code, body), or None when nothing answers.
pub fn healthz(port: u16) -> Option<(u16, String)> {
    http_get(port, "/healthz")
}

/// `GET PATH` on 127.0.0.1:port: (status code, body), or None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.get(9..12)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// A running `watchpost run`, its stderr captured to a file; killed when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    pub port: u16,
    pub stderr: std::path::PathBuf,
}

impl Daemon {
    /// Start `watchpost run -c CONFIG --listen 127.0.0.1:PORT` with extra environment.
    pub fn start(config: &std::path::Path, envs: &[(&str, String)]) -> Daemon {
        Self::start_with(config, envs, |_| {})
    }

    /// Like [`Daemon::start`], letting the caller adjust the command (e.g. run it under a
    /// shell with `ulimit`).
    pub fn start_with(
        config: &std::path::Path,
        envs: &[(&str, String)],
        adjust: impl FnOnce(&mut std::process::Command),
    ) -> Daemon {
        Self::start_full(config, envs, free_port(), adjust)
    }

    /// Like [`Daemon::start`], listening on `port` (a restart on the same address).
    pub fn start_on(config: &std::path::Path, envs: &[(&str, String)], port: u16) -> Daemon {
        Self::start_full(config, envs, port, |_| {})
    }

    fn start_full(
        config: &std::path::Path,
        envs: &[(&str, String)],
        port: u16,
        adjust: impl FnOnce(&mut std::process::Command),
    ) -> Daemon {
        let stderr = config.with_extension(format!("stderr-{port}.log"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"));
        cmd.args(["run", "-v", "--listen", &format!("127.0.0.1:{port}"), "-c"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        adjust(&mut cmd);
        let child = cmd.spawn().unwrap();
        Daemon {
            child,
            port,
            stderr,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Wait (at most `limit`) for the process to exit; its exit code.
    pub async fn exit_code(&mut self, limit: std::time::Duration) -> Option<i32> {
        let start = std::time::Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(
                start.elapsed() < limit,
                "did not exit within {limit:?}: {}",
                self.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server that answers every request with `status` and a body quoting the whole request it
/// got (request line, headers, body) — the way some providers echo a bad request back.
pub async fn echo_server(status: u16) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(req) = read_request(&mut s).await else {
                    return;
                };
                let body = format!("you sent: {}", String::from_utf8_lossy(&req.bytes));
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

/// Every byte of the SQLite store files (`state.db*`, WAL included) in `dir`, as text.
pub fn store_bytes(dir: &std::path::Path) -> String {
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("state.db")
        {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    String::from_utf8_lossy(&stored).into_owned()
}

/// Run `watchpost ARGS...` to completion off the async runtime, with extra environment.
pub async fn watchpost(args: &[&str], envs: &[(&str, String)]) -> std::process::Output {
    watchpost_in(None, args, envs).await
}

/// [`watchpost`] with `cwd` as the working directory (`None`: this process's).
pub async fn watchpost_in(
    cwd: Option<&std::path::Path>,
    args: &[&str],
    envs: &[(&str, String)],
) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let cwd = cwd.map(std::path::Path::to_path_buf);
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"));
        cmd.args(&args).envs(envs);
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

/// Run `watchpost ARGS...` to completion off the async runtime.
pub async fn cli(args: &[&str]) -> std::process::Output {
    watchpost(args, &[]).await
}

/// What the command printed on stdout, as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What the command printed on stderr, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stdout as JSON; fails the test, showing stdout, when it is not.
pub fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// A JSON object's keys, in order.
#[allow(unused_imports)]
pub use watchpost_testkit::contract::keys;

/// `watchpost ARGS...` refused as bad usage: exit code 2, one line on stderr starting
/// `watchpost: ` (no panic), nothing on stdout. Returns what stderr said.
pub async fn usage_error(args: &[&str]) -> String {
    let out = cli(args).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("watchpost: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout(&out).is_empty());
    err
}

/// `watchpost check TARGET` on a closed port: exit code 1 and `FAIL  connect refused` in the
/// human form; with `--json`, exit code 1, not ok, an error in phase connect of kind refused.
/// Returns the JSON report.
pub async fn check_refused(target: &str) -> Value {
    let out = cli(&["check", "--json", target]).await;
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["phase"], "connect");
    assert_eq!(v["error"]["kind"], "refused");
    let human = cli(&["check", target]).await;
    assert_eq!(human.status.code(), Some(1));
    assert!(
        stdout(&human).contains("FAIL  connect refused"),
        "{}",
        stdout(&human)
    );
    v
}

/// Run `watchpost ARGS...`, assert it exits with `code` (showing what it printed when not), and
/// return its stdout as JSON.
pub async fn cli_json(args: &[&str], code: i32) -> Value {
    let out = cli(args).await;
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    json(&out)
}

/// `POST PATH` on 127.0.0.1:port with `headers` (`Name: value` lines) and `body`: (status
/// code, body), or None when nothing answers.
pub fn http_post(port: u16, path: &str, headers: &[&str], body: &[u8]) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    // A server may answer (413) before reading a large body: a failed write is fine.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let code = out.get(9..12)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// Rows in the `observations` table of the SQLite store in `dir` (`state.db`), per location.
pub fn stored_observations(dir: &std::path::Path) -> std::collections::BTreeMap<String, u64> {
    let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT location, COUNT(*) FROM observations GROUP BY location")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// A database of its own on the test PostgreSQL (`WATCHPOST_TEST_POSTGRES`, by default
/// `postgres://postgres@127.0.0.1:5432/postgres`), dropped with this.
pub struct Database {
    admin: String,
    name: String,
    /// The new database's URL.
    pub url: String,
}

impl Database {
    /// A fresh database named `PREFIX_PID_N`. None (the test skips) when the server can't be
    /// used, unless `CI=true`: then the test fails, never skips.
    pub fn new(prefix: &str) -> Option<Database> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let admin = std::env::var("WATCHPOST_TEST_POSTGRES")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // The blocking client runs its own runtime: off the test's.
        let (a, n) = (admin.clone(), name.clone());
        let created = std::thread::spawn(move || {
            postgres::Client::connect(&a, postgres::NoTls).and_then(|mut c| {
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {n}"))?;
                c.batch_execute(&format!("CREATE DATABASE {n}"))
            })
        })
        .join()
        .unwrap();
        if let Err(e) = created {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the test PostgreSQL can't be used (CI=true: this fails, never skips): {e:?}"
            );
            eprintln!("SKIP: the test PostgreSQL can't be used: {e:?}");
            return None;
        }
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Some(Database { admin, name, url })
    }

    /// Run `sql` on this database (on a thread of its own: the blocking client runs its own
    /// runtime) and return its rows.
    pub fn query(&self, sql: &str) -> Result<Vec<postgres::Row>, postgres::Error> {
        let (url, sql) = (self.url.clone(), sql.to_string());
        std::thread::spawn(move || {
            postgres::Client::connect(&url, postgres::NoTls)?.query(&sql, &[])
        })
        .join()
        .unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}
