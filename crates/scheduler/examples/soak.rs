//! Scheduler soak benchmark: N monitors on `@every 10s` plus M on `@every 1s` (spread), each
//! tick a real HTTP check (fresh connection) of a local target, for a fixed time. Prints start
//! lateness percentiles (started_at − scheduled_at), overruns, missed ticks, CPU and peak RSS.
//! Run by `bench/scheduler.sh`; the target must be on loopback.

use chrono::Utc;
use clap::Parser;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watchpost_cron::{Schedule, Tz};
use watchpost_probes::http::{HttpProber, HttpRequest, ProberOptions};
use watchpost_scheduler::{BoxFuture, Job, Run, Scheduler, SystemClock, spread_offset};

#[derive(Parser)]
struct Args {
    /// Target URL (loopback only).
    #[arg(long)]
    target: String,
    /// Monitors on @every 10s.
    #[arg(long, default_value_t = 10_000)]
    slow: usize,
    /// Monitors on @every 1s.
    #[arg(long, default_value_t = 1_000)]
    fast: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Concurrent checks at most.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
}

fn proc_field(file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// utime + stime of this process, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is index 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
    let url = url_is_loopback(&args.target);
    let mut jobs = Vec::new();
    for (count, kind, every) in [
        (args.slow, "slow", "@every 10s"),
        (args.fast, "fast", "@every 1s"),
    ] {
        let schedule = Schedule::parse(every).unwrap();
        jobs.extend((0..count).map(|i| Job {
            name: format!("{kind}-{i}"),
            schedule: schedule.clone(),
            tz: Tz::UTC,
            spread: true,
            timeout: Duration::from_secs(5),
        }));
    }
    let periods: Vec<(Duration, Duration)> = jobs
        .iter()
        .map(|j| {
            let p = j.schedule.every().unwrap();
            (p, spread_offset(&j.name, p))
        })
        .collect();
    let prober = Arc::new(HttpProber::new(ProberOptions::default()).unwrap());
    let request = Arc::new(HttpRequest::get(&url).unwrap());
    let lateness_us: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::with_capacity(400_000)));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (p, r, l, e) = (
        prober.clone(),
        request.clone(),
        lateness_us.clone(),
        errors.clone(),
    );
    let runner = move |run: Run| {
        let (p, r, l, e) = (p.clone(), r.clone(), l.clone(), e.clone());
        Box::pin(async move {
            l.lock().unwrap().push(run.lateness().as_micros() as u64);
            let mut req = (*r).clone();
            req.timeouts.total = run.remaining();
            let result = p.check(&req).await;
            if result.error.is_some() || result.status != Some(200) {
                e.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }) as BoxFuture
    };
    let n_jobs = jobs.len();
    let scheduler = Scheduler::new(jobs, args.concurrency, SystemClock);
    let stats = scheduler.stats();
    eprintln!(
        "soak: {} monitors @every 10s + {} @every 1s → {url}, {} s, concurrency {}",
        args.slow, args.fast, args.seconds, args.concurrency
    );
    let cpu0 = cpu_seconds();
    let t0 = Utc::now();
    let progress = {
        let stats = stats.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                eprintln!(
                    "  {:>4} s: {} runs, {} overruns, {} missed",
                    (Utc::now() - t0).num_seconds(),
                    stats.runs.load(std::sync::atomic::Ordering::Relaxed),
                    stats.overruns.load(std::sync::atomic::Ordering::Relaxed),
                    stats.missed.load(std::sync::atomic::Ordering::Relaxed),
                );
            }
        })
    };
    let shutdown = tokio::time::sleep(Duration::from_secs(args.seconds));
    scheduler.run(runner, shutdown).await;
    let t1 = Utc::now();
    progress.abort();
    let cpu = cpu_seconds() - cpu0;
    // Ticks due in (t0, stop]: what a perfect scheduler would have started or counted.
    let stop = t0 + chrono::Duration::seconds(args.seconds as i64);
    let expected: u64 = periods
        .iter()
        .map(|(p, o)| {
            let p = p.as_millis() as i64;
            let o = o.as_millis() as i64;
            let count_to = |t: i64| (t - o).div_euclid(p);
            (count_to(stop.timestamp_millis()) - count_to(t0.timestamp_millis())) as u64
        })
        .sum();
    let mut lat = lateness_us.lock().unwrap().clone();
    lat.sort_unstable();
    let runs = stats.runs.load(std::sync::atomic::Ordering::Relaxed);
    let overruns = stats.overruns.load(std::sync::atomic::Ordering::Relaxed);
    let missed = stats.missed.load(std::sync::atomic::Ordering::Relaxed);
    println!("monitors={n_jobs}");
    println!("wall_s={:.1}", (t1 - t0).num_milliseconds() as f64 / 1000.0);
    println!("expected_ticks={expected}");
    println!("runs={runs}");
    println!("overruns={overruns}");
    println!("missed={missed}");
    println!(
        "clock_steps={}",
        stats.clock_steps.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "panics={}",
        stats.panics.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "unaccounted_ticks={}",
        expected as i64 - (runs + overruns + missed) as i64
    );
    println!(
        "check_errors={}",
        errors.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!("lateness_ms_p50={:.3}", pct(&lat, 0.50));
    println!("lateness_ms_p99={:.3}", pct(&lat, 0.99));
    println!("lateness_ms_max={:.3}", pct(&lat, 1.0));
    println!("cpu_s={cpu:.2}");
    println!(
        "cpu_percent_of_one_core={:.1}",
        cpu / args.seconds as f64 * 100.0
    );
    println!(
        "peak_rss_mb={:.1}",
        proc_field("/proc/self/status", "VmHWM:").unwrap_or(0) as f64 / 1024.0
    );
}

fn url_is_loopback(url: &str) -> String {
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split(['/', ':']).next())
        .unwrap_or("");
    assert!(
        host == "127.0.0.1" || host == "localhost" || host.starts_with("127."),
        "the soak target must be on loopback, got {url}"
    );
    url.to_string()
}
