//! Helpers shared by the end-to-end tests: a target whose status can be flipped and a webhook
//! receiver that records what it got.
#![allow(dead_code)]

use serde_json::Value;
use std::sync::atomic::AtomicU16;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers every request with the status currently in `status`.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub status: Arc<AtomicU16>,
    /// Bodies of the requests received, with the status answered.
    pub requests: Arc<Mutex<Vec<(Value, String, u16)>>>,
}

pub async fn server(initial: u16) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let status = Arc::new(AtomicU16::new(initial));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (st, rq) = (status.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (st, rq) = (st.clone(), rq.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
                };
                let len: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let code = st.load(Ordering::SeqCst);
                if len > 0 {
                    let body: Value =
                        serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
                    let key = header("idempotency-key").unwrap_or_default();
                    rq.lock().unwrap().push((body, key, code));
                }
                let reply = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    Server {
        addr,
        status,
        requests,
    }
}

/// The kinds of the alerts the receiver accepted (answered 200), in order.
pub fn kinds(hook: &Server) -> Vec<String> {
    hook.requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, code)| *code == 200)
        .map(|(b, _, _)| b["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}
