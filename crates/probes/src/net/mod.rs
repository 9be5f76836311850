//! What every network probe does before it speaks its own protocol: resolve the name, connect
//! over TCP, maybe shake hands over TLS, each under its own limit and the check's deadline, with
//! failures classified (a timeout names its phase; running out of descriptors, memory or ports
//! is [`ErrorKind::Local`]). The `http`, `tcp` and `tls` kinds all use this code; the `dns` kind
//! uses the deadline helpers.

pub(crate) mod dns;
pub(crate) mod tls;

use crate::error::{ErrorKind, Phase, ProbeError, RequestError};
use crate::http::ResolveOverride;
use crate::http::timing::ms;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use watchpost_units::{Metric, Unit};

/// Settings shared by many checks (built once, reused).
#[derive(Debug, Clone, Default)]
pub struct ProberOptions {
    /// CA certificates trusted in addition to the webpki roots (private CAs, tests).
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Name servers to ask instead of the system's (`/etc/resolv.conf`); the first is also
    /// the server a `dns` check asks when it names none.
    pub nameservers: Option<Vec<SocketAddr>>,
}

/// The TLS configs and the DNS setup, built once and shared by every kind.
pub(crate) struct Net {
    pub tls: tls::TlsConfigs,
    pub dns: dns::Dns,
}

impl Net {
    pub fn new(options: ProberOptions) -> Result<Self, RequestError> {
        Ok(Net {
            tls: tls::TlsConfigs::new(&options.extra_roots)?,
            dns: dns::Dns::new(options.nameservers),
        })
    }

    /// The addresses of `host` (an IP literal, bracketed or not, needs no lookup; nor does a
    /// host pinned by `resolve` for this port). The flag says whether a lookup happened.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        resolve: &[ResolveOverride],
        limit: Option<Duration>,
        deadline: Instant,
    ) -> Result<(Vec<IpAddr>, bool), ProbeError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok((vec![ip], false));
        }
        let name = host.to_ascii_lowercase();
        if let Some(pinned) = resolve.iter().find(|o| o.host == name && o.port == port) {
            return Ok((vec![pinned.addr], false));
        }
        let ips = within(Phase::Dns, limit, deadline, self.dns.lookup(&name)).await??;
        Ok((ips, true))
    }

    /// Resolve `host` and connect to `port` on the first address that answers, timing the
    /// `dns` and `connect` laps; `remote_addr` is the address tried (then the one connected).
    /// The start of every kind that speaks over its own TCP connection (tcp, tls).
    pub async fn open(
        &self,
        host: &str,
        port: u16,
        deadline: Instant,
        laps: &mut Laps,
        remote_addr: &mut Option<SocketAddr>,
    ) -> Result<TcpStream, ProbeError> {
        let (ips, looked_up) = match self.resolve(host, port, &[], None, deadline).await {
            Ok(found) => found,
            Err(e) => {
                laps.lap("dns");
                return Err(e);
            }
        };
        if looked_up {
            laps.lap("dns");
        } else {
            laps.skip("dns");
        }
        *remote_addr = ips.first().map(|ip| SocketAddr::new(*ip, port));
        let connected = connect(&ips, port, None, deadline).await;
        laps.lap("connect");
        let (tcp, addr) = connected?;
        *remote_addr = Some(addr);
        Ok(tcp)
    }
}

/// Timing of a check's phases in order: each [`Laps::lap`] ends the phase in progress, so
/// phases add up to the total, and the phase a failure interrupted holds the time spent in it.
pub(crate) struct Laps {
    pub start: Instant,
    last: Instant,
    pub metrics: Vec<Metric>,
}

impl Laps {
    pub fn new(start: Instant) -> Self {
        Laps {
            start,
            last: start,
            metrics: Vec::new(),
        }
    }

    /// End phase `name` now.
    pub fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.metrics.push(Metric::new(
            name,
            ms(now.saturating_duration_since(self.last)),
            Unit::Ms,
        ));
        self.last = now;
    }

    /// A phase that took no time (no lookup for an IP literal).
    pub fn skip(&mut self, name: &'static str) {
        self.metrics.push(Metric::new(name, 0.0, Unit::Ms));
    }

    /// `total`, start → now; the metrics.
    pub fn finish(mut self) -> Vec<Metric> {
        let total = ms(Instant::now().saturating_duration_since(self.start));
        self.metrics.push(Metric::new("total", total, Unit::Ms));
        self.metrics
    }
}

/// Run `fut` under the phase's limit (bounded by the deadline); a timeout names the phase.
pub(crate) async fn within<F: Future>(
    phase: Phase,
    limit: Option<Duration>,
    deadline: Instant,
    fut: F,
) -> Result<F::Output, ProbeError> {
    let now = Instant::now();
    let (until, what) = match limit.and_then(|l| Some((l, now.checked_add(l)?))) {
        Some((l, until)) if until < deadline => (until, format!("its {} limit", human(l))),
        _ => (deadline, "the overall deadline".to_string()),
    };
    tokio::time::timeout_at(until.into(), fut)
        .await
        .map_err(|_| {
            ProbeError::new(
                phase,
                ErrorKind::Timeout,
                format!(
                    "{phase} timed out after {} ({what})",
                    human(Instant::now().saturating_duration_since(now))
                ),
            )
        })
}

/// The longest wait a deadline is set to: longer ones are cut to this (still "never" for a
/// check), so instant arithmetic can't overflow.
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `start + d`, with `d` cut to [`FAR_FUTURE`] (and to what the platform's clock can hold).
pub(crate) fn later(start: Instant, d: Duration) -> Instant {
    let d = d.min(FAR_FUTURE);
    start
        .checked_add(d)
        .or_else(|| start.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(start)
}

pub(crate) fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Connect to the first of `ips` that accepts, under the connect limit and the deadline.
pub(crate) async fn connect(
    ips: &[IpAddr],
    port: u16,
    limit: Option<Duration>,
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr), ProbeError> {
    let (tcp, addr) = within(Phase::Connect, limit, deadline, connect_any(ips, port)).await??;
    let _ = tcp.set_nodelay(true);
    Ok((tcp, addr))
}

/// Try each address in order; the first that accepts wins. The connect phase includes the
/// failed attempts (reported in the error when all fail).
pub(crate) async fn connect_any(
    ips: &[IpAddr],
    port: u16,
) -> Result<(TcpStream, SocketAddr), ProbeError> {
    let mut last = None;
    for ip in ips {
        let addr = SocketAddr::new(*ip, port);
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok((stream, addr)),
            // Out of descriptors, buffers or memory for one address means out of them for
            // all. EADDRNOTAVAIL can be about one address (::1 where loopback has no IPv6):
            // the next may work, and the last error decides.
            Err(e) => match ProbeError::local(Phase::Connect, &e) {
                Some(local) if e.raw_os_error() != Some(libc::EADDRNOTAVAIL) => {
                    return Err(local);
                }
                _ => last = Some((addr, e)),
            },
        }
    }
    let Some((addr, err)) = last else {
        return Err(ProbeError::new(
            Phase::Connect,
            ErrorKind::NoAddress,
            format!("no address to connect to on port {port}"),
        ));
    };
    if let Some(local) = ProbeError::local(Phase::Connect, &err) {
        return Err(local);
    }
    let kind = crate::error::io_kind(&err);
    let what = match kind {
        ErrorKind::Refused => "connection refused".to_string(),
        _ => err.to_string(),
    };
    Err(ProbeError::new(
        Phase::Connect,
        kind,
        format!("{addr}: {what}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(later(now, Duration::MAX), now + FAR_FUTURE);
        assert!(later(now, Duration::from_secs(3650 * 86_400)) > now);
    }

    #[tokio::test]
    async fn no_address_is_an_error_not_a_panic() {
        let e = connect_any(&[], 80).await.unwrap_err();
        assert_eq!((e.phase, e.kind), (Phase::Connect, ErrorKind::NoAddress));
        assert!(e.message.contains("no address"), "{e}");
    }

    #[tokio::test]
    async fn huge_phase_limits_fall_back_to_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(50);
        let e = within(
            Phase::Wait,
            Some(Duration::MAX),
            deadline,
            std::future::pending::<()>(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.message.contains("overall deadline"), "{e}");
    }
}
