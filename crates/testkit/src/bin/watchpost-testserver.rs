//! Starts testkit servers from the command line, for benchmark scripts (`bench/`) that drive
//! other tools (curl, blackbox_exporter) against the same servers the tests use.

use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use watchpost_testkit::{DnsServer, HttpServer, TestCa, TlsOptions};

#[derive(Parser)]
#[command(about = "Local test servers for watchpost's benchmarks (loopback only)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// HTTP (or HTTPS with --tls-dir) server; see the testkit docs for the paths it serves.
    Http {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Serve TLS: write the test CA to DIR/ca.pem and use a leaf for --name.
        #[arg(long)]
        tls_dir: Option<PathBuf>,
        /// Names in the leaf certificate.
        #[arg(long, default_value = "localhost")]
        name: Vec<String>,
        /// Delay before answering the ClientHello, in ms.
        #[arg(long, default_value_t = 0)]
        tls_delay_ms: u64,
    },
    /// UDP DNS responder: --record NAME=IP (repeatable), NXDOMAIN for other names.
    Dns {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[arg(long)]
        record: Vec<String>,
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    for addr in match &cli.cmd {
        Cmd::Http { listen, .. } | Cmd::Dns { listen, .. } => [listen],
    } {
        anyhow::ensure!(addr.ip().is_loopback(), "listen on a loopback address only");
    }
    match cli.cmd {
        Cmd::Http {
            listen,
            tls_dir,
            name,
            tls_delay_ms,
        } => {
            let tls = match tls_dir {
                None => None,
                Some(dir) => {
                    std::fs::create_dir_all(&dir)?;
                    let ca = TestCa::new("watchpost bench CA");
                    std::fs::write(dir.join("ca.pem"), &ca.cert_pem)?;
                    let names: Vec<&str> = name.iter().map(String::as_str).collect();
                    Some(TlsOptions {
                        config: ca.leaf(&names).server_config(&[b"http/1.1"]),
                        handshake_delay: Duration::from_millis(tls_delay_ms),
                        stall: false,
                    })
                }
            };
            let server = HttpServer::start_on(listen, tls).await;
            println!("listening on {}", server.addr);
            std::future::pending::<()>().await;
        }
        Cmd::Dns {
            listen,
            record,
            delay_ms,
        } => {
            let mut records: Vec<(String, IpAddr)> = Vec::new();
            for r in &record {
                let (name, ip) = r
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--record takes NAME=IP, got {r:?}"))?;
                records.push((name.to_string(), ip.parse()?));
            }
            let refs: Vec<(&str, IpAddr)> = records.iter().map(|(n, i)| (n.as_str(), *i)).collect();
            let server =
                DnsServer::start_on(listen, &refs, Duration::from_millis(delay_ms), false).await;
            println!("listening on {}", server.addr);
            std::future::pending::<()>().await;
        }
    }
    Ok(())
}
