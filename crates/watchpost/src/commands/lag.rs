//! `watchpost lag`: the consumer-group lag of a Kafka cluster, now — a table per group and
//! topic, or with `--json` the report `{"groups":[{"group","state","members","lag","topics":
//! [{"topic","lag","partitions":[{"partition","committed","end","lag"}]}]}]}`.
//!
//! Exit 0 when the report was read (whatever the lag: judging it is a monitor's job); 1 when
//! the cluster can't be reached or read, or a group asked for by `--group` doesn't exist or
//! can't be read; 2 for bad usage.

use crate::EXIT_USAGE;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use watchpost_kafka::ckafka::{CkafkaSource, ckafka_lag};
use watchpost_kafka::{Cluster, GroupLag, LagReport, Sasl, SaslMechanism, Settings, Tls};

#[derive(Args)]
pub struct LagArgs {
    /// A broker to start from, HOST:PORT (repeatable; the first that answers is used).
    #[arg(
        long = "bootstrap",
        short = 'b',
        required_unless_present = "ckafka",
        conflicts_with = "ckafka",
        value_name = "HOST:PORT"
    )]
    bootstrap: Vec<String>,
    /// Read the lag through Tencent Cloud's CKafka API instead of the brokers: the instance
    /// id (needs --group, --region and the key in $TENCENTCLOUD_SECRET_ID and
    /// $TENCENTCLOUD_SECRET_KEY).
    #[arg(long, value_name = "INSTANCE_ID", requires_all = ["region", "groups"])]
    ckafka: Option<String>,
    /// With --ckafka: the instance's region, e.g. ap-guangzhou.
    #[arg(long, value_name = "REGION", requires = "ckafka")]
    region: Option<String>,
    /// With --ckafka: the API endpoint (default https://ckafka.tencentcloudapi.com).
    #[arg(long, value_name = "URL", requires = "ckafka")]
    endpoint: Option<String>,
    /// Only this consumer group (repeatable); without it, every group the cluster lists.
    #[arg(long = "group", short = 'g', value_name = "GROUP")]
    groups: Vec<String>,
    /// Only this topic (repeatable); without it, every topic a group commits to.
    #[arg(long = "topic", short = 't', value_name = "TOPIC")]
    topics: Vec<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Give up after this long (all requests included).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Connect with TLS (verified against the webpki roots and --cacert).
    #[arg(long)]
    tls: bool,
    /// With --tls (or an https --endpoint): also trust the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// With --tls: accept any certificate (the handshake is still done).
    #[arg(long, short = 'k', requires = "tls")]
    insecure: bool,
    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (needs --username and a
    /// password in $WATCHPOST_SASL_PASSWORD, so it never shows in `ps`).
    #[arg(long, value_name = "MECHANISM", requires = "username")]
    sasl: Option<String>,
    /// SASL user name.
    #[arg(long, value_name = "USER", requires = "sasl")]
    username: Option<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    watchpost_units::parse_duration(text)
}

/// The cluster settings the flags describe, or a usage error.
fn settings(args: &LagArgs) -> Result<Settings, String> {
    for b in &args.bootstrap {
        let ok = b
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err(format!(
                "--bootstrap {b:?}: expected HOST:PORT, e.g. kafka-1:9092"
            ));
        }
    }
    if args.cacert.is_some() && !args.tls && args.ckafka.is_none() {
        return Err("--cacert applies with --tls (or an https --endpoint with --ckafka)".into());
    }
    let mut settings = Settings::new(args.bootstrap.clone());
    if args.tls {
        let config = if args.insecure {
            watchpost_net::insecure_config(&[])
        } else {
            let extra = match &args.cacert {
                Some(path) => watchpost_net::load_ca_file(path)
                    .map_err(|e| format!("--cacert {}: {}", path.display(), e.reason))?,
                None => Vec::new(),
            };
            watchpost_net::verified_config(&extra, &[]).map_err(|e| e.reason)?
        };
        settings.tls = Some(Tls {
            config: Arc::new(config),
            server_name: None,
            id: "cli".into(),
        });
    }
    if let Some(name) = &args.sasl {
        let mechanism = match name.to_ascii_uppercase().as_str() {
            "PLAIN" => SaslMechanism::Plain,
            "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
            "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
            other => {
                return Err(format!(
                    "--sasl {other:?}: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                ));
            }
        };
        let password = std::env::var("WATCHPOST_SASL_PASSWORD").map_err(|_| {
            "--sasl needs the password in the environment variable WATCHPOST_SASL_PASSWORD"
                .to_string()
        })?;
        settings.sasl = Some(Sasl {
            mechanism,
            username: args.username.clone().unwrap_or_default(),
            password,
        });
    }
    Ok(settings)
}

/// The CKafka API source the flags describe, or a usage error.
fn ckafka_source(args: &LagArgs, instance: &str) -> Result<CkafkaSource, String> {
    let endpoint = args
        .endpoint
        .as_deref()
        .unwrap_or("https://ckafka.tencentcloudapi.com");
    let endpoint = url::Url::parse(endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| format!("--endpoint {endpoint:?}: expected an http(s) URL"))?;
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("--ckafka needs the API key in ${name}"))
    };
    let extra_roots = match &args.cacert {
        Some(path) => watchpost_net::load_ca_file(path)
            .map_err(|e| format!("--cacert {}: {}", path.display(), e.reason))?,
        None => Vec::new(),
    };
    Ok(CkafkaSource {
        endpoint,
        region: args.region.clone().unwrap_or_default(),
        instance_id: instance.to_string(),
        secret_id: env("TENCENTCLOUD_SECRET_ID")?,
        secret_key: env("TENCENTCLOUD_SECRET_KEY")?,
        extra_roots,
    })
}

/// Every named group through the CKafka API, one after the other, within one deadline; a
/// group the API can't read carries its error.
async fn ckafka_report(
    source: &CkafkaSource,
    groups: &[String],
    topics: Option<&[String]>,
    deadline: tokio::time::Instant,
) -> LagReport {
    let mut report = LagReport { groups: Vec::new() };
    for group in groups {
        match ckafka_lag(source, group, topics, deadline).await {
            Ok(one) => report.groups.extend(one.groups),
            Err(e) => report.groups.push(GroupLag {
                group: group.clone(),
                state: String::new(),
                members: 0,
                lag: None,
                topics: Vec::new(),
                error: Some(e.to_string()),
            }),
        }
    }
    report
}

pub fn run(args: LagArgs) -> ExitCode {
    let source = match &args.ckafka {
        Some(instance) => match ckafka_source(&args, instance) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("watchpost: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => None,
    };
    let settings = match settings(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("watchpost: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match crate::tokio_runtime(false, crate::BLOCKING_THREADS) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let groups = (!args.groups.is_empty()).then_some(args.groups.as_slice());
    let topics = (!args.topics.is_empty()).then_some(args.topics.as_slice());
    let report = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + args.timeout;
        match &source {
            Some(source) => Ok(ckafka_report(source, &args.groups, topics, deadline).await),
            None => {
                let cluster = Cluster::new(settings);
                watchpost_kafka::lag(&cluster, groups, topics, deadline).await
            }
        }
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("watchpost: {e}");
            return ExitCode::from(1);
        }
    };
    if args.json {
        match serde_json::to_string(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("watchpost: cannot print the report: {e}");
                return ExitCode::from(crate::EXIT_INTERNAL);
            }
        }
    } else {
        print!("{}", table(&report));
    }
    // A group asked for by name that could not be read is this command's failure.
    let failed: Vec<&GroupLag> = report.groups.iter().filter(|g| g.error.is_some()).collect();
    for g in &failed {
        eprintln!(
            "watchpost: group {:?}: {}",
            g.group,
            g.error.as_deref().unwrap_or_default()
        );
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `—` for an unknown value.
fn num(v: Option<i64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| v.to_string())
}

/// One block per group: its state, members and lag, then a line per topic and partition.
fn table(report: &LagReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if report.groups.is_empty() {
        out.push_str("no consumer groups\n");
    }
    for g in &report.groups {
        let _ = writeln!(
            out,
            "group {}  state {}  members {}  lag {}",
            g.group,
            if g.state.is_empty() { "—" } else { &g.state },
            g.members,
            num(g.lag)
        );
        if let Some(e) = &g.error {
            let _ = writeln!(out, "  error: {e}\n");
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<30} {:>9} {:>14} {:>14} {:>12}",
            "topic", "partition", "committed", "end", "lag"
        );
        for t in &g.topics {
            for p in &t.partitions {
                let _ = writeln!(
                    out,
                    "  {:<30} {:>9} {:>14} {:>14} {:>12}",
                    t.topic,
                    p.partition,
                    num(p.committed),
                    p.end,
                    num(p.lag)
                );
            }
            let _ = writeln!(
                out,
                "  {:<30} {:>9} {:>14} {:>14} {:>12}",
                format!("{} (sum)", t.topic),
                "",
                "",
                "",
                num(t.lag)
            );
        }
        out.push('\n');
    }
    out
}
