//! TLS for every probe that speaks it (https, tls): client configs, the handshake, what it
//! learned about the certificate, and the classification of failures.
//!
//! The configs are built once per [`Probes`](crate::Probes) from watchpost-net
//! (crates/net/src/tls.rs): a verifying one (webpki roots plus any extra CA the caller trusts)
//! and an `insecure` one that accepts any certificate but still checks handshake signatures.
//! Session resumption is disabled in both: every check must pay (and measure) a full handshake.
//!
//! The `tls` check kind wants the handshake to complete even when the chain does not verify,
//! so that it can report the certificate (days left, subject, issuer) and why it was refused:
//! [`TlsConfigs::recording`] builds a config whose verifier runs the real verification,
//! records the outcome, and accepts.

use crate::error::{ErrorKind, Phase, ProbeError, RequestError};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig};
use serde::Serialize;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use watchpost_net::{AcceptAnyCertificate, InspectCertificate};

/// What a check learned about the TLS session and the server's certificate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The leaf certificate's notAfter, RFC 3339 UTC.
    pub cert_not_after: Option<String>,
    /// Days (fractional) until the leaf certificate expires; negative when already expired.
    pub cert_days_left: Option<f64>,
    /// Whether the chain verified for the name asked for (with `insecure`, whether it would
    /// have).
    pub verified: bool,
    /// Why it did not verify (`certificate expired`, `unknown issuer: ...`, `name mismatch:
    /// ...`).
    pub verify_error: Option<String>,
    /// The leaf certificate's subject and issuer, as distinguished names (`CN=site.test`).
    pub subject: Option<String>,
    pub issuer: Option<String>,
}

pub(crate) struct TlsConfigs {
    pub verified: Arc<ClientConfig>,
    pub insecure: Arc<ClientConfig>,
    /// The verification `verified` does, for [`TlsConfigs::recording`].
    verifier: Arc<WebPkiServerVerifier>,
}

fn finish(mut config: ClientConfig) -> Arc<ClientConfig> {
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

const HTTP_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

impl TlsConfigs {
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> Result<Self, RequestError> {
        let roots = watchpost_net::root_store(extra_roots)?;
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), watchpost_net::provider())
                .build()
                .map_err(|e| RequestError::CaFile {
                    path: "(extra roots)".into(),
                    reason: e.to_string(),
                })?;
        Ok(TlsConfigs {
            verified: finish(watchpost_net::verified_config(extra_roots, &HTTP_ALPN)?),
            insecure: finish(watchpost_net::insecure_config(&HTTP_ALPN)),
            verifier,
        })
    }

    /// A config (no ALPN) that verifies like `verified`, records the outcome in the returned
    /// slot, and completes the handshake either way.
    pub fn recording(&self) -> (Arc<ClientConfig>, Arc<Mutex<Option<String>>>) {
        let outcome = Arc::new(Mutex::new(None));
        let verifier = Recording {
            inner: self.verifier.clone(),
            outcome: outcome.clone(),
        };
        let config = ClientConfig::builder_with_provider(watchpost_net::provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::inspecting(verifier)))
            .with_no_client_auth();
        (finish(config), outcome)
    }
}

/// Verifies with `inner` and keeps the reason it refused (if it did), for an
/// [`AcceptAnyCertificate`] that then accepts either way (handshake signatures are checked for
/// real).
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    outcome: Arc<Mutex<Option<String>>>,
}

impl InspectCertificate for Recording {
    fn inspect(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) {
        if let Err(e) = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            let reason = match &e {
                rustls::Error::InvalidCertificate(cert) => certificate_reason(cert),
                other => other.to_string(),
            };
            if let Ok(mut slot) = self.outcome.lock() {
                *slot = Some(reason);
            }
        }
    }
}

/// The name to verify and send as SNI: an IP literal as an address, anything else as a DNS
/// name.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, ProbeError> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_string()).map_err(|e| {
        ProbeError::new(
            Phase::Tls,
            ErrorKind::Handshake,
            format!("bad SNI name {name:?}: {e}"),
        )
    })
}

/// The TLS handshake on an established connection (the caller bounds it in time).
pub(crate) async fn handshake(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, ProbeError> {
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| classify_handshake_error(&e))
}

/// Facts about an established session. `verify_error` is the recorded refusal, if any.
pub(crate) fn session_info(
    conn: &rustls::ClientConnection,
    verified: bool,
    verify_error: Option<String>,
) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "unknown".to_string(),
    };
    let leaf = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|leaf| {
            x509_parser::parse_x509_certificate(leaf.as_ref())
                .ok()
                .map(|(_, cert)| {
                    (
                        cert.validity().not_after.timestamp(),
                        cert.subject().to_string(),
                        cert.issuer().to_string(),
                    )
                })
        });
    let not_after = leaf.as_ref().map(|(ts, _, _)| *ts);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    TlsInfo {
        version,
        cert_not_after: not_after.and_then(|ts| {
            time::OffsetDateTime::from_unix_timestamp(ts)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
        }),
        cert_days_left: not_after.map(|ts| ((ts as f64 - now) / 86_400.0 * 10.0).round() / 10.0),
        verified: verified && verify_error.is_none(),
        verify_error,
        subject: leaf.as_ref().map(|(_, s, _)| s.clone()),
        issuer: leaf.map(|(_, _, i)| i),
    }
}

/// Why a certificate was refused, reason first (`certificate expired`, `unknown issuer`,
/// `name mismatch`).
pub(crate) fn certificate_reason(cert: &CertificateError) -> String {
    match cert {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet".to_string()
        }
        CertificateError::UnknownIssuer => {
            "unknown issuer: the certificate chain does not lead to a trusted root".to_string()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("name mismatch: {cert}")
        }
        CertificateError::Revoked => "certificate revoked".to_string(),
        other => format!("invalid certificate: {other}"),
    }
}

/// Classify a failed handshake. Certificate problems get kind `certificate` with the reason
/// first in the message.
pub(crate) fn classify_handshake_error(err: &std::io::Error) -> ProbeError {
    let tls_err = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_err {
        Some(rustls::Error::InvalidCertificate(cert)) => {
            ProbeError::new(Phase::Tls, ErrorKind::Certificate, certificate_reason(cert))
        }
        Some(other) => ProbeError::new(
            Phase::Tls,
            ErrorKind::Handshake,
            format!("TLS handshake failed: {other}"),
        ),
        None => {
            if let Some(local) = ProbeError::local(Phase::Tls, err) {
                return local;
            }
            let kind = match crate::error::io_kind(err) {
                ErrorKind::Closed | ErrorKind::Malformed | ErrorKind::Io => ErrorKind::Handshake,
                k => k,
            };
            ProbeError::new(Phase::Tls, kind, format!("TLS handshake failed: {err}"))
        }
    }
}
