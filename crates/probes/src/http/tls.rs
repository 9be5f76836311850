//! TLS client configuration (rustls, ring provider) and certificate facts.
//!
//! Two configs are built once per [`HttpProber`](super::HttpProber): a verifying one (webpki
//! roots plus any extra CA the caller trusts) and an `insecure` one that accepts any
//! certificate but still checks handshake signatures. Session resumption is disabled in both:
//! every check must pay (and measure) a full handshake.

use super::error::{ErrorKind, Phase, ProbeError, RequestError};
use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the check learned about the TLS session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The leaf certificate's notAfter, RFC 3339 UTC.
    pub cert_not_after: Option<String>,
    /// Days (fractional) until the leaf certificate expires; negative when already expired.
    pub cert_days_left: Option<f64>,
}

/// Read PEM certificates to trust in addition to the webpki roots.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, RequestError> {
    let err = |reason: String| RequestError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate found".into()));
    }
    Ok(certs)
}

pub(crate) struct TlsConfigs {
    pub verified: Arc<ClientConfig>,
    pub insecure: Arc<ClientConfig>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn finish(mut config: ClientConfig) -> Arc<ClientConfig> {
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

impl TlsConfigs {
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> Result<Self, RequestError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in extra_roots {
            roots.add(cert.clone()).map_err(|e| RequestError::CaFile {
                path: "(extra roots)".into(),
                reason: e.to_string(),
            })?;
        }
        let builder = || {
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
        };
        let verified = builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let insecure = builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(
                provider().signature_verification_algorithms,
            )))
            .with_no_client_auth();
        Ok(TlsConfigs {
            verified: finish(verified),
            insecure: finish(insecure),
        })
    }
}

/// Accepts any certificate (for `insecure: true`), but still verifies that the server owns the
/// key it presented, so the handshake itself is real.
#[derive(Debug)]
struct AcceptAny(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Facts about an established session.
pub(crate) fn session_info(conn: &rustls::ClientConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "unknown".to_string(),
    };
    let not_after = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|leaf| {
            x509_parser::parse_x509_certificate(leaf.as_ref())
                .ok()
                .map(|(_, cert)| cert.validity().not_after.timestamp())
        });
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
    }
}

/// Classify a failed handshake. Certificate problems get kind `certificate` with the reason
/// first in the message (`certificate expired`, `unknown issuer`, `name mismatch`).
pub(crate) fn classify_handshake_error(err: &std::io::Error) -> ProbeError {
    let tls_err = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_err {
        Some(rustls::Error::InvalidCertificate(cert)) => {
            let reason = match cert {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "certificate expired".to_string()
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "certificate not valid yet".to_string()
                }
                CertificateError::UnknownIssuer => {
                    "unknown issuer: the certificate chain does not lead to a trusted root"
                        .to_string()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!("name mismatch: {cert}")
                }
                CertificateError::Revoked => "certificate revoked".to_string(),
                other => format!("invalid certificate: {other}"),
            };
            ProbeError::new(Phase::Tls, ErrorKind::Certificate, reason)
        }
        Some(other) => ProbeError::new(
            Phase::Tls,
            ErrorKind::Handshake,
            format!("TLS handshake failed: {other}"),
        ),
        None => {
            let kind = match super::error::io_kind(err) {
                ErrorKind::Closed | ErrorKind::Malformed | ErrorKind::Io => ErrorKind::Handshake,
                k => k,
            };
            ProbeError::new(Phase::Tls, kind, format!("TLS handshake failed: {err}"))
        }
    }
}
