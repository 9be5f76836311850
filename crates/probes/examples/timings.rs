//! One HTTP check, printed as the `watchpost check --json` object (docs/contracts.md), for the
//! accuracy benchmark (bench/accuracy.sh) to compare with `curl -w`.
//!
//! ```text
//! cargo run --release -p watchpost-probes --example timings -- \
//!     [--cacert FILE] [--resolve HOST:PORT:ADDR]... [--insecure] [--timeout SECS] URL
//! ```
//! Benchmarks talk to loopback only: an IP literal or `--resolve` address must be loopback,
//! and a name that goes to DNS is accepted only inside a network namespace whose only
//! interface is `lo` (as bench/accuracy.sh sets up).

use std::path::PathBuf;
use std::time::Duration;
use watchpost_probes::http::{
    CheckReport, HttpProber, HttpRequest, ProberOptions, ResolveOverride, load_ca_file,
};

fn usage() -> ! {
    eprintln!(
        "usage: timings [--cacert FILE] [--resolve HOST:PORT:ADDR]... [--insecure] \
         [--timeout SECS] URL"
    );
    std::process::exit(2)
}

/// True when this process's network namespace has no interface but `lo`.
fn only_loopback_interfaces() -> bool {
    match std::fs::read_dir("/sys/class/net") {
        Ok(dir) => dir.filter_map(Result::ok).all(|e| e.file_name() == "lo"),
        Err(_) => false,
    }
}

fn main() {
    let mut url = None;
    let mut cacert: Option<PathBuf> = None;
    let mut resolve: Vec<ResolveOverride> = Vec::new();
    let mut insecure = false;
    let mut timeout = 10.0f64;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--cacert" => cacert = Some(PathBuf::from(val())),
            "--resolve" => resolve.push(val().parse().unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(2)
            })),
            "--insecure" | "-k" => insecure = true,
            "--timeout" => timeout = val().parse().unwrap_or_else(|_| usage()),
            s if s.starts_with('-') => usage(),
            _ => url = Some(a),
        }
    }
    let Some(url) = url else { usage() };

    let mut options = ProberOptions::default();
    if let Some(path) = &cacert {
        options.extra_roots = load_ca_file(path).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
    }
    let mut req = HttpRequest::get(&url).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    req.insecure = insecure;
    req.timeouts.total = Duration::from_secs_f64(timeout);
    req.resolve = resolve;

    let port = req.url.port_or_known_default().unwrap_or(80);
    let allowed = match req.url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            let name = name.to_ascii_lowercase();
            match req
                .resolve
                .iter()
                .find(|o| o.host == name && o.port == port)
            {
                Some(pinned) => pinned.addr.is_loopback(),
                None => only_loopback_interfaces(),
            }
        }
        None => false,
    };
    if !allowed {
        eprintln!(
            "refusing {url}: benchmarks talk to loopback only (an IP literal or --resolve to \
             127.0.0.0/8 or ::1, or run inside a network namespace that has only lo)"
        );
        std::process::exit(2);
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let prober = HttpProber::new(options).expect("prober");
    let result = rt.block_on(prober.check(&req));
    let ok = result.error.is_none();
    let report = CheckReport::new(&result, ok);
    println!("{}", serde_json::to_string(&report).expect("json"));
    std::process::exit(if ok { 0 } else { 1 });
}
