//! Throughput benchmark driver (bench/throughput.sh): run N HTTP checks of one URL at
//! concurrency C with `HttpProber::check` (a fresh connection, every phase timed, per check)
//! and report checks per CPU-second of this process.
//!
//! ```text
//! cargo run --release -p watchpost-probes --example throughput -- \
//!     --url http://127.0.0.1:8080/small.txt -n 40000 -c 16 [--threads 2] [--cacert ca.pem] [--insecure]
//! ```
//! Output: `key=value` lines (stable, parsed by the script). Only loopback targets are
//! accepted: this is a benchmark, not a load generator for other people's servers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use watchpost_probes::http::{HttpProber, HttpRequest, ProberOptions, load_ca_file};

struct Args {
    url: String,
    checks: u64,
    concurrency: usize,
    threads: Option<usize>,
    cacert: Option<PathBuf>,
    insecure: bool,
    max_seconds: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: throughput --url URL [-n CHECKS] [-c CONCURRENCY] [--threads T] \
         [--cacert FILE] [--insecure] [--max-seconds S]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        url: String::new(),
        checks: 10_000,
        concurrency: 16,
        threads: None,
        cacert: None,
        insecure: false,
        max_seconds: 120.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--url" => args.url = val(),
            "-n" | "--checks" => args.checks = val().parse().unwrap_or_else(|_| usage()),
            "-c" | "--concurrency" => args.concurrency = val().parse().unwrap_or_else(|_| usage()),
            "--threads" => args.threads = Some(val().parse().unwrap_or_else(|_| usage())),
            "--cacert" => args.cacert = Some(PathBuf::from(val())),
            "--insecure" => args.insecure = true,
            "--max-seconds" => args.max_seconds = val().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if args.url.is_empty() || args.concurrency == 0 {
        usage();
    }
    args
}

/// Loopback only (127.0.0.0/8, ::1, localhost).
fn is_loopback_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[repr(C)]
#[derive(Default)]
struct Timeval {
    tv_sec: i64,
    tv_usec: i64,
}

/// `struct rusage` on 64-bit Linux.
#[repr(C)]
#[derive(Default)]
struct Rusage {
    ru_utime: Timeval,
    ru_stime: Timeval,
    rest: [i64; 14],
}

unsafe extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

/// (user, sys) CPU seconds of the whole process (all threads).
fn cpu_times() -> (f64, f64) {
    let mut ru = Rusage::default();
    // SAFETY: RUSAGE_SELF (0) with a correctly laid out, writable struct.
    let rc = unsafe { getrusage(0, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let s = |t: &Timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(&ru.ru_utime), s(&ru.ru_stime))
}

/// VmHWM (peak resident set) from /proc/self/status, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn main() {
    let args = parse_args();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(t) = args.threads {
        rt.worker_threads(t);
    }
    let rt = rt.build().expect("tokio runtime");

    let mut options = ProberOptions::default();
    if let Some(path) = &args.cacert {
        options.extra_roots = load_ca_file(path).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
    }
    let prober = Arc::new(HttpProber::new(options).expect("prober"));
    let mut req = HttpRequest::get(&args.url).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    if !is_loopback_url(&req.url) {
        eprintln!(
            "refusing {}: benchmarks talk to loopback addresses only",
            args.url
        );
        std::process::exit(2);
    }
    req.insecure = args.insecure;
    let req = Arc::new(req);

    // One warm-up check (not counted): fails fast if the target is not there.
    let warm = rt.block_on(prober.check(&req));
    if let Some(e) = &warm.error {
        eprintln!("warm-up check failed: {e:?}");
        std::process::exit(1);
    }

    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let total = args.checks;
    let stop_at = Instant::now() + Duration::from_secs_f64(args.max_seconds);
    let (cpu_u0, cpu_s0) = cpu_times();
    let t0 = Instant::now();
    let per_worker: Vec<Vec<f64>> = rt.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..args.concurrency {
            let prober = prober.clone();
            let req = req.clone();
            let next = next.clone();
            let errors = errors.clone();
            handles.push(tokio::spawn(async move {
                let mut totals = Vec::new();
                // Bounded in count (N checks in all) and in time (--max-seconds).
                while next.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < stop_at {
                    let r = prober.check(&req).await;
                    if r.error.is_some() || r.status != Some(200) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    totals.push(r.timings.total.as_secs_f64() * 1e3);
                }
                totals
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("worker"));
        }
        out
    });
    let wall = t0.elapsed().as_secs_f64();
    let (cpu_u1, cpu_s1) = cpu_times();
    let (user, sys) = (cpu_u1 - cpu_u0, cpu_s1 - cpu_s0);
    let cpu = user + sys;
    let mut totals: Vec<f64> = per_worker.into_iter().flatten().collect();
    totals.sort_by(|a, b| a.total_cmp(b));
    let done = totals.len() as u64;

    println!("url={}", args.url);
    println!("concurrency={}", args.concurrency);
    println!(
        "threads={}",
        args.threads
            .map_or("default".to_string(), |t| t.to_string())
    );
    println!("checks={done}");
    println!("errors={}", errors.load(Ordering::Relaxed));
    println!("wall_s={wall:.3}");
    println!("user_s={user:.3}");
    println!("sys_s={sys:.3}");
    println!("cpu_s={cpu:.3}");
    println!("checks_per_cpu_s={:.1}", done as f64 / cpu);
    println!("checks_per_wall_s={:.1}", done as f64 / wall);
    println!("total_ms_p50={:.3}", percentile(&totals, 0.50));
    println!("total_ms_p99={:.3}", percentile(&totals, 0.99));
    println!("peak_rss_kib={}", peak_rss_kib());
}
