//! The `tcp` kind: resolve, connect, and optionally send a line and wait for a banner.
//!
//! ```text
//! start ─dns─► resolved ─connect─► TCP up [─ send, read until `expect` appears ─►] done
//! ```
//! Metrics: `dns`, `connect`, `total`. With `expect`, the reply is read until it contains the
//! expected text, the peer closes, 64 KiB arrived, or the deadline passes; anything but the
//! text is an error in phase `banner` (`mismatch`, `closed` or `timeout`), and what arrived is
//! the `banner` detail. Without `expect`, a `send` is written and nothing is read.

use crate::CheckKind;
use crate::error::{ErrorKind, Phase, ProbeError};
use crate::net::{Laps, Net, later, within};
use crate::observation::{Detail, Observation};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most of a reply a banner check reads.
pub const MAX_BANNER: usize = 64 * 1024;

/// One TCP check.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpCheck {
    pub host: String,
    pub port: u16,
    /// Bytes written once connected (`PING\r\n`).
    pub send: Option<Vec<u8>>,
    /// Text the reply must contain (`+PONG`).
    pub expect: Option<String>,
    /// The whole check's deadline.
    pub timeout: Duration,
}

impl TcpCheck {
    /// `tcp://HOST:PORT`, without user info.
    pub fn target_url(&self) -> String {
        format!("tcp://{}", crate::kind::host_port(&self.host, self.port))
    }
}

pub(crate) async fn run(net: &Net, check: &TcpCheck) -> Observation {
    let start = Instant::now();
    let deadline = later(start, check.timeout);
    let mut laps = Laps::new(start);
    let mut remote_addr = None;
    let mut banner = None;
    let error = probe(
        net,
        check,
        deadline,
        &mut laps,
        &mut remote_addr,
        &mut banner,
    )
    .await
    .err();
    Observation {
        kind: CheckKind::Tcp,
        url: check.target_url(),
        metrics: laps.finish(),
        error,
        detail: Detail::Tcp {
            remote_addr,
            banner,
        },
    }
}

async fn probe(
    net: &Net,
    check: &TcpCheck,
    deadline: Instant,
    laps: &mut Laps,
    remote_addr: &mut Option<SocketAddr>,
    banner: &mut Option<String>,
) -> Result<(), ProbeError> {
    let mut tcp = net
        .open(&check.host, check.port, deadline, laps, remote_addr)
        .await?;
    if check.send.is_none() && check.expect.is_none() {
        return Ok(());
    }
    // Without `expect` the exchange is only the write.
    let exchange = talk(&mut tcp, check, banner);
    match within(Phase::Banner, None, deadline, exchange).await {
        Ok(result) => result,
        Err(timeout) => Err(match (&check.expect, banner.as_deref()) {
            (Some(want), Some(got)) => ProbeError::new(
                Phase::Banner,
                ErrorKind::Timeout,
                format!(
                    "no {want:?} in the reply before the deadline (got {})",
                    preview(got)
                ),
            ),
            (Some(want), None) => ProbeError::new(
                Phase::Banner,
                ErrorKind::Timeout,
                format!("the server sent nothing before the deadline (expected {want:?})"),
            ),
            _ => timeout,
        }),
    }
}

/// Write `send`, then read until `expect` shows up (or, without `expect`, one read).
async fn talk(
    tcp: &mut TcpStream,
    check: &TcpCheck,
    banner: &mut Option<String>,
) -> Result<(), ProbeError> {
    let io_err = |e: std::io::Error| {
        ProbeError::local(Phase::Banner, &e).unwrap_or_else(|| {
            ProbeError::new(Phase::Banner, crate::error::io_kind(&e), e.to_string())
        })
    };
    if let Some(bytes) = &check.send {
        tcp.write_all(bytes).await.map_err(io_err)?;
        tcp.flush().await.map_err(io_err)?;
    }
    let Some(want) = &check.expect else {
        return Ok(());
    };
    let mut got: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let room = MAX_BANNER - got.len();
        let n = tcp
            .read(&mut buf[..room.min(8 * 1024)])
            .await
            .map_err(io_err)?;
        got.extend_from_slice(&buf[..n]);
        if n > 0 {
            *banner = Some(String::from_utf8_lossy(&got).into_owned());
        }
        let text = banner.as_deref().unwrap_or("");
        if text.contains(want.as_str()) {
            return Ok(());
        }
        if n == 0 {
            return Err(ProbeError::new(
                Phase::Banner,
                if got.is_empty() {
                    ErrorKind::Closed
                } else {
                    ErrorKind::Mismatch
                },
                if got.is_empty() {
                    format!("the server closed the connection without a reply (expected {want:?})")
                } else {
                    format!("expected {want:?}, got {}", preview(text))
                },
            ));
        }
        if got.len() >= MAX_BANNER {
            return Err(ProbeError::new(
                Phase::Banner,
                ErrorKind::Mismatch,
                format!("no {want:?} in the first 64 KiB of the reply"),
            ));
        }
    }
}

/// The start of a reply, quoted, for messages.
fn preview(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    format!("{s:?}")
}
