//! The HTTP probe: one check = a fresh connection, every phase timed.
//!
//! ```text
//! start ─dns─► resolved ─connect─► TCP up ─tls─► handshake done ─wait─► first byte ─download─► last byte
//! ```
//! Phases are cut at these instants (see [`timing`]). Each phase runs under the smaller of its
//! own timeout and what is left of the overall deadline, so a check never outlives its
//! deadline, and a timeout names the phase it hit. Nothing is pooled or cached between checks:
//! a new resolver per check, a new TCP connection, a full TLS handshake (resumption disabled).
//!
//! Redirects (when followed) never take credentials somewhere else: when a hop changes the
//! origin (scheme, host or port, the port being the scheme's default when not written), the
//! `Authorization`, `Cookie` and `Proxy-Authorization` headers given with the request are
//! dropped for the rest of the chain, and user info (`user:password@`) in a `Location` is
//! always removed before it is followed or reported.
//!
//! A failure caused by this machine running out of something (file descriptors, memory,
//! socket buffers, local ports) is [`ErrorKind::Local`]: watchpost's failure, not the
//! target's.

mod config;
mod io;
mod json;
mod report;
pub mod timing;

pub use crate::error::{ErrorKind, Phase, ProbeError, RequestError};
pub use crate::net::ProberOptions;
pub use crate::net::tls::TlsInfo;
pub use config::{DEFAULT_MAX_BODY, HttpRequest, MAX_REDIRECTS, ResolveOverride, Timeouts};
pub(crate) use json::json_path;
pub use report::{CheckReport, HttpTls};
pub use timing::Timings;

use crate::error;
use crate::net::{Net, connect, later, tls, within};

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT, CONTENT_LENGTH, HOST, HeaderMap, HeaderValue, LOCATION, USER_AGENT};
use http::{Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;
use timing::Marks;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;
use watchpost_net::AbortOnDrop;

/// Read PEM certificates to trust in addition to the webpki roots (see
/// `watchpost_net::load_ca_file`, which this forwards to with the error as a [`RequestError`]).
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, RequestError> {
    Ok(watchpost_net::load_ca_file(path)?)
}

/// Runs HTTP checks. Cheap to share (`&self`): holds the TLS configs and the DNS setup.
pub struct HttpProber {
    net: Net,
}

/// Everything one check observed. `error` is `None` when a complete response was received
/// (whatever its status: judging the status is the conditions' job).
#[derive(Debug, Clone)]
pub struct HttpResult {
    /// The URL checked, without user info.
    pub url: String,
    /// The URL of the last hop (differs from `url` after redirects), without user info.
    pub final_url: String,
    pub status: Option<u16>,
    pub http_version: Option<&'static str>,
    pub remote_addr: Option<SocketAddr>,
    pub redirects: u32,
    pub timings: Timings,
    pub size_bytes: u64,
    /// Response headers, lower-case names, repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    /// The body as read (at most `max_body` bytes).
    pub body: Bytes,
    pub tls: Option<TlsInfo>,
    pub error: Option<ProbeError>,
}

impl HttpResult {
    /// Bytes per second over the download phase (over the total when the body arrived in one
    /// read and download is zero).
    pub fn speed_bytes_per_sec(&self) -> f64 {
        let secs = match self.timings.download {
            Some(d) if !d.is_zero() => d.as_secs_f64(),
            _ => self.timings.total.as_secs_f64(),
        };
        if secs > 0.0 {
            (self.size_bytes as f64 / secs * 10.0).round() / 10.0
        } else {
            0.0
        }
    }
}

/// One hop's outcome (one request/response on one connection).
#[derive(Default)]
struct Hop {
    status: Option<StatusCode>,
    version: Option<&'static str>,
    remote_addr: Option<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
    size: u64,
    tls: Option<TlsInfo>,
}

/// What one hop sends: the current URL, method, headers and body (they change along a
/// redirect chain), with the check's settings and deadline.
struct Attempt<'a> {
    url: &'a Url,
    method: &'a Method,
    headers: &'a [(http::HeaderName, HeaderValue)],
    body: &'a Bytes,
    req: &'a HttpRequest,
    deadline: Instant,
}

impl HttpProber {
    pub fn new(options: ProberOptions) -> Result<Self, RequestError> {
        Ok(HttpProber {
            net: Net::new(options)?,
        })
    }

    /// The shared TLS configs and DNS setup (the other kinds use them too).
    pub(crate) fn net(&self) -> &Net {
        &self.net
    }

    /// Run one check. Never panics on network input and never outlives `timeouts.total`
    /// (a total too large to represent as an instant is taken as "a century").
    pub async fn check(&self, req: &HttpRequest) -> HttpResult {
        let start = Instant::now();
        let deadline = later(start, req.timeouts.total);
        let mut url = req.url.clone();
        let mut method = req.method.clone();
        let mut body = req.body.clone();
        let mut headers = req.headers.clone();
        let mut timings = Timings::default();
        let mut redirects = 0;
        loop {
            // The first hop starts with the check, so total == ttfb + download exactly.
            let mut marks = Marks::new(if redirects == 0 {
                start
            } else {
                Instant::now()
            });
            let mut hop = Hop::default();
            let attempt = Attempt {
                url: &url,
                method: &method,
                headers: &headers,
                body: &body,
                req,
                deadline,
            };
            let outcome = self.hop(&attempt, &mut marks, &mut hop).await;
            let end = Instant::now();
            timings.add_hop(&marks.timings(url.scheme() == "https", end));
            timings.total = marks
                .last_byte
                .unwrap_or(end)
                .saturating_duration_since(start);
            let mut error = outcome.err();
            let next = match (&error, hop.status) {
                (None, Some(status)) if req.follow_redirects && status.is_redirection() => {
                    redirect_target(&url, &hop.headers)
                }
                _ => None,
            };
            match next {
                Some(Ok(next_url)) if redirects < MAX_REDIRECTS => {
                    redirects += 1;
                    if status_changes_to_get(hop.status, &method) {
                        method = Method::GET;
                        body = Bytes::new();
                    }
                    if !same_origin(&next_url, &url) {
                        // Credentials are for the origin they were written for: another
                        // scheme (https -> http would send them in clear), host or port
                        // gets none, and neither does any later hop.
                        headers.retain(|(name, _)| !is_credential(name));
                    }
                    url = next_url;
                    continue;
                }
                Some(Ok(_)) => {
                    error = Some(ProbeError::new(
                        Phase::Wait,
                        ErrorKind::TooManyRedirects,
                        format!("more than {MAX_REDIRECTS} redirects"),
                    ))
                }
                Some(Err(e)) => error = Some(e),
                None => {}
            }
            return HttpResult {
                url: without_userinfo(&req.url).to_string(),
                final_url: without_userinfo(&url).to_string(),
                status: hop.status.map(|s| s.as_u16()),
                http_version: hop.version,
                remote_addr: hop.remote_addr,
                redirects,
                timings,
                size_bytes: hop.size,
                headers: header_map(&hop.headers),
                body: hop.body,
                tls: hop.tls,
                error,
            };
        }
    }

    async fn hop(
        &self,
        at: &Attempt<'_>,
        marks: &mut Marks,
        hop: &mut Hop,
    ) -> Result<(), ProbeError> {
        let (url, req, deadline) = (at.url, at.req, at.deadline);
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
            ProbeError::new(
                Phase::Dns,
                ErrorKind::BadRedirect,
                format!("{} has no host", without_userinfo(url)),
            )
        })?;
        let port = url.port_or_known_default().unwrap_or(80);
        let (ips, looked_up) = self
            .net
            .resolve(host, port, &req.resolve, req.timeouts.dns, deadline)
            .await?;
        // No lookup happened for an IP literal or a pinned address: dns is exactly 0.
        marks.dns_done = Some(if looked_up {
            Instant::now()
        } else {
            marks.start
        });

        // Report where we tried to go even if the connection fails.
        hop.remote_addr = ips.first().map(|ip| SocketAddr::new(*ip, port));
        let (tcp, addr) = connect(&ips, port, req.timeouts.connect, deadline).await?;
        marks.connected = Some(Instant::now());
        hop.remote_addr = Some(addr);

        if url.scheme() == "https" {
            let config = if req.insecure {
                self.net.tls.insecure.clone()
            } else {
                self.net.tls.verified.clone()
            };
            let name = tls::server_name(host)?;
            let stream = within(
                Phase::Tls,
                req.timeouts.tls,
                deadline,
                tls::handshake(config, name, tcp),
            )
            .await??;
            marks.tls_done = Some(Instant::now());
            let session = stream.get_ref().1;
            hop.tls = Some(tls::session_info(session, !req.insecure, None));
            let h2 = session.alpn_protocol() == Some(b"h2");
            exchange(stream, h2, at, marks, hop).await
        } else {
            exchange(tcp, false, at, marks, hop).await
        }
    }
}

/// Same scheme, host and port (the scheme's default port when none is written).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Headers that carry credentials, dropped when a redirect leaves the origin.
fn is_credential(name: &http::HeaderName) -> bool {
    name == http::header::AUTHORIZATION
        || name == http::header::COOKIE
        || name == http::header::PROXY_AUTHORIZATION
}

/// `url` with any `user:password@` removed.
fn without_userinfo(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.username().is_empty() || url.password().is_some() {
        // Only fails for URLs that can't have user info, which then have none.
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    url
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// Send the request on an established stream and read the response, timing `wait` and
/// `download`.
async fn exchange<S>(
    stream: S,
    h2: bool,
    at: &Attempt<'_>,
    marks: &mut Marks,
    hop: &mut Hop,
) -> Result<(), ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (req, deadline) = (at.req, at.deadline);
    let (stream, reads) = io::Recorder::new(stream);
    let io = TokioIo::new(stream);
    let request = build_request(at, h2)?;
    let wait_err = |e: hyper::Error| classify_hyper(Phase::Wait, &e);
    let (mut sender, _driver) = if h2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(wait_err)?;
        // The connection driver never outlives the check.
        let driver = AbortOnDrop::spawn(async move {
            let _ = conn.await;
        });
        (Sender::H2(sender), driver)
    } else {
        let (sender, conn) = http1::handshake(io).await.map_err(wait_err)?;
        // The connection driver never outlives the check.
        let driver = AbortOnDrop::spawn(async move {
            let _ = conn.await;
        });
        (Sender::H1(sender), driver)
    };
    let send = async {
        match &mut sender {
            Sender::H1(s) => s.send_request(request).await,
            Sender::H2(s) => s.send_request(request).await,
        }
    };
    let response = within(Phase::Wait, req.timeouts.wait, deadline, send)
        .await?
        .map_err(wait_err)?;
    let head_at = Instant::now();
    // HTTP/1: the first byte read on the socket is the response's first byte. HTTP/2 reads
    // SETTINGS frames before the response, so the parsed head is the better mark there.
    marks.first_byte = Some(match reads.first() {
        Some(t) if !h2 && t <= head_at => t,
        _ => head_at,
    });
    hop.status = Some(response.status());
    hop.version = Some(match response.version() {
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    });
    let (parts, mut incoming) = response.into_parts();
    hop.headers = parts.headers;

    let cap = req.max_body;
    let declared = hop
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > cap) {
        return Err(ProbeError::new(
            Phase::Download,
            ErrorKind::TooLarge,
            format!("Content-Length {len} exceeds the body cap of {cap} bytes"),
        ));
    }
    let mut buf = BytesMut::new();
    let mut size: u64 = 0;
    let read = async {
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| classify_hyper(Phase::Download, &e))?;
            if let Ok(data) = frame.into_data() {
                size += data.len() as u64;
                if size > cap {
                    return Err(ProbeError::new(
                        Phase::Download,
                        ErrorKind::TooLarge,
                        format!("body exceeds the cap of {cap} bytes"),
                    ));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    let read_result = within(Phase::Download, req.timeouts.download, deadline, read).await;
    hop.size = size;
    hop.body = buf.freeze();
    read_result??;
    let body_done = Instant::now();
    // HTTP/1: the body ended with the last bytes read from the socket. HTTP/2 may read control
    // frames after the data, so its end is when the body stream finished.
    marks.last_byte = Some(match (reads.last(), marks.first_byte) {
        (Some(t), Some(first)) if !h2 && t <= body_done && t >= first => t,
        _ => body_done,
    });
    Ok(())
}

fn build_request(at: &Attempt<'_>, h2: bool) -> Result<Request<Full<Bytes>>, ProbeError> {
    let (url, method, headers, body) = (at.url, at.method, at.headers, at.body);
    let bad = |e: String| ProbeError::new(Phase::Wait, ErrorKind::Malformed, e);
    let target = if h2 {
        // Absolute form for HTTP/2's :scheme and :authority, never with user info.
        without_userinfo(url).as_str().to_string()
    } else {
        let mut t = url.path().to_string();
        if let Some(q) = url.query() {
            t.push('?');
            t.push_str(q);
        }
        t
    };
    let mut request = Request::builder()
        .method(method.clone())
        .uri(target)
        .body(Full::new(body.clone()))
        .map_err(|e| bad(format!("cannot build the request: {e}")))?;
    let h = request.headers_mut();
    if !h2 {
        let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
        h.insert(
            HOST,
            HeaderValue::from_str(authority).map_err(|e| bad(e.to_string()))?,
        );
    }
    h.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("watchpost/", env!("CARGO_PKG_VERSION"))),
    );
    h.insert(ACCEPT, HeaderValue::from_static("*/*"));
    let mut replaced = Vec::new();
    for (name, value) in headers {
        if h2 && name == HOST {
            continue;
        }
        // A header the user gives replaces ours; repeated user headers are all sent.
        if !replaced.contains(name) {
            h.remove(name);
            replaced.push(name.clone());
        }
        h.append(name.clone(), value.clone());
    }
    Ok(request)
}

/// Map a hyper error to a kind, looking through its source chain for the I/O cause.
fn classify_hyper(phase: Phase, err: &hyper::Error) -> ProbeError {
    let text = error_chain(err);
    let local = find_io(err).and_then(error::local_cause);
    let kind = if local.is_some() {
        ErrorKind::Local
    } else if err.is_parse() || err.is_parse_status() {
        ErrorKind::Malformed
    } else if err.is_incomplete_message() {
        ErrorKind::Closed
    } else if err.is_timeout() {
        ErrorKind::Timeout
    } else if let Some(io_err) = find_io(err) {
        error::io_kind(io_err)
    } else if text.contains("reset") {
        ErrorKind::Reset
    } else if text.contains("IncompleteBody")
        || text.contains("end of file")
        || err.is_body_write_aborted()
        || err.is_canceled()
        || err.is_closed()
    {
        ErrorKind::Closed
    } else {
        ErrorKind::Malformed
    };
    let message = match kind {
        ErrorKind::Closed if phase == Phase::Wait => {
            "the server closed the connection before sending a response".to_string()
        }
        ErrorKind::Closed => "the server closed the connection before the body was complete".into(),
        ErrorKind::Reset if phase == Phase::Download => {
            format!("connection reset during the body: {text}")
        }
        ErrorKind::Malformed => format!("malformed HTTP response: {text}"),
        ErrorKind::Local => local.unwrap_or(text),
        _ => text,
    };
    ProbeError::new(phase, kind, message)
}

fn find_io<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io_err) = e.downcast_ref::<std::io::Error>() {
            return Some(io_err);
        }
        cur = e.source();
    }
    None
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cur = e.source();
    }
    text
}

fn redirect_target(base: &Url, headers: &HeaderMap) -> Option<Result<Url, ProbeError>> {
    let bad = |m: String| ProbeError::new(Phase::Wait, ErrorKind::BadRedirect, m);
    let location = headers.get(LOCATION)?;
    Some(
        location
            .to_str()
            .map_err(|_| bad("the Location header is not valid text".into()))
            .and_then(|loc| {
                base.join(loc)
                    .map_err(|e| bad(format!("bad Location {loc:?}: {e}")))
            })
            .and_then(|next| match next.scheme() {
                // User info in a Location is never followed (nor shown).
                "http" | "https" => Ok(without_userinfo(&next)),
                other => Err(bad(format!("redirect to unsupported scheme {other:?}"))),
            }),
    )
}

/// 303 always becomes GET; 301/302 turn a POST into GET (as browsers do); 307/308 keep it.
fn status_changes_to_get(status: Option<StatusCode>, method: &Method) -> bool {
    match status.map(|s| s.as_u16()) {
        Some(303) => method != Method::HEAD,
        Some(301 | 302) => method == Method::POST,
        _ => false,
    }
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let same = |a, b| same_origin(&url(a), &url(b));
        assert!(same("http://a.test/x", "http://a.test:80/y?q"));
        assert!(same("https://a.test/", "https://A.test:443/z"));
        assert!(!same("https://a.test/", "http://a.test/"));
        assert!(!same("https://a.test/", "http://a.test:443/"));
        assert!(!same("http://a.test/", "http://a.test:8080/"));
        assert!(!same("http://a.test/", "http://b.test/"));
        assert!(!same("http://127.0.0.1/", "http://localhost/"));
    }

    #[test]
    fn credential_headers() {
        for name in ["authorization", "cookie", "proxy-authorization"] {
            assert!(
                is_credential(&http::HeaderName::from_static(name)),
                "{name}"
            );
        }
        assert!(!is_credential(&http::HeaderName::from_static("x-api-key")));
    }

    #[test]
    fn userinfo_is_removed() {
        assert_eq!(
            without_userinfo(&url("http://u:p@h.test:81/a?b")).as_str(),
            "http://h.test:81/a?b"
        );
        assert_eq!(
            without_userinfo(&url("https://u@h.test/")).as_str(),
            "https://h.test/"
        );
        assert_eq!(
            without_userinfo(&url("https://h.test/")).as_str(),
            "https://h.test/"
        );
    }
}
