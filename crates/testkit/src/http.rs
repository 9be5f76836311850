use crate::Guard;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep, sleep_until};

/// TLS for [`HttpServer`]: the certificate, and an optional delay (or a stall) before the
/// server answers the ClientHello.
#[derive(Clone)]
pub struct TlsOptions {
    pub config: Arc<rustls::ServerConfig>,
    pub handshake_delay: Duration,
    pub stall: bool,
}

/// A raw HTTP/1.1 server whose behaviour is chosen per request:
///
/// | request | behaviour |
/// |---|---|
/// | `/?wait=MS&download=MS&size=N&status=S` | headers after `wait` ms; body of N bytes sent in chunks spread over `download` ms |
/// | `/echo` | `200` with the method, headers and body of the request |
/// | `/garbage` | bytes that are not HTTP, then close |
/// | `/close` | close without answering |
/// | `/stall` | never answer |
/// | `/reset` | announce 1 MB, send 1 KB, then reset the connection (RST) |
/// | `/redirect/N` | `302` to `/redirect/N-1`; `/redirect/0` answers `200 arrived` |
/// | `/loop` | `302` to itself forever |
///
/// Every response closes the connection (`Connection: close`).
pub struct HttpServer {
    pub addr: SocketAddr,
    _guard: Guard,
}

impl HttpServer {
    pub async fn start(tls: Option<TlsOptions>) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), tls).await
    }

    pub async fn start_on(bind: SocketAddr, tls: Option<TlsOptions>) -> Self {
        let listener = TcpListener::bind(bind).await.expect("bind HTTP server");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    match tls {
                        None => serve(stream).await,
                        Some(opts) => {
                            if opts.stall {
                                let mut stream = stream;
                                let mut sink = [0u8; 1024];
                                while let Ok(n) = stream.read(&mut sink).await {
                                    if n == 0 {
                                        break;
                                    }
                                }
                                return;
                            }
                            // tokio rounds any sleep up to the next millisecond: skip a zero one.
                            if !opts.handshake_delay.is_zero() {
                                sleep(opts.handshake_delay).await;
                            }
                            let acceptor = tokio_rustls::TlsAcceptor::from(opts.config);
                            if let Ok(tls) = acceptor.accept(stream).await {
                                serve(tls).await;
                            }
                        }
                    }
                });
            }
        });
        HttpServer {
            addr,
            _guard: Guard(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

struct Parsed {
    method: String,
    path: String,
    query: HashMap<String, String>,
    head: String,
    body: Vec<u8>,
}

async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Parsed> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(Parsed {
        method,
        path: path.to_string(),
        query,
        head,
        body,
    })
}

fn filler(size: usize) -> Vec<u8> {
    b"watchpost testkit body "
        .iter()
        .copied()
        .cycle()
        .take(size)
        .collect()
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Reset>(mut stream: S) {
    let Some(req) = read_request(&mut stream).await else {
        return;
    };
    let num = |k: &str| req.query.get(k).and_then(|v| v.parse::<u64>().ok());
    match req.path.as_str() {
        "/garbage" => {
            let _ = stream
                .write_all(b"SSH-2.0-not-http garbage\r\n\r\n\x00\x01")
                .await;
            return;
        }
        "/close" => return,
        "/stall" => {
            sleep(Duration::from_secs(3600)).await;
            return;
        }
        "/reset" => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&filler(1024)).await;
            let _ = stream.flush().await;
            sleep(Duration::from_millis(50)).await;
            stream.reset();
            return;
        }
        "/echo" => {
            let mut body = format!("{} {}\n", req.method, req.path).into_bytes();
            body.extend_from_slice(req.head.as_bytes());
            body.extend_from_slice(&req.body);
            let _ = respond(&mut stream, 200, &[], &body, Duration::ZERO).await;
            return;
        }
        "/loop" => {
            let _ = respond(
                &mut stream,
                302,
                &[("Location", "/loop".into())],
                b"",
                Duration::ZERO,
            )
            .await;
            return;
        }
        _ => {}
    }
    if let Some(n) = req.path.strip_prefix("/redirect/") {
        let n: u32 = n.parse().unwrap_or(0);
        if n == 0 {
            let _ = respond(&mut stream, 200, &[], b"arrived\n", Duration::ZERO).await;
        } else {
            let loc = format!("/redirect/{}", n - 1);
            let _ = respond(&mut stream, 302, &[("Location", loc)], b"", Duration::ZERO).await;
        }
        return;
    }
    if let Some(wait) = num("wait") {
        sleep(Duration::from_millis(wait)).await;
    }
    let status = num("status").unwrap_or(200) as u16;
    let body = match num("size") {
        Some(size) => filler(size as usize),
        None => b"hello from watchpost testkit\n".to_vec(),
    };
    let download = Duration::from_millis(num("download").unwrap_or(0));
    let _ = respond(&mut stream, status, &[], &body, download).await;
}

/// Write a response. With a non-zero `spread`, the body goes out in up to 10 chunks, the last
/// one `spread` after the headers.
async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    extra: &[(&str, String)],
    body: &[u8],
    spread: Duration,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if spread.is_zero() || body.is_empty() {
        let mut all = head.into_bytes();
        all.extend_from_slice(body);
        stream.write_all(&all).await?;
        return stream.flush().await;
    }
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await?;
    let start = Instant::now();
    let chunks = body.len().min(10);
    let per = body.len().div_ceil(chunks);
    for (i, chunk) in body.chunks(per).enumerate() {
        let at = start + spread * (i as u32 + 1) / chunks as u32;
        sleep_until(at).await;
        stream.write_all(chunk).await?;
        stream.flush().await?;
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Streams that can be closed with a TCP RST (SO_LINGER 0).
trait Reset {
    fn reset(self);
}

impl Reset for TcpStream {
    // SO_LINGER 0 is exactly the point here: close() sends RST and never blocks.
    #[allow(deprecated)]
    fn reset(self) {
        let _ = self.set_linger(Some(Duration::ZERO));
        drop(self);
    }
}

impl Reset for tokio_rustls::server::TlsStream<TcpStream> {
    fn reset(self) {
        let (tcp, _) = self.into_inner();
        tcp.reset();
    }
}

/// HTTP/2 over TLS (ALPN `h2` only): answers every request with `200 h2 ok`.
pub struct H2Server {
    pub addr: SocketAddr,
    _guard: Guard,
}

impl H2Server {
    pub async fn start(config: Arc<rustls::ServerConfig>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind h2");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"h2 ok\n"),
                        )))
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        H2Server {
            addr,
            _guard: Guard(task),
        }
    }
}
