//! The `dns` kind: one query, over UDP, to one name server, timed; the reply's rcode and
//! answers are the observation.
//!
//! ```text
//! start ─query─► reply parsed
//! ```
//! Metrics: `query` (query sent → reply received) and `total`. The server is the check's
//! `server`, else the first configured name server (`/etc/resolv.conf`, or the probes' own
//! name servers). Any rcode is an observation, not an error (NXDOMAIN is a fact conditions
//! judge; the default condition is `rcode == "NOERROR"`). Errors, all in phase `query`: no
//! reply before the deadline (`timeout`), a reply that is not a DNS message (`malformed`), an
//! ICMP refusal (`refused`), this machine out of sockets (`local`). Replies with another id,
//! from another address, or not answering the question asked are ignored, as a resolver does.

use crate::CheckKind;
use crate::error::{ErrorKind, Phase, ProbeError};
use crate::net::{Net, later, within};
use crate::observation::{Detail, Observation};
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType as Rr};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use watchpost_units::{Metric, Unit};

/// The record types a DNS check asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
}

impl RecordType {
    pub const ALL: [RecordType; 6] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Cname,
        RecordType::Mx,
        RecordType::Txt,
        RecordType::Ns,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Mx => "MX",
            RecordType::Txt => "TXT",
            RecordType::Ns => "NS",
        }
    }

    fn wire(self) -> Rr {
        match self {
            RecordType::A => Rr::A,
            RecordType::Aaaa => Rr::AAAA,
            RecordType::Cname => Rr::CNAME,
            RecordType::Mx => Rr::MX,
            RecordType::Txt => Rr::TXT,
            RecordType::Ns => Rr::NS,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordType {
    type Err = String;

    /// `A`, `aaaa`, ... (any case).
    fn from_str(s: &str) -> Result<Self, String> {
        RecordType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown record type {s:?} (use A, AAAA, CNAME, MX, TXT or NS)"))
    }
}

/// One DNS check.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsCheck {
    /// The name asked for (`example.com`; a trailing dot is allowed).
    pub name: String,
    pub record: RecordType,
    /// The name server asked (default: the first configured one).
    pub server: Option<SocketAddr>,
    /// The whole check's deadline.
    pub timeout: Duration,
}

impl DnsCheck {
    /// `dns://NAME?type=A` (`&server=IP:PORT` when one is set).
    pub fn target_url(&self) -> String {
        let mut url = format!("dns://{}?type={}", self.name, self.record);
        if let Some(server) = self.server {
            url.push_str(&format!("&server={server}"));
        }
        url
    }
}

/// An rcode as people write it: `NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`, ...
pub fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// What a reply said.
struct Reply {
    rcode: String,
    answers: Vec<String>,
}

pub(crate) async fn run(net: &Net, check: &DnsCheck) -> Observation {
    let start = Instant::now();
    let deadline = later(start, check.timeout);
    let server = match check.server {
        Some(s) => Ok(s),
        None => net.dns.first_nameserver().map_err(|mut e| {
            e.phase = Phase::Query;
            e
        }),
    };
    let mut query_ms = None;
    let outcome = match server {
        Ok(server) => {
            let sent = Instant::now();
            let result = within(Phase::Query, None, deadline, ask(server, check)).await;
            query_ms = Some(crate::http::timing::ms(sent.elapsed()));
            match result {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(e)) | Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let total = crate::http::timing::ms(start.elapsed());
    let mut metrics = Vec::new();
    if let Some(q) = query_ms {
        metrics.push(Metric::new("query", q, Unit::Ms));
    }
    metrics.push(Metric::new("total", total, Unit::Ms));
    let (rcode, answers, error) = match outcome {
        Ok(reply) => (Some(reply.rcode), reply.answers, None),
        Err(e) => (None, Vec::new(), Some(e)),
    };
    Observation {
        kind: CheckKind::Dns,
        url: check.target_url(),
        metrics,
        error,
        detail: Detail::Dns {
            server: server_or_none(check, net),
            rcode,
            answers,
        },
    }
}

fn server_or_none(check: &DnsCheck, net: &Net) -> Option<SocketAddr> {
    check.server.or_else(|| net.dns.first_nameserver().ok())
}

fn io_error(e: std::io::Error, what: &str) -> ProbeError {
    ProbeError::local(Phase::Query, &e).unwrap_or_else(|| {
        let kind = crate::error::io_kind(&e);
        let message = match kind {
            ErrorKind::Refused => format!("{what}: the name server refused (port unreachable)"),
            _ => format!("{what}: {e}"),
        };
        ProbeError::new(Phase::Query, kind, message)
    })
}

/// Send the query and wait for its reply (the caller bounds the wait).
async fn ask(server: SocketAddr, check: &DnsCheck) -> Result<Reply, ProbeError> {
    let name = check.name.trim();
    let fqdn = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    let qname = Name::from_ascii(&fqdn).map_err(|e| {
        ProbeError::new(
            Phase::Query,
            ErrorKind::Resolver,
            format!("{name:?} is not a valid DNS name: {e}"),
        )
    })?;
    // A random id: a stray or forged reply must not pass for ours.
    let mut message = Message::query();
    let id = message.metadata.id;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(qname.clone(), check.record.wire()));
    let bytes = message.to_vec().map_err(|e| {
        ProbeError::new(
            Phase::Query,
            ErrorKind::Resolver,
            format!("cannot encode the query: {e}"),
        )
    })?;
    let bind: SocketAddr = match server.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|e| io_error(e, "cannot open a UDP socket"))?;
    socket
        .connect(server)
        .await
        .map_err(|e| io_error(e, &server.to_string()))?;
    socket
        .send(&bytes)
        .await
        .map_err(|e| io_error(e, &server.to_string()))?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| io_error(e, &server.to_string()))?;
        let reply = Message::from_vec(&buf[..n]).map_err(|e| {
            ProbeError::new(
                Phase::Query,
                ErrorKind::Malformed,
                format!("{server} sent a reply that is not a DNS message: {e}"),
            )
        })?;
        // Someone else's reply (or a late one): not ours, keep waiting.
        if reply.metadata.id != id || reply.metadata.message_type != MessageType::Response {
            continue;
        }
        if let Some(q) = reply.queries.first()
            && (q.query_type != check.record.wire() || q.name != qname)
        {
            continue;
        }
        let answers = reply
            .answers
            .iter()
            .filter(|r| r.record_type() == check.record.wire())
            .map(|r| answer_text(&r.data))
            .collect();
        return Ok(Reply {
            rcode: rcode_name(reply.metadata.response_code),
            answers,
        });
    }
}

/// A record's data as text: `1.2.3.4`, `10 mx.example.com.`, the TXT strings joined.
fn answer_text(data: &RData) -> String {
    match data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect::<Vec<_>>()
            .join(""),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_types_parse_in_any_case() {
        assert_eq!("a".parse::<RecordType>(), Ok(RecordType::A));
        assert_eq!("Aaaa".parse::<RecordType>(), Ok(RecordType::Aaaa));
        assert_eq!("MX".parse::<RecordType>(), Ok(RecordType::Mx));
        assert!(
            "SRV"
                .parse::<RecordType>()
                .unwrap_err()
                .contains("unknown record type")
        );
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::NoError), "NOERROR");
    }
}
