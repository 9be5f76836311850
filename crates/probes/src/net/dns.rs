//! Name resolution with hickory-resolver. A new resolver is built for every check, so no
//! answer is cached between checks: each check measures a real lookup.
//!
//! When the lookup fails without an answer from a name server, and this machine can't open a
//! socket right now for want of descriptors, memory or buffers, the failure is
//! [`ErrorKind::Local`] (hickory reports its own socket errors only as "no connections
//! available", so the cause is checked by opening one).

use crate::error::{ErrorKind, Phase, ProbeError, RequestError};
use hickory_resolver::Resolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

/// Where lookups go: the system configuration (read lazily, kept once read successfully) or
/// explicit name servers.
pub(crate) struct Dns {
    nameservers: Option<Vec<SocketAddr>>,
    system: OnceLock<(ResolverConfig, ResolverOpts)>,
}

impl Dns {
    pub fn new(nameservers: Option<Vec<SocketAddr>>) -> Self {
        Dns {
            nameservers,
            system: OnceLock::new(),
        }
    }

    fn setup(&self) -> Result<(ResolverConfig, ResolverOpts), ProbeError> {
        if let Some(servers) = &self.nameservers {
            let configs = servers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            return Ok((
                ResolverConfig::from_parts(None, Vec::new(), configs),
                ResolverOpts::default(),
            ));
        }
        if let Some(system) = self.system.get() {
            return Ok(system.clone());
        }
        // A failure is not kept: reading /etc/resolv.conf while out of descriptors fails now
        // and works later.
        match hickory_resolver::system_conf::read_system_conf() {
            Ok(system) => Ok(self.system.get_or_init(|| system).clone()),
            Err(e) => {
                let local = match &e {
                    NetError::Io(io) => ProbeError::local(Phase::Dns, io),
                    _ => None,
                };
                Err(local.or_else(local_now).unwrap_or_else(|| {
                    ProbeError::new(
                        Phase::Dns,
                        ErrorKind::Resolver,
                        RequestError::Resolver(e.to_string()).to_string(),
                    )
                }))
            }
        }
    }

    /// The name server a DNS check asks when it names none: the first configured one (explicit
    /// name servers first, else the first `nameserver` of the system configuration, on its
    /// UDP port).
    pub fn first_nameserver(&self) -> Result<SocketAddr, ProbeError> {
        if let Some(first) = self.nameservers.as_ref().and_then(|s| s.first()) {
            return Ok(*first);
        }
        let (config, _) = self.setup()?;
        config
            .name_servers()
            .first()
            .map(|ns| {
                let port = ns
                    .connections
                    .iter()
                    .find(|c| matches!(c.protocol, hickory_resolver::config::ProtocolConfig::Udp))
                    .or(ns.connections.first())
                    .map_or(53, |c| c.port);
                SocketAddr::new(ns.ip, port)
            })
            .ok_or_else(|| {
                ProbeError::new(
                    Phase::Query,
                    ErrorKind::Resolver,
                    "the system DNS configuration names no name server (give server=IP:PORT)",
                )
            })
    }

    /// Resolve `host` to its addresses (A first, then AAAA, queried in parallel).
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, ProbeError> {
        let (config, mut opts) = self.setup()?;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.cache_size = 0;
        let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = opts;
        let resolver = builder.build().map_err(|e| {
            local_now()
                .unwrap_or_else(|| ProbeError::new(Phase::Dns, ErrorKind::Resolver, e.to_string()))
        })?;
        // A trailing dot makes the name absolute: no search-domain queries, one lookup.
        let fqdn = if host.ends_with('.') {
            host.to_string()
        } else {
            format!("{host}.")
        };
        match resolver.lookup_ip(fqdn.as_str()).await {
            Ok(answer) => {
                let ips: Vec<IpAddr> = answer.iter().collect();
                if ips.is_empty() {
                    Err(ProbeError::new(
                        Phase::Dns,
                        ErrorKind::NoAddress,
                        format!("{host} has no A or AAAA record"),
                    ))
                } else {
                    Ok(ips)
                }
            }
            Err(e) => Err(classify(host, &e)),
        }
    }
}

/// A [`ErrorKind::Local`] error when this machine can't open a socket at this moment for want
/// of a resource (tried with a UDP socket, which is closed at once).
fn local_now() -> Option<ProbeError> {
    match std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0)) {
        Ok(_) => None,
        Err(e) => ProbeError::local(Phase::Dns, &e),
    }
}

fn classify(host: &str, err: &NetError) -> ProbeError {
    // An answer from a name server says nothing about this machine; anything else may be
    // hickory failing to open its sockets.
    if !matches!(err, NetError::Dns(_)) {
        let io = match err {
            NetError::Io(io) => ProbeError::local(Phase::Dns, io),
            _ => None,
        };
        if let Some(local) = io.or_else(local_now) {
            return local;
        }
    }
    let (kind, message) = match err {
        NetError::Dns(DnsError::NoRecordsFound(no))
            if no.response_code == ResponseCode::NXDomain =>
        {
            (
                ErrorKind::Nxdomain,
                format!("{host}: no such domain (NXDOMAIN)"),
            )
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => (
            ErrorKind::NoAddress,
            format!("{host} has no A or AAAA record"),
        ),
        NetError::Timeout => (
            ErrorKind::Timeout,
            format!("{host}: the name servers did not answer in time"),
        ),
        other => (ErrorKind::Resolver, format!("{host}: {other}")),
    };
    ProbeError::new(Phase::Dns, kind, message)
}
