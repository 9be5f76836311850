//! The HTTP client every HTTP-based channel posts through: one parsed, checked destination
//! ([`Endpoint`]), one request per send on a new connection, TLS verified against the webpki
//! roots (plus an optional `ca_file`), the whole exchange bounded by a timeout, and an
//! [`Answer`] that channels classify (by status, or by the JSON error code the provider puts
//! in a 200).
//!
//! Error messages show the scheme, host and port only: robot URLs carry their key in the
//! path or query.
//!
//! A far end may echo the request in its answer (the URL, the headers, the body): every text
//! taken from an answer — the [`Answer::short_body`] kept in a [`Delivery`] or a
//! [`SendError`], and a provider's error message read from its JSON ([`Answer::text`]) — has
//! the channel's secrets masked as `<redacted>` first ([`Redact`]): the URL's path and query
//! and their parts, the values of the sensitive headers sent (configured `headers`,
//! computed `Authorization`), the values of an extra signed query, and whatever the channel
//! adds (a bot token, a signing secret and the signature computed from it, API keys), each
//! also in its percent-encoded and JSON-escaped forms.

use crate::{ConfigError, Delivery, SHORT_BODY, SendError};
use bytes::Bytes;
use http::header::{
    CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use watchpost_net::AbortOnDrop;

/// At most this much of a response body is read.
const MAX_RESPONSE: usize = 64 * 1024;
/// `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("watchpost/", env!("CARGO_PKG_VERSION"));

/// A checked HTTP(S) destination: host, port, request target, TLS settings.
pub struct Endpoint {
    host: Host,
    port: u16,
    /// `Host` header value.
    host_header: HeaderValue,
    /// Origin-form request target: path and query.
    target: String,
    /// `http://host:port`, for messages.
    shown: String,
    /// Some for `https`.
    tls: Option<Arc<ClientConfig>>,
    /// The URL's secrets, and the channel's own (see [`Endpoint::with_secrets`]).
    redact: Redact,
}

enum Host {
    Ip(IpAddr),
    Name(String),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("to", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Parse and check `url` (absolute `http(s)`, a host, no user info) and set up TLS with
    /// `ca_file`'s certificates trusted besides the webpki roots. `setting` prefixes errors
    /// (`"wecom: webhook"`); the URL itself is never repeated in them.
    pub fn new(url: &str, ca_file: Option<&Path>, setting: &str) -> Result<Endpoint, ConfigError> {
        let err = |m: String| ConfigError(format!("{setting}: {m}"));
        let url = url::Url::parse(url).map_err(|e| err(format!("not a valid URL ({e})")))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(err(format!(
                    "scheme {other:?} is not supported (http or https)"
                )));
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err(
                "user info in the URL is not supported; send credentials \
                            with `headers` (e.g. Authorization)"
                    .into(),
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => Host::Name(d.to_string()),
            Some(url::Host::Ipv4(ip)) => Host::Ip(ip.into()),
            Some(url::Host::Ipv6(ip)) => Host::Ip(ip.into()),
            None => return Err(err("no host".into())),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| err("no port".into()))?;
        let host_str = url.host_str().unwrap_or_default();
        let host_header = match url.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.to_string(),
        };
        let host_header = HeaderValue::from_str(&host_header)
            .map_err(|_| err("the host is not a valid Host header".into()))?;
        let mut target = url.path().to_string();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let shown = format!("{}://{host_str}:{port}", url.scheme());
        let ca_err = |path: &Path, m: String| {
            ConfigError(format!(
                "{}: ca_file {}: {m}",
                setting.split(':').next().unwrap_or(setting),
                path.display()
            ))
        };

        let tls = if https {
            let extra = match ca_file {
                Some(path) => {
                    watchpost_net::load_ca_file(path).map_err(|e| ca_err(path, e.reason))?
                }
                None => Vec::new(),
            };
            let tls = watchpost_net::verified_config(&extra, &[b"http/1.1"])
                .map_err(|e| ca_err(Path::new(&e.path), e.reason))?;
            Some(Arc::new(tls))
        } else {
            if let Some(path) = ca_file {
                return Err(ca_err(path, "only applies to https URLs".into()));
            }
            None
        };

        let redact = Redact::for_url(&url);
        Ok(Endpoint {
            host,
            port,
            host_header,
            target,
            shown,
            tls,
            redact,
        })
    }

    /// Mask `secrets` too (a bot token, a signing secret, API keys) in every text taken from
    /// an answer.
    pub fn with_secrets<S: AsRef<str>>(mut self, secrets: impl IntoIterator<Item = S>) -> Self {
        for secret in secrets {
            self.redact.add(secret.as_ref());
        }
        self
    }

    /// The secrets masked in answers of this endpoint (the URL's and the channel's; per-request
    /// headers and signatures are added for each request).
    pub fn redact(&self) -> &Redact {
        &self.redact
    }

    /// `http://host:port` (no path: it may hold a key).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The request target (path and query). Holds secrets for most robots: never log it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the endpoint uses TLS.
    pub fn is_https(&self) -> bool {
        self.tls.is_some()
    }

    /// POST `body` as `application/json` (unless `headers` sets another `Content-Type`), with
    /// `extra_query` (`a=1&b=2`, already encoded) appended to the URL's query. One attempt on
    /// a new connection; the whole exchange must finish within `timeout`. Texts taken from the
    /// answer mask this endpoint's secrets, the values of the sensitive `headers` and of
    /// `extra_query`.
    pub async fn post(
        &self,
        extra_query: Option<&str>,
        headers: &HeaderMap,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, SendError> {
        self.post_with(extra_query, headers, body, timeout, &Redact::default())
            .await
    }

    /// [`Endpoint::post`], masking `secrets` (e.g. a signature in the body) as well.
    pub async fn post_with(
        &self,
        extra_query: Option<&str>,
        headers: &HeaderMap,
        body: Vec<u8>,
        timeout: Duration,
        secrets: &Redact,
    ) -> Result<Answer, SendError> {
        let mut redact = self.redact.clone();
        redact.extend(secrets);
        for value in headers.values().filter(|v| v.is_sensitive()) {
            redact.add(&String::from_utf8_lossy(value.as_bytes()));
        }
        let mut target = self.target.clone();
        if let Some(q) = extra_query.filter(|q| !q.is_empty()) {
            redact.add_query(q);
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(q);
        }
        let result = match tokio::time::timeout(timeout, self.exchange(target, headers, body)).await
        {
            Ok(result) => result,
            Err(_) => Err(SendError::retryable(format!(
                "{}: no answer within {}",
                self.shown,
                watchpost_units::format_ms(timeout.as_secs_f64() * 1000.0)
            ))),
        };
        match result {
            Ok(mut answer) => {
                answer.redact = redact;
                Ok(answer)
            }
            Err(e) => Err(redact.error(e)),
        }
    }

    async fn exchange(
        &self,
        target: String,
        headers: &HeaderMap,
        body: Vec<u8>,
    ) -> Result<Answer, SendError> {
        let tcp = self.connect().await?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(target)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::fatal(format!("{}: building the request: {e}", self.shown)))?;
        let h = request.headers_mut();
        h.insert(HOST, self.host_header.clone());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        for (name, value) in headers {
            h.insert(name.clone(), value.clone());
        }
        match &self.tls {
            None => self.request(tcp, request).await,
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
                self.request(stream, request).await
            }
        }
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
    async fn request<S>(&self, io: S, request: Request<Full<Bytes>>) -> Result<Answer, SendError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let http_error =
            |e: hyper::Error| SendError::retryable(format!("{}: HTTP: {e}", self.shown));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(http_error)?;
        let driver = AbortOnDrop::spawn(async move {
            let _ = connection.await;
        });
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
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: answer,
            redact: Redact::default(),
        })
    }
}

/// What the far end answered (the body cut at 64 KiB), and the secrets to mask in any text
/// taken from it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// As received: classify from it, but take texts through [`Answer::short_body`] and
    /// [`Answer::text`].
    pub body: Vec<u8>,
    pub redact: Redact,
}

impl Answer {
    /// An answer with nothing to mask (tests, and answers made up locally).
    pub fn new(status: StatusCode, headers: HeaderMap, body: Vec<u8>) -> Answer {
        Answer {
            status,
            headers,
            body,
            redact: Redact::default(),
        }
    }

    /// The body as one line of at most [`SHORT_BODY`] characters, secrets masked.
    pub fn short_body(&self) -> String {
        self.redact.short(&self.body)
    }

    /// A text read out of the answer (a provider's error message from its JSON) as one line
    /// of at most [`SHORT_BODY`] characters, secrets masked.
    pub fn text(&self, text: &str) -> String {
        self.redact.short(text.as_bytes())
    }

    /// A `Retry-After` in seconds, when present.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }

    /// Classify by status alone: 2xx delivered; 408, 429, 5xx retryable (honouring
    /// `Retry-After`); anything else (other 4xx, 3xx: redirects are not followed) fatal.
    pub fn by_status(&self) -> Result<Delivery, SendError> {
        let body = self.short_body();
        let code = self.status.as_u16();
        if self.status.is_success() {
            return Ok(Delivery {
                status: Some(code),
                body,
            });
        }
        let mut message = format!("HTTP {}", self.status);
        if !body.is_empty() {
            message.push_str(": ");
            message.push_str(&body);
        }
        if code == 408 || code == 429 || self.status.is_server_error() {
            Err(SendError::Retryable {
                message,
                retry_after: self.retry_after(),
            })
        } else {
            Err(SendError::Fatal { message })
        }
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The delivery record for a successful answer.
    pub fn delivery(&self) -> Delivery {
        Delivery {
            status: Some(self.status.as_u16()),
            body: self.short_body(),
        }
    }
}

/// The text that replaces a secret.
pub const REDACTED: &str = "<redacted>";
/// Secrets shorter than this are not masked: they would mask ordinary words, and hide
/// nothing worth hiding.
const MIN_SECRET: usize = 3;
/// URL parts (query values, path segments) shorter than this are not taken for secrets.
const MIN_URL_PART: usize = 4;

/// A channel's secret values, masked as [`REDACTED`] in every text that comes from the far
/// end. Each secret is masked as written and in the forms an echo may show it in:
/// percent-encoded (upper- and lower-case hex, `+` or `%20` for spaces), percent-decoded,
/// and JSON-escaped (with and without `\/`). Values shorter than 3 characters are not
/// masked.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redact {
    /// Every form of every secret, longest first.
    forms: Vec<String>,
}

impl std::fmt::Debug for Redact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redact({} forms)", self.forms.len())
    }
}

impl Redact {
    /// Nothing to mask yet.
    pub fn new() -> Redact {
        Redact::default()
    }

    /// This and `secret`.
    pub fn with(mut self, secret: &str) -> Redact {
        self.add(secret);
        self
    }

    /// Mask `secret` (and its encoded forms) too.
    pub fn add(&mut self, secret: &str) {
        if secret.chars().count() < MIN_SECRET {
            return;
        }
        let mut forms = vec![secret.to_string()];
        let encoded = percent_encode(secret);
        forms.push(lower_hex(&encoded));
        forms.push(encoded.replace("%20", "+"));
        forms.push(encoded);
        forms.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
        if let Some(decoded) = percent_decode(secret) {
            forms.push(decoded);
        }
        if let Ok(json) = serde_json::to_string(secret) {
            let json = json[1..json.len() - 1].to_string();
            forms.push(json.replace('/', "\\/"));
            forms.push(json);
        }
        for form in forms {
            if form.chars().count() >= MIN_SECRET && !self.forms.contains(&form) {
                self.forms.push(form);
            }
        }
        self.forms
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Mask every secret of `other` too.
    pub fn extend(&mut self, other: &Redact) {
        for form in &other.forms {
            if !self.forms.contains(form) {
                self.forms.push(form.clone());
            }
        }
        self.forms
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Mask the values of a query (`a=1&sign=...`, as sent) that are long enough to be
    /// secrets.
    pub fn add_query(&mut self, query: &str) {
        for pair in query.split('&') {
            let raw = pair.split_once('=').map_or(pair, |(_, v)| v);
            if raw.chars().count() >= MIN_URL_PART {
                self.add(raw);
            }
        }
        for (_, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if value.chars().count() >= MIN_URL_PART {
                self.add(&value);
            }
        }
    }

    /// The secrets of a URL: its path and query (whole, and the query's values), and the
    /// path segments that look like keys (8 characters or more with a digit, or 20 or more).
    pub fn for_url(url: &url::Url) -> Redact {
        let mut r = Redact::default();
        let path = url.path();
        let query = url.query();
        if path.len() > 1 {
            r.add(path);
        }
        if let Some(q) = query {
            r.add(&format!("{path}?{q}"));
            r.add(q);
            r.add_query(q);
        }
        for segment in path.split('/') {
            let n = segment.chars().count();
            if n >= 20 || (n >= 8 && segment.chars().any(|c| c.is_ascii_digit())) {
                r.add(segment);
            }
        }
        r
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// `text` with every secret replaced by [`REDACTED`] (the longest match first, left to
    /// right).
    pub fn text(&self, text: &str) -> String {
        if self.forms.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'scan: while !rest.is_empty() {
            for form in &self.forms {
                if rest.starts_with(form.as_str()) {
                    out.push_str(REDACTED);
                    rest = &rest[form.len()..];
                    continue 'scan;
                }
            }
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }

    /// `body` as one line of at most [`SHORT_BODY`] characters, secrets masked before it is
    /// cut (so no part of one is left at the cut).
    pub fn short(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        short(self.text(&text).as_bytes())
    }

    /// `e` with its message masked (its class and `retry_after` kept).
    pub fn error(&self, e: SendError) -> SendError {
        if self.forms.is_empty() {
            return e;
        }
        with_message(e, |m| self.text(m))
    }

    /// `d` with its body masked.
    pub fn delivery(&self, mut d: Delivery) -> Delivery {
        d.body = self.text(&d.body);
        d
    }

    /// A send's outcome with every text masked.
    pub fn result(&self, r: Result<Delivery, SendError>) -> Result<Delivery, SendError> {
        match r {
            Ok(d) => Ok(self.delivery(d)),
            Err(e) => Err(self.error(e)),
        }
    }
}

/// Every byte but ASCII letters and digits as `%XX` (upper-case hex).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` escapes decoded, when there are any and the result is UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h)? * 16 + hex(l)?) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `%2f` for `%2F`: the hex digits of percent-escapes in lower case.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut escape = 0;
    for c in encoded.chars() {
        if c == '%' {
            escape = 2;
            out.push(c);
        } else if escape > 0 {
            escape -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The body as text, on one line, at most [`SHORT_BODY`] characters.
pub fn short(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(SHORT_BODY) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// Parse configured extra headers (`headers: {K: V}`), refusing names in `reserved` (ones the
/// channel sets itself). Values are marked sensitive; errors never show a value.
pub fn configured_headers(
    configured: &std::collections::BTreeMap<String, String>,
    reserved: &[&str],
    kind: &str,
) -> Result<HeaderMap, ConfigError> {
    let mut headers = HeaderMap::new();
    for (name, value) in configured {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError(format!("{kind}: headers: {name:?} is not a header name")))?;
        if reserved.contains(&header.as_str()) {
            return Err(ConfigError(format!(
                "{kind}: headers: {name} is set by watchpost and can't be configured"
            )));
        }
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            ConfigError(format!(
                "{kind}: headers: the value of {name} is not a valid header value"
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(header, value);
    }
    Ok(headers)
}

/// Configured extra headers as `Debug` shows them: the names, every value `<redacted>`.
pub(crate) fn redacted_headers(
    configured: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<&str, &str> {
    configured
        .keys()
        .map(|k| (k.as_str(), "<redacted>"))
        .collect()
}

/// `scheme://host:port/<redacted>` for a URL, for `Debug` output of configs holding one.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}/<redacted>", u.scheme()),
            _ => format!("{}://<redacted>", u.scheme()),
        },
        Err(_) => "<invalid url>".to_string(),
    }
}

/// A `timeout:` setting: a duration such as `10s` or `2500ms`, more than zero.
pub fn timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    use serde::Deserialize;
    let text = String::deserialize(d)?;
    let value = watchpost_units::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("timeout: {e}")))?;
    if value.is_zero() {
        return Err(serde::de::Error::custom("timeout: must be more than 0"));
    }
    Ok(value)
}

/// `kind: ` in front of an error's message (its class and `retry_after` stay the same).
pub(crate) fn prefixed(kind: &str, e: SendError) -> SendError {
    with_message(e, |m| format!("{kind}: {m}"))
}

/// An error with its message rewritten by `f` (its class and `retry_after` stay the same).
pub(crate) fn with_message(e: SendError, f: impl FnOnce(&str) -> String) -> SendError {
    match e {
        SendError::Retryable {
            message,
            retry_after,
        } => SendError::Retryable {
            message: f(&message),
            retry_after,
        },
        SendError::Fatal { message } => SendError::Fatal {
            message: f(&message),
        },
    }
}

/// The default `timeout:` of HTTP channels.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `serde(default = ...)` for [`DEFAULT_TIMEOUT`].
pub fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: u16, body: &[u8]) -> Answer {
        Answer::new(
            StatusCode::from_u16(code).unwrap(),
            HeaderMap::new(),
            body.to_vec(),
        )
    }

    #[test]
    fn targets() {
        let e = Endpoint::new("http://127.0.0.1:8080/a/b?key=k1&x=%20", None, "t").unwrap();
        assert_eq!(e.target, "/a/b?key=k1&x=%20");
        assert_eq!(e.host_header, "127.0.0.1:8080");
        assert_eq!(e.shown, "http://127.0.0.1:8080");
        assert!(!e.is_https());
        let e = Endpoint::new("https://hooks.example.com", None, "t").unwrap();
        assert_eq!(e.target, "/");
        assert_eq!(e.host_header, "hooks.example.com");
        assert_eq!(e.port, 443);
        assert!(e.is_https());
        let e = Endpoint::new("http://[::1]:9/x", None, "t").unwrap();
        assert_eq!(e.host_header, "[::1]:9");
        assert!(matches!(e.host, Host::Ip(ip) if ip.is_loopback()));
    }

    #[test]
    fn bad_urls_name_the_setting_not_the_secret() {
        let e = Endpoint::new("ftp://127.0.0.1/secret-key", None, "wecom: webhook").unwrap_err();
        assert!(e.0.starts_with("wecom: webhook: scheme \"ftp\""), "{e}");
        assert!(!e.0.contains("secret-key"), "{e}");
        let e = Endpoint::new("not a url secret-key", None, "x: url").unwrap_err();
        assert!(e.0.starts_with("x: url: not a valid URL"), "{e}");
        assert!(!e.0.contains("secret-key"), "{e}");
        let e = Endpoint::new("http://user:pw@127.0.0.1/", None, "x: url").unwrap_err();
        assert!(e.0.contains("user info"), "{e}");
        let e = Endpoint::new(
            "https://127.0.0.1/",
            Some(Path::new("/nonexistent/ca.pem")),
            "x: url",
        )
        .unwrap_err();
        assert!(e.0.starts_with("x: ca_file /nonexistent/ca.pem"), "{e}");
        let e = Endpoint::new(
            "http://127.0.0.1/",
            Some(Path::new("/nonexistent/ca.pem")),
            "x: url",
        )
        .unwrap_err();
        assert!(e.0.contains("only applies to https"), "{e}");
    }

    #[test]
    fn statuses() {
        assert_eq!(
            answer(200, b" ok \n").by_status().unwrap(),
            Delivery {
                status: Some(200),
                body: "ok".into()
            }
        );
        assert!(answer(204, b"").by_status().is_ok());
        for c in [408, 429, 500, 502, 503, 504, 599] {
            assert!(
                answer(c, b"").by_status().unwrap_err().is_retryable(),
                "{c}"
            );
        }
        for c in [301, 302, 400, 401, 403, 404, 410, 413, 422] {
            assert!(
                !answer(c, b"").by_status().unwrap_err().is_retryable(),
                "{c}"
            );
        }
        assert_eq!(
            answer(404, b"ok").by_status().unwrap_err().message(),
            "HTTP 404 Not Found: ok"
        );
        let mut a = answer(429, b"");
        a.headers
            .insert(RETRY_AFTER, HeaderValue::from_static("17"));
        let e = a.by_status().unwrap_err();
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

    #[test]
    fn redacted_urls() {
        assert_eq!(
            redact_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET"),
            "https://qyapi.weixin.qq.com:443/<redacted>"
        );
        assert_eq!(redact_url("nope SECRET"), "<invalid url>");
    }

    #[test]
    fn redact_masks_every_form_of_a_secret() {
        let r = Redact::new().with("a/b+c d=é");
        for form in [
            "a/b+c d=é",
            "a%2Fb%2Bc%20d%3D%C3%A9",
            "a%2fb%2bc%20d%3d%c3%a9",
            "a%2Fb%2Bc+d%3D%C3%A9",
            "a\\/b+c d=é",
        ] {
            assert_eq!(r.text(&format!("x {form} y")), "x <redacted> y", "{form}");
        }
        // A secret written encoded is masked decoded as well.
        let r = Redact::new().with("k%2Bey");
        assert_eq!(r.text("k+ey and k%2Bey"), "<redacted> and <redacted>");
        // JSON escaping.
        let r = Redact::new().with("q\"uote");
        assert_eq!(r.text(r#"{"m":"q\"uote"}"#), r#"{"m":"<redacted>"}"#);
        // Too short to mask; nothing given, nothing changed.
        assert!(Redact::new().with("ab").is_empty());
        assert_eq!(Redact::new().text("all text"), "all text");
    }

    #[test]
    fn redact_takes_the_longest_match_and_keeps_the_rest() {
        let r = Redact::new().with("secret").with("secret-and-more");
        assert_eq!(
            r.text("[secret-and-more] [secret] 中文 secre"),
            "[<redacted>] [<redacted>] 中文 secre"
        );
    }

    #[test]
    fn redact_before_cutting() {
        // A secret across the cut at SHORT_BODY characters leaves no prefix behind.
        let secret = "ZYXWVUTSRQPONMLKJIHGFEDCBA0123456789";
        let body = format!("{}{secret} tail", "x".repeat(SHORT_BODY - 10));
        let r = Redact::new().with(secret);
        let shown = r.short(body.as_bytes());
        assert!(!shown.contains("ZYXWVU"), "{shown}");
        assert!(shown.ends_with('…'), "{shown}");
        let unmasked = short(body.as_bytes());
        assert!(
            unmasked.contains("ZYXWVUTSRQ"),
            "the case is real: {unmasked}"
        );
    }

    #[test]
    fn url_secrets() {
        let url = url::Url::parse(
            "https://h.test/cgi-bin/webhook/send?key=693a91f6-7b2c&debug=1&x=%2Bplus",
        )
        .unwrap();
        let r = Redact::for_url(&url);
        assert_eq!(
            r.text("POST /cgi-bin/webhook/send?key=693a91f6-7b2c&debug=1&x=%2Bplus"),
            "POST <redacted>"
        );
        assert_eq!(r.text("bad key 693a91f6-7b2c"), "bad key <redacted>");
        assert_eq!(r.text("x is +plus"), "x is <redacted>");
        // Short values and ordinary path words are left alone.
        assert_eq!(r.text("send debug=1 webhook"), "send debug=1 webhook");
        let url =
            url::Url::parse("https://h.test/services/T0000AAAA/B0000BBBB/abcdefghijklmnopqrstuvwx")
                .unwrap();
        let r = Redact::for_url(&url);
        assert_eq!(r.text("hook abcdefghijklmnopqrstuvwx"), "hook <redacted>");
        assert_eq!(r.text("team T0000AAAA"), "team <redacted>");
        assert_eq!(r.text("services"), "services");
        assert!(Redact::for_url(&url::Url::parse("http://h.test/").unwrap()).is_empty());
    }

    #[test]
    fn errors_and_deliveries_are_masked_keeping_their_class() {
        let r = Redact::new().with("tok3n");
        let e = r.error(SendError::Retryable {
            message: "HTTP 503: tok3n".into(),
            retry_after: Some(Duration::from_secs(7)),
        });
        assert_eq!(e.message(), "HTTP 503: <redacted>");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let d = r.delivery(Delivery {
            status: Some(200),
            body: "ok tok3n".into(),
        });
        assert_eq!(d.body, "ok <redacted>");
        let a = Answer {
            redact: r.clone(),
            ..answer(400, b"{\"errmsg\": \"bad tok3n\"}")
        };
        assert_eq!(a.text("bad tok3n"), "bad <redacted>");
        assert_eq!(
            a.by_status().unwrap_err().message(),
            "HTTP 400 Bad Request: {\"errmsg\": \"bad <redacted>\"}"
        );
    }

    #[tokio::test]
    async fn a_failed_exchange_masks_too() {
        // Nothing listens: the connect error names the endpoint, never the secrets.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let e = Endpoint::new(
            &format!("http://127.0.0.1:{port}/k/SECRET-PATH-123"),
            None,
            "t",
        )
        .unwrap();
        let err = e
            .post(None, &HeaderMap::new(), Vec::new(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(!err.message().contains("SECRET"), "{err}");
        assert!(err.is_retryable());
    }

    #[test]
    fn extra_headers() {
        let mut c = std::collections::BTreeMap::new();
        c.insert("X-Token".to_string(), "abc".to_string());
        let h = configured_headers(&c, &["host"], "webhook").unwrap();
        assert!(h["x-token"].is_sensitive());
        c.insert("Host".to_string(), "x".to_string());
        let e = configured_headers(&c, &["host"], "webhook").unwrap_err();
        assert!(e.0.contains("set by watchpost"), "{e}");
        let mut c = std::collections::BTreeMap::new();
        c.insert("X-Token".to_string(), "line\nbreak-secret".to_string());
        let e = configured_headers(&c, &[], "webhook").unwrap_err();
        assert!(e.0.contains("X-Token") && !e.0.contains("secret"), "{e}");
    }
}
