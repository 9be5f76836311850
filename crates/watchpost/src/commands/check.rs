//! `watchpost check URL`: one HTTP check, shown as a phase table (or `--json`).

use crate::EXIT_USAGE;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use watchpost_conditions::{Condition, HttpSubject, evaluate_http, with_default_status};
use watchpost_probes::http::{
    CheckReport, HttpProber, HttpRequest, HttpResult, ProberOptions, ResolveOverride, load_ca_file,
    timing::ms,
};
use watchpost_units::{format_bytes, parse_duration, parse_size};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The URL to check (http:// or https://).
    pub url: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Overall deadline for the whole check, all phases and redirects included (at most 3650d).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// A limit for one phase, on top of the deadline: dns=1s, connect=500ms, tls=, wait=, download=
    /// (at most 3650d).
    #[arg(long = "phase-timeout", value_name = "PHASE=DURATION")]
    pub phase_timeout: Vec<String>,
    /// Accept any TLS certificate (the handshake is still done and timed).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Request method (default GET, or POST when -d is given).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// Request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Request body; @FILE reads it from a file.
    #[arg(short = 'd', long = "data", value_name = "BODY")]
    pub data: Option<String>,
    /// Follow redirects (at most 10); phases are summed over the hops.
    #[arg(long, short = 'L')]
    pub follow_redirects: bool,
    /// Condition that must hold, e.g. 'status == 200', 'total < 800ms', 'body contains "ok"'
    /// (repeatable). The default, status 200-399, also applies unless a condition names status.
    #[arg(long, value_name = "CONDITION")]
    pub expect: Vec<String>,
    /// Use ADDRESS for HOST:PORT instead of DNS, as curl does (repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDRESS")]
    pub resolve: Vec<String>,
    /// Ask this DNS server (IP:PORT) instead of the system's resolvers (repeatable).
    #[arg(long, value_name = "IP:PORT")]
    pub dns_server: Vec<SocketAddr>,
    /// Cap on the body read.
    #[arg(long, default_value = "10MiB", value_parser = parse_size)]
    pub max_body: u64,
}

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("watchpost: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// Everything `run` needs, validated: a bad flag is reported before any network I/O.
struct Plan {
    request: HttpRequest,
    conditions: Vec<Condition>,
    options: ProberOptions,
}

fn plan(args: &CheckArgs) -> Result<Plan, String> {
    // Credentials in the URL would not be sent, and a huge URL would not be accepted by the
    // server: refuse both before any I/O (without quoting the URL, which may hold a password).
    if let Some(problem) = watchpost_config::http_url_problem(&args.url) {
        return Err(format!("invalid URL: {problem}"));
    }
    let mut request = HttpRequest::get(&args.url).map_err(|e| e.to_string())?;
    let method = match (&args.method, &args.data) {
        (Some(m), _) => m.clone(),
        (None, Some(_)) => "POST".to_string(),
        (None, None) => "GET".to_string(),
    };
    request = request.method(&method).map_err(|e| e.to_string())?;
    for h in &args.headers {
        if let Some(problem) = watchpost_config::header_line_problem(h) {
            return Err(format!("invalid header: {problem}"));
        }
        request = request.header_line(h).map_err(|e| e.to_string())?;
    }
    if let Some(data) = &args.data {
        request.body = match data.strip_prefix('@') {
            Some(path) => std::fs::read(path)
                .map_err(|e| format!("cannot read the body from {path}: {e}"))?
                .into(),
            None => data.clone().into_bytes().into(),
        };
    }
    request.follow_redirects = args.follow_redirects;
    request.insecure = args.insecure;
    request.max_body = args.max_body;
    request.timeouts.total = args.timeout;
    for spec in &args.phase_timeout {
        let (phase, value) = spec
            .split_once('=')
            .ok_or_else(|| format!("invalid --phase-timeout {spec:?}: expected PHASE=DURATION"))?;
        let d = parse_duration(value).map_err(|e| format!("invalid --phase-timeout: {e}"))?;
        let t = &mut request.timeouts;
        let slot = match phase {
            "dns" => &mut t.dns,
            "connect" => &mut t.connect,
            "tls" => &mut t.tls,
            "wait" => &mut t.wait,
            "download" => &mut t.download,
            other => {
                return Err(format!(
                    "invalid --phase-timeout: unknown phase {other:?} (dns, connect, tls, wait, download)"
                ));
            }
        };
        *slot = Some(d);
    }
    for r in &args.resolve {
        request
            .resolve
            .push(r.parse::<ResolveOverride>().map_err(|e| e.to_string())?);
    }
    let conditions = with_default_status(
        args.expect
            .iter()
            .map(|t| {
                Condition::parse::<HttpSubject>(t)
                    .map_err(|e| format!("invalid --expect {t:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?,
    );
    let extra_roots = match &args.cacert {
        Some(path) => load_ca_file(path).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    let nameservers = (!args.dns_server.is_empty()).then(|| args.dns_server.clone());
    Ok(Plan {
        request,
        conditions,
        options: ProberOptions {
            extra_roots,
            nameservers,
        },
    })
}

pub fn run(args: CheckArgs) -> ExitCode {
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let prober = match HttpProber::new(plan.options) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let runtime = match crate::tokio_runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(prober.check(&plan.request));
    let failures = evaluate_http(&result, &plan.conditions);
    let ok = failures.is_empty();
    if args.json {
        match serde_json::to_string(&CheckReport::new(&result, ok)) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("watchpost: cannot encode the result: {e}");
                return ExitCode::from(crate::EXIT_INTERNAL);
            }
        }
    } else {
        print!(
            "{}",
            render(&plan.request, &result, &plan.conditions, &failures)
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else if result.error.as_ref().is_some_and(|e| e.is_local()) {
        // Out of file descriptors, memory or ports: watchpost's problem, not the target's.
        ExitCode::from(crate::EXIT_INTERNAL)
    } else {
        ExitCode::FAILURE
    }
}

const BAR_WIDTH: usize = 40;

/// The human view: a timeline of the phases with proportional bars, then the facts and the
/// verdict.
fn render(
    request: &HttpRequest,
    result: &HttpResult,
    conditions: &[Condition],
    failures: &[String],
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let t = &result.timings;
    let mut head = format!("{} {}", request.method, result.url);
    if let Some(addr) = result.remote_addr {
        let _ = write!(head, "  →  {addr}");
    }
    if let (Some(v), Some(s)) = (result.http_version, result.status) {
        let _ = write!(head, "  {v} {s}");
    }
    if result.redirects > 0 {
        let _ = write!(
            head,
            "  ({} redirects, now {})",
            result.redirects, result.final_url
        );
    }
    let _ = writeln!(out, "{head}\n");

    let total_ms = ms(t.total).max(f64::EPSILON);
    let scale = |v: f64| ((v / total_ms) * BAR_WIDTH as f64).round() as usize;
    let mut offset = 0.0;
    for (name, value) in [
        ("dns", t.dns),
        ("connect", t.connect),
        ("tls", t.tls),
        ("wait", t.wait),
        ("download", t.download),
    ] {
        match value {
            Some(d) => {
                let v = ms(d);
                let start = scale(offset).min(BAR_WIDTH);
                let len = scale(offset + v).min(BAR_WIDTH).saturating_sub(start);
                let len = if len == 0 && v > 0.0 { 1 } else { len };
                let bar = format!("{}{}", " ".repeat(start), "█".repeat(len));
                let _ = writeln!(out, "  {name:<9}{v:>11.3} ms  │{bar}");
                offset += v;
            }
            None => {
                let _ = writeln!(out, "  {name:<9}{:>11}     │", "—");
            }
        }
    }
    let _ = writeln!(out, "  {}", "─".repeat(26 + BAR_WIDTH));
    if let Some(ttfb) = t.ttfb {
        let _ = writeln!(out, "  {:<9}{:>11.3} ms", "ttfb", ms(ttfb));
    }
    let _ = writeln!(out, "  {:<9}{:>11.3} ms\n", "total", ms(t.total));

    let mut facts = Vec::new();
    if result.status.is_some() {
        facts.push(format!("size {}", format_bytes(result.size_bytes as f64)));
        facts.push(format!(
            "speed {}/s",
            format_bytes(result.speed_bytes_per_sec())
        ));
    }
    if let Some(tls) = &result.tls {
        let mut s = tls.version.clone();
        if let (Some(at), Some(days)) = (&tls.cert_not_after, tls.cert_days_left) {
            let _ = write!(s, ", certificate valid until {at} ({days:.1} days)");
        }
        facts.push(s);
    }
    if !facts.is_empty() {
        let _ = writeln!(out, "  {}\n", facts.join("   "));
    }

    if failures.is_empty() {
        let list: Vec<&str> = conditions.iter().map(|c| c.source.as_str()).collect();
        let _ = writeln!(out, "  PASS  {}", list.join(", "));
    } else {
        for f in failures {
            let _ = writeln!(out, "  FAIL  {f}");
        }
    }
    out
}
