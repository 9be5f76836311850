//! Replicas (issue 14, docs/locations.md "Replicas on PostgreSQL"): several `watchpost
//! run` processes on one PostgreSQL database (the local test server, a database of its own
//! per test) share the monitors by shard leases. Through the real binary: two replicas split
//! the shards and check every monitor once per tick, never twice; an incident sends one DOWN
//! and one RESOLVED; a SIGKILLed replica's monitors move to the other one within the lease
//! (8 s) and a renewal period (2 s), with no check doubled and no alert lost or doubled. With
//! `CI=true` a PostgreSQL that can't be reached fails these tests.

mod common;

use common::{Daemon, Database, Server, alerts, server, wait_for};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use watchpost_store::{SHARDS, shard_of};

/// The monitors: `m0`..`m7`, each on its own path `/m0`..`/m7` of the target, `every: 1s`.
/// Their shards (FNV-1a of the name mod 64) are 56, 43, 30, 17, 4, 55, 42, 29: four below 32
/// and four above, so each of two replicas (one holds shards 0-31, the other 32-63) gets four.
const MONITORS: usize = 8;
const PERIOD: Duration = Duration::from_secs(1);
/// The shard lease and its renewal period (crates/engine/src/locations/mod.rs).
const LEASE: Duration = Duration::from_secs(6);
const RENEW: Duration = Duration::from_secs(2);

fn name(i: usize) -> String {
    format!("m{i}")
}

/// One request the target got: its path, when (wall clock), and the status answered.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    at: SystemTime,
    status: u16,
}

/// The monitors' target: answers each path with the status set for it (200 unless set) and
/// records every request.
struct Target {
    addr: std::net::SocketAddr,
    status: Arc<Mutex<HashMap<String, u16>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Target {
    async fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status: Arc<Mutex<HashMap<String, u16>>> = Arc::default();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let (st, ht) = (status.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (st, ht) = (st.clone(), ht.clone());
                tokio::spawn(async move {
                    let Some(req) = common::read_request(&mut s).await else {
                        return;
                    };
                    let head = String::from_utf8_lossy(&req.bytes);
                    let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                    let code = st.lock().unwrap().get(&path).copied().unwrap_or(200);
                    ht.lock().unwrap().push(Hit {
                        path,
                        at: SystemTime::now(),
                        status: code,
                    });
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        Target { addr, status, hits }
    }

    /// Answer monitor `i`'s path with `code` from now on.
    fn set(&self, i: usize, code: u16) {
        self.status
            .lock()
            .unwrap()
            .insert(format!("/{}", name(i)), code);
    }

    /// The requests for monitor `i`'s path, in order.
    fn hits(&self, i: usize) -> Vec<Hit> {
        let path = format!("/{}", name(i));
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }
}

/// The config of every replica: the test's database, a webhook `hook`, the monitors.
fn write_config(dir: &std::path::Path, db: &Database, target: &Target, hook: &Server) -> String {
    let mut text = format!(
        "storage: \"{}\"\nchannels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n",
        db.url, hook.addr
    );
    for i in 0..MONITORS {
        text.push_str(&format!(
            "  - {{name: {n}, type: http, url: \"http://{a}/{n}\", every: 1s, alert: {{channels: [hook], failure_threshold: 2}}}}\n",
            n = name(i),
            a = target.addr
        ));
    }
    let path = dir.join("watchpost.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Everything a test needs: the database, the target, the webhook receiver and two replicas.
struct Cluster {
    db: Database,
    target: Target,
    hook: Server,
    replicas: Vec<Daemon>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Option<Cluster> {
        let db = Database::new("wp_replicas")?;
        let target = Target::start().await;
        let hook = server(200).await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &db, &target, &hook);
        let replicas = (0..2)
            .map(|_| Daemon::start(std::path::Path::new(&config), &[]))
            .collect();
        Some(Cluster {
            db,
            target,
            hook,
            replicas,
            _dir: dir,
        })
    }

    /// Which replica (index) a lease holder id (`run-HOST-PID-NANOS`) is.
    fn replica_of(&self, holder: &str) -> Option<usize> {
        self.replicas
            .iter()
            .position(|d| holder.contains(&format!("-{}-", d.child.id())))
    }

    /// The live shard leases now: shard -> replica, and the lease's end.
    fn leases(&self) -> BTreeMap<u32, (usize, SystemTime)> {
        let now = UNIX_EPOCH.elapsed().unwrap().as_nanos() as i64;
        let rows = match self
            .db
            .query("SELECT shard, holder, until FROM shard_leases WHERE holder IS NOT NULL")
        {
            Ok(rows) => rows,
            // Before the first replica has created the schema.
            Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => vec![],
            Err(e) => panic!("reading the shard leases: {e}"),
        };
        rows.iter()
            .filter_map(|r| {
                let (shard, holder, until): (i64, String, i64) = (r.get(0), r.get(1), r.get(2));
                let replica = self.replica_of(&holder).unwrap_or_else(|| {
                    panic!("shard {shard} leased to {holder:?}, not one of the replicas")
                });
                (until > now).then(|| {
                    let end = UNIX_EPOCH + Duration::from_nanos(until as u64);
                    (shard as u32, (replica, end))
                })
            })
            .collect()
    }

    /// How many live shards each replica holds.
    fn shares(&self) -> Vec<usize> {
        let mut shares = vec![0; self.replicas.len()];
        for (replica, _) in self.leases().values() {
            shares[*replica] += 1;
        }
        shares
    }

    /// Wait until the replicas hold 32 shards each (in the database and by their own logs),
    /// then a second more (a tick under the new split).
    async fn settle(&self) {
        let mut seen = vec![];
        wait_for(
            "two replicas holding 32 shards each",
            Duration::from_secs(40),
            || {
                seen = self.shares();
                seen == [32, 32]
                    && self.replicas.iter().all(|d| {
                        d.log()
                            .contains("replicas: this process now schedules 32 of 64 shards")
                    })
            },
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    /// The replica whose leased shard monitor `i` is on.
    fn owner(&self, i: usize) -> usize {
        let shard = shard_of(&name(i));
        self.leases()
            .get(&shard)
            .unwrap_or_else(|| panic!("no live lease on shard {shard} of {}", name(i)))
            .0
    }

    /// The alerts the webhook got: (kind, monitor).
    fn alerts(&self) -> Vec<(String, String)> {
        alerts(&self.hook)
            .iter()
            .map(|a| {
                (
                    a["kind"].as_str().unwrap_or("?").to_string(),
                    a["monitor"].as_str().unwrap_or("?").to_string(),
                )
            })
            .collect()
    }

    fn logs(&self) -> String {
        self.replicas
            .iter()
            .enumerate()
            .map(|(i, d)| format!("--- replica {i} (pid {}):\n{}", d.child.id(), d.log()))
            .collect()
    }
}

/// Seconds since the epoch, with milliseconds.
fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Monitor `i` was checked at most once per tick among `hits` after `from`. Its spread offset
/// is fixed (a hash of its name), so its ticks fire at that offset in every second: a request
/// is counted in the tick nearest to it (the one-second window centred on the tick), and two
/// in one window mean the tick ran twice (two replicas both scheduling the monitor).
fn assert_once_per_tick(i: usize, hits: &[Hit], from: SystemTime) {
    let offset = watchpost_scheduler::spread_offset(&name(i), PERIOD).as_millis() as i128;
    let mut per_tick: BTreeMap<i128, Vec<f64>> = BTreeMap::new();
    for h in hits.iter().filter(|h| h.at >= from) {
        let ms = h.at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i128;
        let tick = (ms - offset + 500).div_euclid(1000);
        per_tick.entry(tick).or_default().push(secs(h.at));
    }
    let doubled: Vec<_> = per_tick.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        doubled.is_empty(),
        "{} (offset {offset} ms) checked more than once in a tick: {doubled:?}",
        name(i)
    );
}

/// The per-check log lines of monitor `i` in `log` (`-v`: `HH:MM:SS  NAME  PASS ...`).
fn check_lines(log: &str, i: usize) -> usize {
    let n = name(i);
    log.lines()
        .filter(|l| {
            ["PASS", "FAIL", "ERROR"]
                .iter()
                .any(|v| l.contains(&format!("  {n}  {v}")))
        })
        .count()
}

/// Wait `settle` after the alerts first match `want`, then check they still do.
async fn assert_alerts_stay(c: &Cluster, want: &[(&str, &str)], within: Duration) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, m)| (k.to_string(), m.to_string()))
        .collect();
    let mut got = vec![];
    wait_for(&format!("alerts {want:?}"), within, || {
        got = c.alerts();
        got.len() >= want.len()
    })
    .await;
    // Long enough for a duplicate to show: several ticks, lease expiries, delivery retries.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(c.alerts(), want, "{}", c.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_the_monitors_and_check_each_once_per_tick() {
    let Some(mut c) = Cluster::start().await else {
        return;
    };
    c.settle().await;
    let settled = SystemTime::now();
    let owners: Vec<usize> = (0..MONITORS).map(|i| c.owner(i)).collect();
    let logs_before: Vec<usize> = c.replicas.iter().map(|d| d.log().len()).collect();

    // The measured window.
    let window = Duration::from_secs(10);
    let (from, started) = (SystemTime::now(), Instant::now());
    tokio::time::sleep(window).await;
    let to = SystemTime::now();
    let measured = started.elapsed();

    assert_eq!(c.shares(), [32, 32], "the split held: {}", c.logs());
    assert_eq!(
        (0..MONITORS).map(|i| c.owner(i)).collect::<Vec<_>>(),
        owners,
        "no monitor changed hands"
    );
    for (r, _) in c.replicas.iter().enumerate() {
        assert_eq!(
            owners.iter().filter(|o| **o == r).count(),
            MONITORS / 2,
            "replica {r} schedules half the monitors: {owners:?}"
        );
    }
    for i in 0..MONITORS {
        let hits = c.target.hits(i);
        assert_once_per_tick(i, &hits, settled);
        let n = hits.iter().filter(|h| h.at >= from && h.at < to).count();
        assert!(
            (8..=12).contains(&n),
            "{}: {n} checks in {measured:?}, about one a second expected: {:?}",
            name(i),
            hits.iter().map(|h| secs(h.at)).collect::<Vec<_>>()
        );
    }
    // Each monitor's checks were made by the replica holding its shard, and only by it.
    for (r, d) in c.replicas.iter().enumerate() {
        let log = d.log();
        let window_log = &log[logs_before[r]..];
        for (i, owner) in owners.iter().enumerate() {
            let lines = check_lines(window_log, i);
            if *owner == r {
                assert!(lines >= 8, "replica {r} checked {} {lines} times", name(i));
            } else {
                assert_eq!(lines, 0, "replica {r} checked {}, not its own", name(i));
            }
        }
    }
    assert!(c.alerts().is_empty(), "{:?}", c.alerts());

    // A graceful stop hands the shards back at once.
    for d in &c.replicas {
        d.signal("-TERM");
    }
    for d in &mut c.replicas {
        let code = d.exit_code(Duration::from_secs(20)).await;
        assert_eq!(code, Some(0), "{}", d.log());
    }
    assert!(c.leases().is_empty(), "released: {:?}", c.leases());
    let log = c.logs();
    assert!(
        !log.contains("internal error") && !log.contains("panicked"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_on_two_replicas_sends_one_down_and_one_resolved() {
    let Some(c) = Cluster::start().await else {
        return;
    };
    c.settle().await;
    let settled = SystemTime::now();
    let victim = 3;
    c.target.set(victim, 503);
    assert_alerts_stay(&c, &[("down", "m3")], Duration::from_secs(20)).await;
    c.target.set(victim, 200);
    assert_alerts_stay(
        &c,
        &[("down", "m3"), ("resolved", "m3")],
        Duration::from_secs(20),
    )
    .await;
    for i in 0..MONITORS {
        assert_once_per_tick(i, &c.target.hits(i), settled);
    }
    let failed = c
        .target
        .hits(victim)
        .iter()
        .filter(|h| h.status == 503)
        .count();
    assert!(failed >= 2, "{failed} failing checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_monitors_move_without_a_lost_or_doubled_alert() {
    let Some(mut c) = Cluster::start().await else {
        return;
    };
    c.settle().await;
    let settled = SystemTime::now();
    let victim = 0;
    let killed = c.owner(victim);
    let survivor = 1 - killed;
    // Its owner's log says so too: its checks of the victim are there, not in the other's.
    let logs: Vec<String> = c.replicas.iter().map(Daemon::log).collect();
    assert!(check_lines(&logs[killed], victim) > 0, "{}", c.logs());
    let killed_monitors: Vec<usize> = (0..MONITORS).filter(|i| c.owner(*i) == killed).collect();

    // The victim starts failing; right after its owner's first failing check, SIGKILL.
    c.target.set(victim, 503);
    wait_for(
        "the first failing check of m0",
        Duration::from_secs(10),
        || c.target.hits(victim).iter().any(|h| h.status == 503),
    )
    .await;
    let shard = shard_of(&name(victim));
    let lease_end = c.leases()[&shard].1;
    c.replicas[killed].signal("-KILL");
    let kill = SystemTime::now();
    c.replicas[killed].exit_code(Duration::from_secs(10)).await;

    // The survivor takes the shard once the dead lease has ended, within a renewal period.
    let mut moved = None;
    wait_for(
        "the survivor holding the killed replica's shards",
        LEASE + RENEW + Duration::from_secs(5),
        || {
            let leases = c.leases();
            let holder = leases.get(&shard).map(|l| l.0);
            if holder == Some(survivor) && moved.is_none() {
                moved = Some(SystemTime::now());
            }
            holder == Some(survivor) && leases.len() == SHARDS as usize
        },
    )
    .await;
    let moved = moved.unwrap();
    let after_lease = moved.duration_since(lease_end).unwrap_or_else(|e| {
        panic!(
            "the shard moved {:?} before its lease ended: {}",
            e.duration(),
            c.logs()
        )
    });
    let since_kill = moved.duration_since(kill).unwrap();
    assert!(
        after_lease < RENEW + Duration::from_millis(500),
        "{after_lease:?}"
    );
    assert!(
        since_kill < LEASE + RENEW + Duration::from_millis(500),
        "moved {since_kill:?} after the kill"
    );

    // The victim's checks: the gap across the kill.
    wait_for(
        "a check of m0 after the kill",
        Duration::from_secs(5),
        || c.target.hits(victim).iter().any(|h| h.at > kill),
    )
    .await;
    let hits = c.target.hits(victim);
    let last_before = hits.iter().rev().find(|h| h.at <= kill).unwrap().at;
    let first_after = hits.iter().find(|h| h.at > kill).unwrap().at;
    let gap = first_after.duration_since(last_before).unwrap();
    eprintln!(
        "takeover: shard moved {since_kill:?} after the kill ({after_lease:?} after the lease \
         ended); m0's checks: {gap:?} between the last before the kill and the first after"
    );
    // The lease was renewed at most a renewal period before the kill, ends LEASE after that;
    // the survivor claims within RENEW; the monitor's next tick is at most a period later.
    assert!(
        gap < LEASE + RENEW + PERIOD + Duration::from_millis(500),
        "m0 unchecked for {gap:?} across the takeover"
    );
    // What the issue asks: the other replica takes over within 10 s.
    assert!(gap < Duration::from_secs(10), "m0 unchecked for {gap:?}");
    let log = c.replicas[survivor].log();
    assert!(
        log.contains("replicas: this process now schedules 64 of 64 shards"),
        "{log}"
    );

    // One DOWN for the incident that opened across the kill, then one RESOLVED.
    assert_alerts_stay(&c, &[("down", "m0")], Duration::from_secs(20)).await;
    c.target.set(victim, 200);
    assert_alerts_stay(
        &c,
        &[("down", "m0"), ("resolved", "m0")],
        Duration::from_secs(20),
    )
    .await;

    // Every monitor of the killed replica is checked again, and no tick ran twice.
    let now = SystemTime::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..MONITORS {
        let hits = c.target.hits(i);
        assert_once_per_tick(i, &hits, settled);
        let recent = hits.iter().filter(|h| h.at >= now).count();
        assert!(recent >= 2, "{} checked {recent} times in 3 s", name(i));
    }
    assert!(killed_monitors.contains(&victim));
}
