//! Failure classification: every failed check names the phase it failed in and a kind.

use serde::Serialize;
use std::fmt;

/// The phase a check was in when it failed (the same names as the timing fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Dns,
    Connect,
    Tls,
    Wait,
    Download,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Dns => "dns",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Wait => "wait",
            Phase::Download => "download",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, independent of the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The name does not exist (NXDOMAIN).
    Nxdomain,
    /// The name exists but has no A/AAAA records.
    NoAddress,
    /// Any other resolver failure (SERVFAIL, REFUSED, no reachable name server).
    Resolver,
    /// The phase (or the overall deadline) ran out of time.
    Timeout,
    /// The peer refused the TCP connection.
    Refused,
    /// No route to the host or network.
    Unreachable,
    /// The peer reset the connection.
    Reset,
    /// The peer closed the connection before the response (or body) was complete.
    Closed,
    /// The server certificate was rejected (expired, unknown issuer, name mismatch, ...).
    Certificate,
    /// The TLS handshake failed for another reason (protocol, alert, version).
    Handshake,
    /// The response was not valid HTTP.
    Malformed,
    /// The body was larger than the configured cap.
    TooLarge,
    /// More redirects than allowed.
    TooManyRedirects,
    /// A redirect without a usable `Location`.
    BadRedirect,
    /// Any other I/O error.
    Io,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Nxdomain => "nxdomain",
            ErrorKind::NoAddress => "no_address",
            ErrorKind::Resolver => "resolver",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Refused => "refused",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Reset => "reset",
            ErrorKind::Closed => "closed",
            ErrorKind::Certificate => "certificate",
            ErrorKind::Handshake => "handshake",
            ErrorKind::Malformed => "malformed",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::TooManyRedirects => "too_many_redirects",
            ErrorKind::BadRedirect => "bad_redirect",
            ErrorKind::Io => "io",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified check failure. `message` is for people; `phase` and `kind` are for machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{phase} {kind}: {message}")]
pub struct ProbeError {
    pub phase: Phase,
    pub kind: ErrorKind,
    pub message: String,
}

impl ProbeError {
    pub fn new(phase: Phase, kind: ErrorKind, message: impl Into<String>) -> Self {
        ProbeError {
            phase,
            kind,
            message: message.into(),
        }
    }
}

/// Errors in the request itself (bad URL, bad header): the caller's mistake, found before any
/// network I/O. The CLI maps these to exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("unsupported URL scheme {0:?} (use http or https)")]
    Scheme(String),
    #[error("invalid method {0:?}")]
    Method(String),
    #[error("invalid header {0:?}: expected 'Name: value'")]
    Header(String),
    #[error("invalid --resolve {0:?}: expected HOST:PORT:ADDRESS")]
    Resolve(String),
    #[error("cannot load CA certificates from {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("cannot read the system DNS configuration: {0}")]
    Resolver(String),
}

/// Classify an I/O error from the given phase into a kind.
pub(crate) fn io_kind(err: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    match err.kind() {
        K::ConnectionRefused => ErrorKind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => ErrorKind::Reset,
        K::TimedOut => ErrorKind::Timeout,
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => ErrorKind::Unreachable,
        K::UnexpectedEof => ErrorKind::Closed,
        K::InvalidData => ErrorKind::Malformed,
        _ => ErrorKind::Io,
    }
}
