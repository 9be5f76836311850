//! An HTTP receiver standing in for a remote API (a chat robot, an SMS gateway, a webhook):
//! it records every request exactly as it arrived and answers from a script.
//!
//! ```no_run
//! # async fn demo() {
//! use watchpost_testkit::{Receiver, Reply};
//! let mut rx = Receiver::start(vec![
//!     Reply::json(200, r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#),
//!     Reply::json(200, r#"{"errcode":0,"errmsg":"ok"}"#),
//! ])
//! .await;
//! let url = rx.url("/cgi-bin/webhook/send?key=k");
//! // ... send twice to `url` ...
//! let first = rx.next().await;
//! assert_eq!(first.method, "POST");
//! # }
//! ```

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The request target: path and query, as sent.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    /// The body parsed as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the request body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header's value as text (panics when missing).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .expect("a text header")
    }

    /// Assert that this is a Tencent Cloud API 3.0 call signed with `id` and `key` for
    /// `service`: the `Authorization` recomputed here (TC3-HMAC-SHA256, signing content-type
    /// and host as they arrived) from the bytes that arrived equals the one sent.
    pub fn assert_tc3_signed(&self, service: &str, id: &str, key: &str) {
        assert_eq!(self.method, "POST");
        assert_eq!(
            self.header("content-type"),
            "application/json; charset=utf-8"
        );
        let timestamp: i64 = self.header("x-tc-timestamp").parse().expect("a timestamp");
        let expected = watchpost_net::tc3::sign(
            id,
            key,
            service,
            timestamp,
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("host", self.header("host")),
            ],
            &self.body,
        );
        assert_eq!(self.header("authorization"), expected.authorization);
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }

    /// The query's parameters, percent-decoded, in order.
    pub fn query(&self) -> Vec<(String, String)> {
        match self.uri.split_once('?') {
            Some((_, q)) => url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect(),
            None => Vec::new(),
        }
    }

    /// One query parameter (percent-decoded), if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Makes a reply's body from the request it answers.
pub type EchoFn = Arc<dyn Fn(&Seen) -> String + Send + Sync>;

/// How the receiver answers one request.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// Wait this long after reading the request, before answering.
    pub delay: Duration,
    /// When set, the body is made from the request (replacing `body`).
    pub echo: Option<EchoFn>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("body", &self.body)
            .field("headers", &self.headers)
            .field("delay", &self.delay)
            .field("echo", &self.echo.is_some())
            .finish()
    }
}

impl Seen {
    /// The request as a provider that echoes it might quote it: `METHOD http://HOST/PATH?QUERY`,
    /// then every header as `name: value`, then the body, one per line.
    pub fn echo(&self) -> String {
        let host = self
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let mut out = format!("{} http://{host}{}\n", self.method, self.uri);
        for (name, value) in &self.headers {
            out.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        out.push_str(&String::from_utf8_lossy(&self.body));
        out
    }
}

impl Reply {
    /// `status` with a plain-text body.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            headers: vec![("content-type".into(), "text/plain".into())],
            delay: Duration::ZERO,
            echo: None,
        }
    }

    /// `status` with a body made from the request by `echo` (e.g. [`Seen::echo`], or a JSON
    /// error quoting part of it): a provider that echoes what it was sent.
    pub fn echo(status: u16, echo: impl Fn(&Seen) -> String + Send + Sync + 'static) -> Reply {
        Reply {
            echo: Some(Arc::new(echo)),
            ..Reply::status(status, "")
        }
    }

    /// `status` with a JSON body.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            headers: vec![("content-type".into(), "application/json".into())],
            delay: Duration::ZERO,
            echo: None,
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Answers only after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A recording HTTP/1.1 server on 127.0.0.1 (plain or TLS). Requests are answered with the
/// scripted replies in order; the last one repeats. Stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    scheme: &'static str,
    seen: mpsc::UnboundedReceiver<Seen>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// A plain-HTTP receiver answering with `replies` in order (the last repeats).
    pub async fn start(replies: Vec<Reply>) -> Receiver {
        Receiver::start_with(replies, None, false).await
    }

    /// An HTTPS receiver with `tls` (e.g. a [`crate::TestCa`] leaf's server config).
    pub async fn start_tls(replies: Vec<Reply>, tls: Arc<rustls::ServerConfig>) -> Receiver {
        Receiver::start_with(replies, Some(tls), false).await
    }

    /// A receiver speaking both HTTPS and plain HTTP on one port (a connection whose first
    /// byte is a TLS handshake record gets TLS): for a redirect that changes only the scheme.
    /// [`Receiver::url`] gives the `https://` URL, [`Receiver::plain_url`] the `http://` one.
    pub async fn start_dual(replies: Vec<Reply>, tls: Arc<rustls::ServerConfig>) -> Receiver {
        Receiver::start_with(replies, Some(tls), true).await
    }

    async fn start_with(
        replies: Vec<Reply>,
        tls: Option<Arc<rustls::ServerConfig>>,
        dual: bool,
    ) -> Receiver {
        assert!(!replies.is_empty(), "a receiver needs at least one reply");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, seen) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(VecDeque::from(replies)));
        let shared = script.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (tx, script, tls) = (tx.clone(), shared.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (tx, script) = (tx.clone(), script.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes());
                            let reply = {
                                let mut s = script.lock().expect("script lock");
                                if s.len() > 1 {
                                    s.pop_front().expect("non-empty")
                                } else {
                                    s.front().cloned().expect("non-empty")
                                }
                            };
                            let seen = Seen {
                                method: parts.method.to_string(),
                                uri: parts.uri.to_string(),
                                headers: parts.headers,
                                body: body.unwrap_or_default(),
                            };
                            let answer = match &reply.echo {
                                Some(echo) => echo(&seen),
                                None => reply.body.clone(),
                            };
                            let _ = tx.send(seen);
                            tokio::time::sleep(reply.delay).await;
                            let mut response = Response::builder().status(reply.status);
                            for (k, v) in &reply.headers {
                                response = response.header(k, v);
                            }
                            Ok::<_, Infallible>(
                                response
                                    .body(Full::new(Bytes::from(answer)))
                                    .expect("a valid response"),
                            )
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    let mut first = [0u8; 1];
                    // 0x16: a TLS handshake record (the ClientHello).
                    let tls = match tls {
                        Some(_) if dual => match tcp.peek(&mut first).await {
                            Ok(1) if first[0] == 0x16 => tls,
                            _ => None,
                        },
                        other => other,
                    };
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        Receiver {
            addr,
            scheme,
            seen,
            script,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` + `path_and_query` (`https://` for a TLS receiver).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}://{}{path_and_query}", self.scheme, self.addr)
    }

    /// `http://127.0.0.1:PORT` + `path_and_query`, whatever the receiver's scheme (for a
    /// [`Receiver::start_dual`] one).
    pub fn plain_url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Replace the replies still to come (the last repeats).
    pub fn script(&self, replies: Vec<Reply>) {
        assert!(!replies.is_empty(), "a receiver needs at least one reply");
        *self.script.lock().expect("script lock") = VecDeque::from(replies);
    }

    /// The next request, waiting up to 5 s (panics after).
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(5), self.seen.recv())
            .await
            .expect("a request within 5s")
            .expect("receiver running")
    }

    /// A request if one arrives within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Seen> {
        tokio::time::timeout(wait, self.seen.recv())
            .await
            .ok()
            .flatten()
    }

    /// Every request received so far, without waiting.
    pub fn drain(&mut self) -> Vec<Seen> {
        let mut out = Vec::new();
        while let Ok(s) = self.seen.try_recv() {
            out.push(s);
        }
        out
    }
}
