//! What to check: the request, its limits and timeouts.

use crate::error::RequestError;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use std::net::IpAddr;
use std::time::Duration;
use url::Url;

/// Default cap on the body read: a huge response must not exhaust memory.
pub const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;
/// Redirects followed at most (when following is enabled).
pub const MAX_REDIRECTS: u32 = 10;

/// Timeouts: an overall deadline for the whole check (all hops) and an optional limit for each
/// phase. A phase's effective limit is the smaller of its own and what is left of the deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    pub total: Duration,
    pub dns: Option<Duration>,
    pub connect: Option<Duration>,
    pub tls: Option<Duration>,
    pub wait: Option<Duration>,
    pub download: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            total: Duration::from_secs(10),
            dns: None,
            connect: None,
            tls: None,
            wait: None,
            download: None,
        }
    }
}

/// `--resolve HOST:PORT:ADDRESS`: use ADDRESS for HOST:PORT and skip DNS (as curl does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOverride {
    pub host: String,
    pub port: u16,
    pub addr: IpAddr,
}

impl std::str::FromStr for ResolveOverride {
    type Err = RequestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RequestError::Resolve(s.to_string());
        let (host, rest) = s.split_once(':').ok_or_else(bad)?;
        let (port, addr) = rest.split_once(':').ok_or_else(bad)?;
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        Ok(ResolveOverride {
            host: host.to_ascii_lowercase(),
            port: port.parse().map_err(|_| bad())?,
            addr: addr.parse().map_err(|_| bad())?,
        })
    }
}

/// One HTTP check.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub url: Url,
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub follow_redirects: bool,
    pub timeouts: Timeouts,
    /// Accept any certificate (the handshake is still performed and timed).
    pub insecure: bool,
    pub resolve: Vec<ResolveOverride>,
    pub max_body: u64,
}

impl HttpRequest {
    /// A GET of `url` with defaults: 10 s deadline, no redirects, verified TLS, 10 MiB cap.
    pub fn get(url: &str) -> Result<Self, RequestError> {
        let parsed = Url::parse(url).map_err(|e| RequestError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        match parsed.scheme() {
            "http" | "https" => {}
            other => return Err(RequestError::Scheme(other.to_string())),
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(RequestError::Url {
                url: url.to_string(),
                reason: "no host".into(),
            });
        }
        Ok(HttpRequest {
            url: parsed,
            method: Method::GET,
            headers: Vec::new(),
            body: Bytes::new(),
            follow_redirects: false,
            timeouts: Timeouts::default(),
            insecure: false,
            resolve: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
        })
    }

    pub fn method(mut self, method: &str) -> Result<Self, RequestError> {
        self.method = Method::from_bytes(method.as_bytes())
            .map_err(|_| RequestError::Method(method.to_string()))?;
        Ok(self)
    }

    /// Add a header given as `Name: value`.
    pub fn header_line(mut self, line: &str) -> Result<Self, RequestError> {
        let bad = || RequestError::Header(line.to_string());
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
        self.headers.push((name, value));
        Ok(self)
    }
}
