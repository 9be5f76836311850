//! Failure classification: every failed check names the phase it failed in and a kind.

use serde::Serialize;
use std::fmt;

/// The phase a check was in when it failed (the same names as the timing fields). `query` is
/// the DNS check's one query; `banner` the TCP check's send and expected reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Dns,
    Connect,
    Tls,
    Wait,
    Download,
    Query,
    Banner,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Dns => "dns",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Wait => "wait",
            Phase::Download => "download",
            Phase::Query => "query",
            Phase::Banner => "banner",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, independent of the phase.
///
/// Every kind but [`ErrorKind::Local`] is about the target (or the network on the way to it).
/// `Local` is watchpost's own failure: the machine running the check ran out of a resource it
/// needs to make the attempt at all, so the check says nothing about the target and must not
/// be reported as the target's outage (see [`ProbeError::is_local`]).
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
    /// The response was not valid HTTP (or, for a DNS check, not a valid DNS message).
    Malformed,
    /// The reply arrived but is not what was expected (a TCP banner without the `expect` text).
    Mismatch,
    /// The body was larger than the configured cap.
    TooLarge,
    /// More redirects than allowed.
    TooManyRedirects,
    /// A redirect without a usable `Location`.
    BadRedirect,
    /// Any other I/O error.
    Io,
    /// watchpost could not make the attempt because this machine ran out of a resource:
    /// file descriptors (`EMFILE` for the process, `ENFILE` for the system), socket buffers
    /// (`ENOBUFS`), memory (`ENOMEM`) or local ports (`EADDRNOTAVAIL`: the ephemeral port
    /// range is exhausted), when opening a socket, connecting or resolving (the resolver's own
    /// UDP/TCP sockets included). Serialized as `local`. The message says what ran out, e.g.
    /// `watchpost ran out of file descriptors (Too many open files)`.
    Local,
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
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::TooManyRedirects => "too_many_redirects",
            ErrorKind::BadRedirect => "bad_redirect",
            ErrorKind::Io => "io",
            ErrorKind::Local => "local",
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

    /// Whether this is watchpost's own failure ([`ErrorKind::Local`]) rather than the
    /// target's: the check was not really made, and must not count as the target being down.
    pub fn is_local(&self) -> bool {
        self.kind == ErrorKind::Local
    }

    /// A [`ErrorKind::Local`] error in `phase` when `err` is one of the local resource errors
    /// (see [`local_cause`]).
    pub(crate) fn local(phase: Phase, err: &std::io::Error) -> Option<ProbeError> {
        local_cause(err).map(|message| ProbeError::new(phase, ErrorKind::Local, message))
    }
}

/// Errors in the request itself (bad URL, bad header, bad target): the caller's mistake, found
/// before any network I/O. The CLI maps these to exit code 2.
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
    #[error("invalid target {target:?}: {reason}")]
    Target { target: String, reason: String },
}

impl From<watchpost_net::CaError> for RequestError {
    fn from(e: watchpost_net::CaError) -> Self {
        RequestError::CaFile {
            path: e.path,
            reason: e.reason,
        }
    }
}

/// When `err` means this machine ran out of something (see [`ErrorKind::Local`]): what ran
/// out, in words, with the system's own description in parentheses.
pub(crate) fn local_cause(err: &std::io::Error) -> Option<String> {
    let code = err.raw_os_error()?;
    let what = match code {
        libc::EMFILE => "watchpost ran out of file descriptors",
        libc::ENFILE => "the system ran out of file descriptors",
        libc::ENOBUFS => "watchpost ran out of socket buffer space",
        libc::ENOMEM => "watchpost ran out of memory",
        libc::EADDRNOTAVAIL => "watchpost could not get a local port or address",
        _ => return None,
    };
    // `Too many open files (os error 24)` without the number.
    let text = std::io::Error::from_raw_os_error(code).to_string();
    let text = match text.rfind(" (os error") {
        Some(i) => &text[..i],
        None => text.as_str(),
    };
    Some(format!("{what} ({text})"))
}

/// Classify an I/O error from the given phase into a kind.
pub(crate) fn io_kind(err: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    if local_cause(err).is_some() {
        return ErrorKind::Local;
    }
    match err.kind() {
        K::ConnectionRefused => ErrorKind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => ErrorKind::Reset,
        K::TimedOut => ErrorKind::Timeout,
        K::HostUnreachable | K::NetworkUnreachable => ErrorKind::Unreachable,
        K::UnexpectedEof => ErrorKind::Closed,
        K::InvalidData => ErrorKind::Malformed,
        _ => ErrorKind::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_resource_errors_are_local() {
        for (code, words) in [
            (libc::EMFILE, "watchpost ran out of file descriptors"),
            (libc::ENFILE, "the system ran out of file descriptors"),
            (libc::ENOBUFS, "socket buffer space"),
            (libc::ENOMEM, "memory"),
            (libc::EADDRNOTAVAIL, "local port"),
        ] {
            let err = std::io::Error::from_raw_os_error(code);
            assert_eq!(io_kind(&err), ErrorKind::Local, "{err}");
            let message = local_cause(&err).unwrap();
            assert!(message.contains(words), "{message}");
            assert!(!message.contains("os error"), "{message}");
            let e = ProbeError::local(Phase::Connect, &err).unwrap();
            assert!(e.is_local());
            assert_eq!(e.kind.as_str(), "local");
        }
        let emfile = local_cause(&std::io::Error::from_raw_os_error(libc::EMFILE)).unwrap();
        assert_eq!(
            emfile,
            "watchpost ran out of file descriptors (Too many open files)"
        );
    }

    #[test]
    fn target_errors_are_not_local() {
        for code in [libc::ECONNREFUSED, libc::ECONNRESET, libc::EHOSTUNREACH] {
            let err = std::io::Error::from_raw_os_error(code);
            assert_ne!(io_kind(&err), ErrorKind::Local, "{err}");
            assert!(local_cause(&err).is_none());
        }
        let e = ProbeError::new(Phase::Connect, ErrorKind::Refused, "x");
        assert!(!e.is_local());
        assert_eq!(
            serde_json::to_value(ErrorKind::Local).unwrap(),
            serde_json::json!("local")
        );
    }
}
