//! `watchpost check TARGET`: one check of any kind (http(s), tcp, tls, dns), shown as a phase
//! table (or `--json`).

use crate::EXIT_USAGE;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use watchpost_conditions::{Condition, Failure};
use watchpost_probes::http::{HttpRequest, ResolveOverride, load_ca_file};
use watchpost_probes::{CheckKind, CheckSpec, Detail, Observation, ProberOptions, Probes};
use watchpost_units::{format_bytes, parse_duration, parse_size};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// What to check: http(s)://..., tcp://HOST:PORT, tls://HOST:PORT[?sni=NAME],
    /// dns://NAME?type=A&server=IP:PORT (type: A, AAAA, CNAME, MX, TXT, NS).
    pub url: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Overall deadline for the whole check, all phases and redirects included (at most 3650d).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// HTTP: a limit for one phase, on top of the deadline: dns=1s, connect=500ms, tls=,
    /// wait=, download= (at most 3650d).
    #[arg(long = "phase-timeout", value_name = "PHASE=DURATION")]
    pub phase_timeout: Vec<String>,
    /// https, tls: accept any certificate (the handshake is still done and timed; a tls check
    /// still reports whether the chain verified).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// https, tls: also trust the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// tls: the name to send as SNI and verify the certificate for (default: the host).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// tcp: text to send once connected (\r, \n and \t are understood), e.g. 'PING\r\n'.
    #[arg(long, value_name = "TEXT")]
    pub send: Option<String>,
    /// tcp: text the reply must contain, e.g. '+PONG' (read for at most 64 KiB).
    #[arg(long, value_name = "TEXT")]
    pub banner: Option<String>,
    /// HTTP: request method (default GET, or POST when -d is given).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// HTTP: request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// HTTP: request body; @FILE reads it from a file.
    #[arg(short = 'd', long = "data", value_name = "BODY")]
    pub data: Option<String>,
    /// HTTP: follow redirects (at most 10); phases are summed over the hops.
    #[arg(long, short = 'L')]
    pub follow_redirects: bool,
    /// Condition that must hold, e.g. 'status == 200', 'total < 800ms', 'body contains "ok"',
    /// 'cert_days > 14', 'answers contains "1.2.3.4"' (repeatable). The kind's default (HTTP:
    /// status 200-399; dns: rcode == "NOERROR") also applies unless a condition names its
    /// operand.
    #[arg(long, value_name = "CONDITION")]
    pub expect: Vec<String>,
    /// HTTP: use ADDRESS for HOST:PORT instead of DNS, as curl does (repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDRESS")]
    pub resolve: Vec<String>,
    /// Ask this DNS server (IP:PORT) instead of the system's resolvers (repeatable); a dns
    /// check without server= asks the first.
    #[arg(long, value_name = "IP:PORT")]
    pub dns_server: Vec<SocketAddr>,
    /// HTTP: cap on the body read (default 10MiB).
    #[arg(long, value_parser = parse_size)]
    pub max_body: Option<u64>,
}

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("watchpost: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// Everything `run` needs, validated: a bad flag is reported before any network I/O.
struct Plan {
    spec: CheckSpec,
    conditions: Vec<Condition>,
    options: ProberOptions,
}

fn is_http(target: &str) -> bool {
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn plan(args: &CheckArgs) -> Result<Plan, String> {
    let spec = if is_http(&args.url) {
        CheckSpec::Http(http_request(args)?)
    } else {
        other_kind(args)?
    };
    let kind = spec.kind();
    let conditions = kind.with_defaults(
        args.expect
            .iter()
            .map(|t| {
                Condition::parse(t, kind.operands())
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
        spec,
        conditions,
        options: ProberOptions {
            extra_roots,
            nameservers,
        },
    })
}

/// A tcp, tls or dns target with the flags that apply to it; HTTP's flags are refused.
fn other_kind(args: &CheckArgs) -> Result<CheckSpec, String> {
    let mut spec = CheckSpec::parse_target(&args.url)?;
    let kind = spec.kind();
    let http_only = [
        ("--phase-timeout", !args.phase_timeout.is_empty()),
        ("-X/--request", args.method.is_some()),
        ("-H/--header", !args.headers.is_empty()),
        ("-d/--data", args.data.is_some()),
        ("-L/--follow-redirects", args.follow_redirects),
        ("--resolve", !args.resolve.is_empty()),
        ("--max-body", args.max_body.is_some()),
    ];
    let tls_only = [
        ("--insecure", args.insecure),
        ("--cacert", args.cacert.is_some()),
        ("--sni", args.sni.is_some()),
    ];
    let tcp_only = [
        ("--send", args.send.is_some()),
        ("--banner", args.banner.is_some()),
    ];
    let refuse = |flags: &[(&str, bool)], applies: &str| match flags.iter().find(|(_, set)| *set) {
        Some((flag, _)) => Err(format!("{flag} applies to {applies} checks, not {kind}")),
        None => Ok(()),
    };
    refuse(&http_only, "http(s)")?;
    if kind != CheckKind::Tls {
        // --insecure and --cacert also apply to https, which is not this kind either.
        refuse(&tls_only, "tls (and https)")?;
    }
    if kind != CheckKind::Tcp {
        refuse(&tcp_only, "tcp")?;
    }
    spec.set_timeout(args.timeout);
    match &mut spec {
        CheckSpec::Tls(tls) => {
            tls.insecure = args.insecure;
            if let Some(sni) = &args.sni {
                tls.sni = Some(sni.clone());
            }
        }
        CheckSpec::Tcp(tcp) => {
            tcp.send = args.send.as_deref().map(|s| unescape(s).into_bytes());
            tcp.expect = args.banner.clone();
            if tcp.expect.as_deref() == Some("") {
                return Err("--banner needs some text to look for".into());
            }
        }
        CheckSpec::Dns(_) | CheckSpec::Http(_) | CheckSpec::KafkaLag(_) => {}
    }
    Ok(spec)
}

/// `\r`, `\n`, `\t` and `\\` as the characters they name.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn http_request(args: &CheckArgs) -> Result<HttpRequest, String> {
    // Credentials in the URL would not be sent, and a huge URL would not be accepted by the
    // server: refuse both before any I/O (without quoting the URL, which may hold a password).
    if let Some(problem) = watchpost_config::http_url_problem(&args.url) {
        return Err(format!("invalid URL: {problem}"));
    }
    if let Some(flag) = [
        ("--sni", args.sni.is_some()),
        ("--send", args.send.is_some()),
        ("--banner", args.banner.is_some()),
    ]
    .iter()
    .find_map(|(flag, set)| set.then_some(flag))
    {
        return Err(format!(
            "{flag} does not apply to http(s) checks (use a tls:// or tcp:// target)"
        ));
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
    if let Some(max) = args.max_body {
        request.max_body = max;
    }
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
    Ok(request)
}

pub fn run(args: CheckArgs) -> ExitCode {
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let probes = match Probes::new(plan.options) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let runtime = match crate::tokio_runtime(false, crate::BLOCKING_THREADS) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let observation = runtime.block_on(probes.run(&plan.spec));
    let failures = observation.judge(&plan.conditions);
    let ok = failures.is_empty();
    if args.json {
        match serde_json::to_string(&observation.report(ok)) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("watchpost: cannot encode the result: {e}");
                return ExitCode::from(crate::EXIT_INTERNAL);
            }
        }
    } else {
        print!(
            "{}",
            render(&plan.spec, &observation, &plan.conditions, &failures)
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else if observation.is_local() {
        // Out of file descriptors, memory or ports: watchpost's problem, not the target's.
        ExitCode::from(crate::EXIT_INTERNAL)
    } else {
        ExitCode::FAILURE
    }
}

const BAR_WIDTH: usize = 40;

/// The human view: a head line, a timeline of the kind's phases with proportional bars, then
/// the facts and the verdict.
fn render(
    spec: &CheckSpec,
    o: &Observation,
    conditions: &[Condition],
    failures: &[Failure],
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let value = |name: &str| o.metric(name).map(|m| m.value);
    let mut head = match spec {
        CheckSpec::Http(request) => format!("{} {}", request.method, o.url),
        _ => o.url.clone(),
    };
    let mut facts = Vec::new();
    let mut lines = Vec::new();
    let (phases, extra): (&[&str], &[&str]) = match &o.detail {
        Detail::Http(d) => {
            if let Some(addr) = d.remote_addr {
                let _ = write!(head, "  →  {addr}");
            }
            if let (Some(v), Some(s)) = (d.http_version, d.status) {
                let _ = write!(head, "  {v} {s}");
            }
            if d.redirects > 0 {
                let _ = write!(head, "  ({} redirects, now {})", d.redirects, d.final_url);
            }
            if d.status.is_some() {
                facts.push(format!("size {}", format_bytes(d.size as f64)));
                facts.push(format!(
                    "speed {}/s",
                    format_bytes(value("speed").unwrap_or_default())
                ));
            }
            if let Some(tls) = &d.tls {
                let mut s = tls.version.clone();
                if let (Some(at), Some(days)) = (&tls.cert_not_after, tls.cert_days_left) {
                    let _ = write!(s, ", certificate valid until {at} ({days:.1} days)");
                }
                facts.push(s);
            }
            (
                &["dns", "connect", "tls", "wait", "download"],
                &["ttfb", "total"],
            )
        }
        Detail::Tcp {
            remote_addr,
            banner,
        } => {
            if let Some(addr) = remote_addr {
                let _ = write!(head, "  →  {addr}");
            }
            if let Some(b) = banner {
                facts.push(format!("banner {}", short(b)));
            }
            (&["dns", "connect"], &["total"])
        }
        Detail::Tls { remote_addr, tls } => {
            if let Some(addr) = remote_addr {
                let _ = write!(head, "  →  {addr}");
            }
            if let Some(t) = tls {
                let _ = write!(head, "  {}", t.version);
                let mut s = String::from("certificate");
                if let Some(subject) = &t.subject {
                    let _ = write!(s, " {subject}");
                }
                if let Some(issuer) = &t.issuer {
                    let _ = write!(s, ", issued by {issuer}");
                }
                if let (Some(at), Some(days)) = (&t.cert_not_after, t.cert_days_left) {
                    let _ = write!(s, ", valid until {at} ({days:.1} days)");
                }
                facts.push(s);
                facts.push(match &t.verify_error {
                    None if t.verified => "chain verified".to_string(),
                    None => "chain not verified".to_string(),
                    Some(why) => format!("chain NOT verified: {why}"),
                });
            }
            (&["dns", "connect", "tls"], &["total"])
        }
        Detail::Dns {
            server,
            rcode,
            answers,
        } => {
            if let Some(server) = server {
                let _ = write!(head, "  @ {server}");
            }
            if let Some(rcode) = rcode {
                let _ = write!(head, "  {rcode}");
                if answers.is_empty() {
                    lines.push("no answers".to_string());
                }
                for a in answers {
                    lines.push(format!("answer {}", short(a)));
                }
            }
            (&["query"], &["total"])
        }
        // `watchpost check` takes no kafka target (`watchpost lag` reads lag); shown for
        // completeness.
        Detail::KafkaLag(d) => {
            let _ = write!(head, "  group {}", d.group);
            for t in &d.topics {
                lines.push(format!(
                    "topic {} lag {} {}",
                    t.topic,
                    t.lag.map_or("unknown".to_string(), |l| l.to_string()),
                    t.status
                ));
            }
            (&[], &[])
        }
    };
    let _ = writeln!(out, "{head}\n");

    let total_ms = value("total").unwrap_or_default().max(f64::EPSILON);
    let scale = |v: f64| ((v / total_ms) * BAR_WIDTH as f64).round() as usize;
    let mut offset = 0.0;
    for name in phases {
        match value(name) {
            Some(v) => {
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
    for name in extra {
        if let Some(v) = value(name) {
            let _ = writeln!(out, "  {name:<9}{v:>11.3} ms");
        }
    }
    let _ = writeln!(out);
    if o.kind == CheckKind::Tls
        && let Some(days) = value("cert_days")
    {
        facts.insert(0, format!("cert_days {days:.1}"));
    }
    if !facts.is_empty() {
        let _ = writeln!(out, "  {}\n", facts.join("   "));
    }
    if !lines.is_empty() {
        for line in &lines {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(out);
    }

    if failures.is_empty() {
        let list: Vec<&str> = conditions.iter().map(|c| c.source.as_str()).collect();
        if list.is_empty() {
            let _ = writeln!(out, "  PASS");
        } else {
            let _ = writeln!(out, "  PASS  {}", list.join(", "));
        }
    } else {
        for f in failures {
            let _ = writeln!(out, "  FAIL  {}", f.text);
        }
    }
    out
}

/// A received text as a quoted, shortened line.
fn short(text: &str) -> String {
    let mut s: String = text.chars().take(100).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    format!("{s:?}")
}
