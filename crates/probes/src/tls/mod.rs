//! The `tls` kind: resolve, connect, shake hands, and report the session and the server's
//! certificate — for any TLS service (SMTPS, IMAPS, MQTT over TLS, an HTTPS port).
//!
//! ```text
//! start ─dns─► resolved ─connect─► TCP up ─tls─► handshake done
//! ```
//! Metrics: `dns`, `connect`, `tls`, `total`, and `cert_days` (days left on the leaf
//! certificate, negative once expired). The chain is verified (webpki roots plus the extra
//! CAs) for the SNI name — `sni`, else the host — but the handshake completes either way, so
//! an expired or untrusted certificate is still described. Unless `insecure`, a chain that did
//! not verify is the error `{phase: tls, kind: certificate}` with the reason.

pub use crate::net::tls::TlsInfo;

use crate::CheckKind;
use crate::error::{ErrorKind, Phase, ProbeError};
use crate::net::{Laps, Net, later, tls, within};
use crate::observation::{Detail, Observation};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use watchpost_units::{Metric, Unit};

/// One TLS check.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsCheck {
    pub host: String,
    pub port: u16,
    /// The name sent as SNI and verified against the certificate (default: `host`).
    pub sni: Option<String>,
    /// Don't fail the check on a certificate that does not verify (it is still reported).
    pub insecure: bool,
    /// The whole check's deadline.
    pub timeout: Duration,
}

impl TlsCheck {
    /// `tls://HOST:PORT` (`?sni=NAME` when one is set).
    pub fn target_url(&self) -> String {
        let mut url = format!("tls://{}", crate::kind::host_port(&self.host, self.port));
        if let Some(sni) = &self.sni {
            url.push_str("?sni=");
            url.push_str(sni);
        }
        url
    }
}

pub(crate) async fn run(net: &Net, check: &TlsCheck) -> Observation {
    let start = Instant::now();
    let deadline = later(start, check.timeout);
    let mut laps = Laps::new(start);
    let mut remote_addr = None;
    let mut info = None;
    let error = probe(net, check, deadline, &mut laps, &mut remote_addr, &mut info)
        .await
        .err();
    let mut metrics = laps.finish();
    if let Some(days) = info.as_ref().and_then(|i: &TlsInfo| i.cert_days_left) {
        metrics.push(Metric::new("cert_days", days, Unit::Days));
    }
    Observation {
        kind: CheckKind::Tls,
        url: check.target_url(),
        metrics,
        error,
        detail: Detail::Tls {
            remote_addr,
            tls: info,
        },
    }
}

async fn probe(
    net: &Net,
    check: &TlsCheck,
    deadline: Instant,
    laps: &mut Laps,
    remote_addr: &mut Option<SocketAddr>,
    info: &mut Option<TlsInfo>,
) -> Result<(), ProbeError> {
    let name = tls::server_name(check.sni.as_deref().unwrap_or(&check.host))?;
    let tcp = net
        .open(&check.host, check.port, deadline, laps, remote_addr)
        .await?;
    let (config, refusal) = net.tls.recording();
    let shaken = within(
        Phase::Tls,
        None,
        deadline,
        tls::handshake(config, name, tcp),
    )
    .await;
    laps.lap("tls");
    let stream = shaken??;
    let why = refusal.lock().ok().and_then(|mut slot| slot.take());
    let session = tls::session_info(stream.get_ref().1, true, why.clone());
    *info = Some(session);
    match why {
        Some(reason) if !check.insecure => {
            Err(ProbeError::new(Phase::Tls, ErrorKind::Certificate, reason))
        }
        _ => Ok(()),
    }
}
