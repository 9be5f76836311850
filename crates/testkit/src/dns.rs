use crate::Guard;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// The records a [`DnsServer`] knows, by name (case and a trailing dot do not matter). A name
/// it does not know gets NXDOMAIN; a known name asked for a type it lacks gets an empty
/// NOERROR answer.
#[derive(Clone, Debug, Default)]
pub struct Zone {
    names: HashMap<String, Vec<Entry>>,
}

#[derive(Clone, Debug)]
enum Entry {
    Ip(IpAddr),
    Txt(String),
    Mx(u16, String),
}

impl Zone {
    pub fn new() -> Self {
        Self::default()
    }

    /// A zone of A (IPv4) and AAAA (IPv6) records.
    pub fn addresses(records: &[(&str, IpAddr)]) -> Self {
        records
            .iter()
            .fold(Self::new(), |zone, (name, ip)| zone.address(name, *ip))
    }

    /// An A record for an IPv4 address, an AAAA record for an IPv6 one.
    pub fn address(self, name: &str, ip: IpAddr) -> Self {
        self.with(name, Entry::Ip(ip))
    }

    /// A TXT record of one string.
    pub fn txt(self, name: &str, text: &str) -> Self {
        self.with(name, Entry::Txt(text.to_string()))
    }

    /// An MX record: `preference` and the exchange's name (`mx.example.test.`).
    pub fn mx(self, name: &str, preference: u16, exchange: &str) -> Self {
        self.with(name, Entry::Mx(preference, exchange.to_string()))
    }

    fn with(mut self, name: &str, entry: Entry) -> Self {
        self.names.entry(key(name)).or_default().push(entry);
        self
    }

    /// The answer to `query`: its records of the asked type, in the order they were added.
    fn answer(&self, query: &Message) -> Message {
        let mut reply = Message::new(
            query.metadata.id,
            MessageType::Response,
            query.metadata.op_code,
        );
        reply.metadata.recursion_desired = query.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.metadata.authoritative = true;
        let Some(q) = query.queries.first() else {
            reply.metadata.response_code = ResponseCode::FormErr;
            return reply;
        };
        reply.add_query(q.clone());
        let Some(entries) = self.names.get(&key(&q.name.to_ascii())) else {
            reply.metadata.response_code = ResponseCode::NXDomain;
            return reply;
        };
        for entry in entries {
            let rdata = match (entry, q.query_type) {
                (Entry::Ip(IpAddr::V4(v4)), RecordType::A) => RData::A(A(*v4)),
                (Entry::Ip(IpAddr::V6(v6)), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                (Entry::Txt(text), RecordType::TXT) => RData::TXT(TXT::new(vec![text.clone()])),
                (Entry::Mx(preference, exchange), RecordType::MX) => {
                    let Ok(exchange) = Name::from_ascii(exchange) else {
                        continue;
                    };
                    RData::MX(MX::new(*preference, exchange))
                }
                _ => continue,
            };
            reply.add_answer(Record::from_rdata(q.name.clone(), 60, rdata));
        }
        reply
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// How a [`DnsServer`] treats the queries it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsBehaviour {
    /// Answer from the zone after `delay`.
    Answer { delay: Duration },
    /// Never answer (to exercise resolver timeouts).
    Silent,
    /// Answer every datagram at once with bytes that are not a DNS message.
    Garbage,
}

/// What [`DnsBehaviour::Garbage`] sends.
pub const GARBAGE: &[u8] = b"\x00\x01 not a dns message";

/// A UDP DNS responder serving a [`Zone`] (A, AAAA, TXT and MX records; NXDOMAIN for unknown
/// names) with a chosen [`DnsBehaviour`]. It stops when dropped.
pub struct DnsServer {
    pub addr: SocketAddr,
    _guard: Guard,
}

impl DnsServer {
    /// On an ephemeral port of 127.0.0.1: A/AAAA `records`, answered after `delay`; with
    /// `silent` it never answers.
    pub async fn start(records: &[(&str, IpAddr)], delay: Duration, silent: bool) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), records, delay, silent).await
    }

    /// [`DnsServer::start`] on `bind`.
    pub async fn start_on(
        bind: SocketAddr,
        records: &[(&str, IpAddr)],
        delay: Duration,
        silent: bool,
    ) -> Self {
        let behaviour = if silent {
            DnsBehaviour::Silent
        } else {
            DnsBehaviour::Answer { delay }
        };
        Self::serve(bind, Zone::addresses(records), behaviour).await
    }

    /// Serve `zone` on `bind` (port 0: an ephemeral port) as `behaviour` says.
    pub async fn serve(bind: SocketAddr, zone: Zone, behaviour: DnsBehaviour) -> Self {
        let zone = Arc::new(zone);
        let socket = Arc::new(UdpSocket::bind(bind).await.expect("bind DNS socket"));
        let addr = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let delay = match behaviour {
                    DnsBehaviour::Silent => continue,
                    DnsBehaviour::Garbage => {
                        let _ = socket.send_to(GARBAGE, peer).await;
                        continue;
                    }
                    DnsBehaviour::Answer { delay } => delay,
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let socket = socket.clone();
                let zone = zone.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Ok(bytes) = zone.answer(&query).to_vec() {
                        let _ = socket.send_to(&bytes, peer).await;
                    }
                });
            }
        });
        DnsServer {
            addr,
            _guard: Guard(task),
        }
    }
}
