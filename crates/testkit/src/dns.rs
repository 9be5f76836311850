use crate::Guard;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// A UDP DNS responder. Known names get their A/AAAA records after `delay`; unknown names get
/// NXDOMAIN; with `silent` it never answers (to exercise resolver timeouts).
pub struct DnsServer {
    pub addr: SocketAddr,
    _guard: Guard,
}

impl DnsServer {
    pub async fn start(records: &[(&str, IpAddr)], delay: Duration, silent: bool) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), records, delay, silent).await
    }

    pub async fn start_on(
        bind: SocketAddr,
        records: &[(&str, IpAddr)],
        delay: Duration,
        silent: bool,
    ) -> Self {
        let mut table: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (name, ip) in records {
            let key = name.trim_end_matches('.').to_ascii_lowercase();
            table.entry(key).or_default().push(*ip);
        }
        let table = Arc::new(table);
        let socket = Arc::new(UdpSocket::bind(bind).await.expect("bind DNS socket"));
        let addr = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                if silent {
                    continue;
                }
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let socket = socket.clone();
                let table = table.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Ok(bytes) = answer(&query, &table).to_vec() {
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

fn answer(query: &Message, table: &HashMap<String, Vec<IpAddr>>) -> Message {
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
    let key = q.name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    match table.get(&key) {
        None => reply.metadata.response_code = ResponseCode::NXDomain,
        Some(ips) => {
            for ip in ips {
                let rdata = match (ip, q.query_type) {
                    (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                    (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                    _ => continue,
                };
                reply.add_answer(Record::from_rdata(q.name.clone(), 60, rdata));
            }
        }
    }
    let _: Option<Name> = None;
    reply
}
