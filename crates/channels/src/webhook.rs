//! `type: webhook`: a JSON POST of the alert to any HTTP(S) endpoint.
//!
//! ```yaml
//! channels:
//!   ops-hook:
//!     type: webhook
//!     url: "https://hooks.example.com/watchpost"   # `webhook:` is accepted as well
//!     headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
//!     timeout: 10s                                  # default 10s, the whole request
//!     ca_file: /etc/watchpost/private-ca.pem        # optional, trusted besides the web PKI
//! ```
//!
//! `url` is the canonical key; `webhook` is an alias, because every HTTP channel's address can
//! be given as `webhook:` (PRODUCT.md), so a wecom/dingtalk/... channel can be turned into a
//! plain webhook by changing only its `type`. Giving both is an error.
//!
//! # Request
//!
//! `POST` with `Content-Type: application/json`, `User-Agent: watchpost/VERSION`,
//! `Idempotency-Key: <idempotency_key>` and the configured headers; the body is a
//! [`WebhookPayload`]:
//!
//! ```json
//! {"version":1,"kind":"down","monitor":"homepage","incident_id":"homepage:1767322800000",
//!  "idempotency_key":"homepage:1767322800000:down:1767322800000",
//!  "at":"2026-01-02T03:00:00Z","since":"2026-01-02T03:00:00Z","locale":"en",
//!  "title":"[DOWN] homepage","text":"<plain rendering>","markdown":"<markdown rendering>",
//!  "url":"https://www.example.com/","failures":["total 1430ms > 1000ms"],
//!  "locations":[{"location":"local","ok":false,"status":200,"total_ms":1430.0,
//!                "connect_ms":27.0,"download_ms":17.0,"error":null}]}
//! ```
//!
//! `kind` is `down`, `reminder`, `resolved` or `test`; `since` is null when unknown. The key
//! is the same on every retry of an alert, so a receiver can drop duplicates.
//!
//! # Answer
//!
//! 2xx: delivered. 408, 429 and 5xx: retryable (honouring a `Retry-After` in seconds). Any
//! other status (other 4xx, and 3xx: redirects are not followed): fatal. DNS, connect, TLS and
//! protocol errors, and no complete answer within `timeout`: retryable.
//!
//! Every send opens a new connection (alerts are rare; nothing idles between them) over
//! HTTP/1.1, with TLS verified against the webpki roots (plus `ca_file`). Error messages name
//! the scheme, host and port only: webhook paths and queries often carry secrets.

use crate::message::{Alert, AlertKind, Locale, LocationRow};
use crate::{ConfigError, Delivery, SHORT_BODY, SendError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{
    CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The default `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The payload's `version`.
pub const PAYLOAD_VERSION: u32 = 1;
/// At most this much of a response body is read.
const MAX_RESPONSE: usize = 64 * 1024;
/// Headers the channel sets itself.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "idempotency-key",
];

/// `{type: webhook, url, headers, timeout, ca_file}`. `Debug` hides header values and the
/// URL's path and query (they hold tokens).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL to POST to. Key `url`, or `webhook`.
    #[serde(alias = "webhook")]
    pub url: String,
    /// Extra request headers (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The whole request, from connecting to the last byte of the answer: `10s`, `2500ms`.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// PEM certificates to trust besides the webpki roots (a private gateway's CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    let value = watchpost_units::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("timeout: {e}")))?;
    if value.is_zero() {
        return Err(serde::de::Error::custom("timeout: must be more than 0"));
    }
    Ok(value)
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .keys()
            .map(|k| (k.as_str(), "<redacted>"))
            .collect();
        f.debug_struct("WebhookConfig")
            .field("url", &redact_url(&self.url))
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `scheme://host:port` of a URL, or a placeholder when it does not parse.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}/<redacted>",
            u.scheme(),
            authority(&u).unwrap_or_default()
        ),
        Err(_) => "<invalid url>".to_string(),
    }
}

/// `host:port` with the port always written (IPv6 in brackets).
fn authority(u: &url::Url) -> Option<String> {
    let host = u.host_str()?;
    let port = u.port_or_known_default()?;
    Some(format!("{host}:{port}"))
}

/// The JSON body of a webhook request (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookPayload<'a> {
    /// [`PAYLOAD_VERSION`]: bumped on an incompatible change.
    pub version: u32,
    pub kind: AlertKind,
    pub monitor: &'a str,
    pub incident_id: &'a str,
    /// [`Alert::idempotency_key`], also sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    pub at: DateTime<Utc>,
    pub since: Option<DateTime<Utc>>,
    /// The language of `title`, `text` and `markdown`.
    pub locale: Locale,
    /// [`Alert::title`].
    pub title: String,
    /// [`Alert::plain`].
    pub text: String,
    /// [`Alert::markdown`].
    pub markdown: String,
    pub url: Option<&'a str>,
    pub failures: &'a [String],
    pub locations: &'a [LocationRow],
}

impl<'a> WebhookPayload<'a> {
    pub fn new(alert: &'a Alert, locale: Locale) -> WebhookPayload<'a> {
        WebhookPayload {
            version: PAYLOAD_VERSION,
            kind: alert.kind,
            monitor: &alert.monitor,
            incident_id: &alert.incident_id,
            idempotency_key: alert.idempotency_key(),
            at: alert.at,
            since: alert.since,
            locale,
            title: alert.title(locale),
            text: alert.plain(locale),
            markdown: alert.markdown(locale),
            url: alert.url.as_deref(),
            failures: &alert.failures,
            locations: &alert.locations,
        }
    }
}

/// A built webhook channel: the URL parsed, headers checked, TLS configured.
pub struct Webhook {
    host: Host,
    port: u16,
    /// `Host` header value.
    host_header: HeaderValue,
    /// Origin-form request target: path and query.
    target: String,
    /// `http://host:port` for messages.
    shown: String,
    headers: HeaderMap,
    timeout: Duration,
    /// Some for `https`.
    tls: Option<Arc<ClientConfig>>,
}

enum Host {
    Ip(IpAddr),
    Name(String),
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("to", &self.shown)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn config_error(message: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("webhook: {message}"))
}

impl Webhook {
    /// Check `config` and build the channel: the URL must be absolute `http(s)` with a host
    /// and no user info (put credentials in `headers`), header names and values valid and not
    /// ones the channel sets itself, `ca_file` readable PEM.
    pub fn new(config: &WebhookConfig) -> Result<Webhook, ConfigError> {
        // The URL is not repeated in errors: it may hold a key.
        let url = url::Url::parse(&config.url)
            .map_err(|e| config_error(format!("url: not a valid URL ({e})")))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(config_error(format!(
                    "url: scheme {other:?} is not supported (http or https)"
                )));
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config_error(
                "url: user info in the URL is not supported; send credentials with `headers` \
                 (e.g. Authorization)",
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => Host::Name(d.to_string()),
            Some(url::Host::Ipv4(ip)) => Host::Ip(ip.into()),
            Some(url::Host::Ipv6(ip)) => Host::Ip(ip.into()),
            None => return Err(config_error("url: no host")),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| config_error("url: no port"))?;
        let host_str = url.host_str().unwrap_or_default();
        let host_header = match url.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.to_string(),
        };
        let host_header = HeaderValue::from_str(&host_header)
            .map_err(|_| config_error("url: the host is not a valid Host header"))?;
        let mut target = url.path().to_string();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let shown = format!("{}://{host_str}:{port}", url.scheme());

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("watchpost/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in &config.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| config_error(format!("headers: {name:?} is not a header name")))?;
            if RESERVED.contains(&header.as_str()) {
                return Err(config_error(format!(
                    "headers: {name} is set by watchpost and can't be configured"
                )));
            }
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                config_error(format!(
                    "headers: the value of {name} is not a valid header value"
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }

        let tls = if https {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(path) = &config.ca_file {
                for cert in watchpost_probes::http::load_ca_file(path).map_err(|e| match e {
                    watchpost_probes::http::RequestError::CaFile { reason, .. } => {
                        config_error(format!("ca_file {}: {reason}", path.display()))
                    }
                    other => config_error(format!("ca_file {}: {other}", path.display())),
                })? {
                    roots
                        .add(cert)
                        .map_err(|e| config_error(format!("ca_file {}: {e}", path.display())))?;
                }
            }
            let mut tls = ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(tls))
        } else {
            if config.ca_file.is_some() {
                return Err(config_error("ca_file: only applies to https URLs"));
            }
            None
        };

        Ok(Webhook {
            host,
            port,
            host_header,
            target,
            shown,
            headers,
            timeout: config.timeout,
            tls,
        })
    }

    /// POST the alert (one attempt, one new connection) and classify the answer.
    pub async fn send(&self, alert: &Alert, locale: Locale) -> Result<Delivery, SendError> {
        let payload = WebhookPayload::new(alert, locale);
        let body = serde_json::to_vec(&payload).expect("the payload serializes");
        let key = HeaderValue::from_str(&payload.idempotency_key).map_err(|_| {
            SendError::fatal("the alert's idempotency key is not a valid header value")
        })?;
        match tokio::time::timeout(self.timeout, self.post(body, key)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::retryable(format!(
                "{}: no answer within {}",
                self.shown,
                watchpost_units::format_ms(self.timeout.as_secs_f64() * 1000.0)
            ))),
        }
    }

    async fn post(&self, body: Vec<u8>, key: HeaderValue) -> Result<Delivery, SendError> {
        let tcp = self.connect().await?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(&self.target)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::fatal(format!("{}: building the request: {e}", self.shown)))?;
        let headers = request.headers_mut();
        headers.insert(HOST, self.host_header.clone());
        headers.extend(self.headers.clone());
        headers.insert(HeaderName::from_static("idempotency-key"), key);

        let (status, answer_headers, answer) = match &self.tls {
            None => self.exchange(tcp, request).await?,
            Some(tls) => {
                let name = match &self.host {
                    Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
                    Host::Name(n) => ServerName::try_from(n.clone()).map_err(|e| {
                        SendError::fatal(format!("{}: not a TLS server name: {e}", self.shown))
                    })?,
                };
                let stream = TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        SendError::retryable(format!("{}: TLS handshake: {e}", self.shown))
                    })?;
                self.exchange(stream, request).await?
            }
        };
        classify(status, &answer_headers, &answer)
    }

    /// Resolve the host and connect to the first address that answers.
    async fn connect(&self) -> Result<TcpStream, SendError> {
        let addrs: Vec<SocketAddr> = match &self.host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, self.port)],
            Host::Name(name) => tokio::net::lookup_host((name.as_str(), self.port))
                .await
                .map_err(|e| SendError::retryable(format!("{}: resolving: {e}", self.shown)))?
                .collect(),
        };
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = Some(format!("{}: connecting to {addr}: {e}", self.shown)),
            }
        }
        Err(SendError::retryable(last.unwrap_or_else(|| {
            format!("{}: the name resolved to no address", self.shown)
        })))
    }

    /// One HTTP/1.1 request on `io`: the status, headers and the start of the body.
    async fn exchange<S>(
        &self,
        io: S,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), SendError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let http_error =
            |e: hyper::Error| SendError::retryable(format!("{}: HTTP: {e}", self.shown));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(http_error)?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let response = sender.send_request(request).await.map_err(http_error)?;
        let (parts, mut body) = response.into_parts();
        let mut answer = Vec::new();
        while answer.len() < MAX_RESPONSE {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        answer.extend_from_slice(&data);
                    }
                }
                // A body cut short doesn't change what the status said.
                Some(Err(_)) | None => break,
            }
        }
        drop(driver);
        Ok((parts.status, parts.headers, answer))
    }
}

/// Aborts the connection task (and closes its socket) when the send ends or is cancelled.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// 2xx delivered; 408, 429, 5xx retryable; anything else fatal.
fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, SendError> {
    let body = short(body);
    let code = status.as_u16();
    if status.is_success() {
        return Ok(Delivery {
            status: Some(code),
            body,
        });
    }
    let mut message = format!("HTTP {status}");
    if !body.is_empty() {
        message.push_str(": ");
        message.push_str(&body);
    }
    if code == 408 || code == 429 || status.is_server_error() {
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(SendError::Retryable {
            message,
            retry_after,
        })
    } else {
        Err(SendError::Fatal { message })
    }
}

/// The body as text, on one line, at most [`SHORT_BODY`] characters.
fn short(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(SHORT_BODY) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            headers: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        }
    }

    #[test]
    fn targets() {
        let w = Webhook::new(&config("http://127.0.0.1:8080/a/b?key=k1&x=%20")).unwrap();
        assert_eq!(w.target, "/a/b?key=k1&x=%20");
        assert_eq!(w.host_header, "127.0.0.1:8080");
        assert_eq!(w.shown, "http://127.0.0.1:8080");
        assert!(w.tls.is_none());
        let w = Webhook::new(&config("https://hooks.example.com")).unwrap();
        assert_eq!(w.target, "/");
        assert_eq!(w.host_header, "hooks.example.com");
        assert_eq!(w.port, 443);
        assert!(w.tls.is_some());
        let w = Webhook::new(&config("http://[::1]:9/x")).unwrap();
        assert_eq!(w.host_header, "[::1]:9");
        assert!(matches!(w.host, Host::Ip(ip) if ip.is_loopback()));
    }

    #[test]
    fn bad_settings_name_the_setting_not_the_secret() {
        let e = Webhook::new(&config("ftp://127.0.0.1/secret-key")).unwrap_err();
        assert!(e.0.contains("scheme \"ftp\""), "{e}");
        assert!(!e.0.contains("secret-key"), "{e}");
        let e = Webhook::new(&config("not a url secret-key")).unwrap_err();
        assert!(e.0.starts_with("webhook: url: not a valid URL"), "{e}");
        assert!(!e.0.contains("secret-key"), "{e}");
        let e = Webhook::new(&config("http://user:pw@127.0.0.1/")).unwrap_err();
        assert!(e.0.contains("user info"), "{e}");

        let mut c = config("http://127.0.0.1/");
        c.headers.insert("Idempotency-Key".into(), "x".into());
        assert!(Webhook::new(&c).unwrap_err().0.contains("set by watchpost"));
        let mut c = config("http://127.0.0.1/");
        c.headers.insert("bad name".into(), "x".into());
        assert!(
            Webhook::new(&c)
                .unwrap_err()
                .0
                .contains("not a header name")
        );
        let mut c = config("http://127.0.0.1/");
        c.headers
            .insert("X-Token".into(), "line\nbreak-secret".into());
        let e = Webhook::new(&c).unwrap_err();
        assert!(e.0.contains("X-Token") && !e.0.contains("secret"), "{e}");

        let mut c = config("https://127.0.0.1/");
        c.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(
            Webhook::new(&c)
                .unwrap_err()
                .0
                .contains("ca_file /nonexistent/ca.pem")
        );
        let mut c = config("http://127.0.0.1/");
        c.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(
            Webhook::new(&c)
                .unwrap_err()
                .0
                .contains("only applies to https")
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let mut c = config("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRETKEY");
        c.headers
            .insert("Authorization".into(), "Bearer SECRETTOKEN".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("qyapi.weixin.qq.com:443"), "{shown}");
        assert!(shown.contains("Authorization"), "{shown}");
        let w = Webhook::new(&c).unwrap();
        assert!(!format!("{w:?}").contains("SECRET"));
    }

    #[test]
    fn statuses() {
        let h = HeaderMap::new();
        let ok = |c: u16| classify(StatusCode::from_u16(c).unwrap(), &h, b" ok \n");
        assert_eq!(
            ok(200).unwrap(),
            Delivery {
                status: Some(200),
                body: "ok".into()
            }
        );
        assert!(ok(204).is_ok());
        for c in [408, 429, 500, 502, 503, 504, 599] {
            assert!(ok(c).unwrap_err().is_retryable(), "{c}");
        }
        for c in [301, 302, 400, 401, 403, 404, 410, 413, 422] {
            assert!(!ok(c).unwrap_err().is_retryable(), "{c}");
        }
        assert_eq!(ok(404).unwrap_err().message(), "HTTP 404 Not Found: ok");
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("17"));
        let e = classify(StatusCode::TOO_MANY_REQUESTS, &h, b"").unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(17)));
        assert_eq!(e.message(), "HTTP 429 Too Many Requests");
    }

    #[test]
    fn short_bodies() {
        assert_eq!(short(b""), "");
        assert_eq!(short("a\n  b\t中".as_bytes()), "a b 中");
        let long = "字".repeat(SHORT_BODY + 5);
        let s = short(long.as_bytes());
        assert_eq!(s.chars().count(), SHORT_BODY + 1);
        assert!(s.ends_with('…'));
        assert_eq!(short(&[0xff, b'a']), "\u{fffd}a");
    }
}
