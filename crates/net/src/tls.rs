//! rustls client configurations and trusted CA certificates.
//!
//! Every config uses the ring provider and the safe default protocol versions. The verified
//! config trusts the webpki roots plus any extra CA certificates; the insecure one accepts any
//! certificate but still checks the handshake signatures, so the handshake itself is real.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// CA certificates that could not be loaded or trusted. `path` is the file (or
/// `(extra roots)` for certificates given in memory), `reason` what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot load CA certificates from {path}: {reason}")]
pub struct CaError {
    pub path: String,
    pub reason: String,
}

/// The crypto provider every watchpost TLS connection uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read the PEM certificates in `path` (one or more), to trust in addition to the webpki roots.
/// A file without any certificate is an error, not an empty trust list.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let err = |reason: String| CaError {
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

/// The webpki roots plus `extra_roots`.
pub fn root_store(extra_roots: &[CertificateDer<'static>]) -> Result<RootCertStore, CaError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra_roots {
        roots.add(cert.clone()).map_err(|e| CaError {
            path: "(extra roots)".into(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

/// A config that verifies the server's chain against the webpki roots and `extra_roots`, and
/// offers the ALPN protocols `alpn` (empty: none). Session resumption stays at rustls' default;
/// callers that must measure full handshakes turn it off.
pub fn verified_config(
    extra_roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
) -> Result<ClientConfig, CaError> {
    let mut config = builder()
        .with_root_certificates(root_store(extra_roots)?)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A config that accepts any certificate (the handshake signatures are still verified).
pub fn insecure_config(alpn: &[&[u8]]) -> ClientConfig {
    let mut config = builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new()))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A verifier that accepts any certificate but verifies that the server owns the key it
/// presented (the handshake signatures, with [`provider`]'s algorithms).
/// [`AcceptAnyCertificate::inspecting`] first shows each certificate to an
/// [`InspectCertificate`].
#[derive(Debug)]
pub struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
    inspector: Option<Arc<dyn InspectCertificate>>,
}

/// Sees each certificate an [`AcceptAnyCertificate::inspecting`] verifier accepts, before it
/// is accepted (e.g. to record whether a real verification would have refused it).
pub trait InspectCertificate: std::fmt::Debug + Send + Sync {
    /// The arguments of [`ServerCertVerifier::verify_server_cert`].
    fn inspect(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    );
}

impl AcceptAnyCertificate {
    pub fn new() -> Self {
        AcceptAnyCertificate {
            algorithms: provider().signature_verification_algorithms,
            inspector: None,
        }
    }

    /// Like [`AcceptAnyCertificate::new`], showing each certificate to `inspector` first.
    pub fn inspecting(inspector: impl InspectCertificate + 'static) -> Self {
        AcceptAnyCertificate {
            inspector: Some(Arc::new(inspector)),
            ..Self::new()
        }
    }
}

impl Default for AcceptAnyCertificate {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(inspector) = &self.inspector {
            inspector.inspect(end_entity, intermediates, server_name, ocsp_response, now);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_that_hold_no_certificate_are_errors() {
        let dir = std::env::temp_dir().join(format!("watchpost-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let e = load_ca_file(&empty).unwrap_err();
        assert_eq!(e.reason, "no PEM certificate found");
        assert!(
            e.to_string()
                .starts_with("cannot load CA certificates from ")
        );
        let missing = load_ca_file(&dir.join("missing.pem")).unwrap_err();
        assert!(missing.path.ends_with("missing.pem"), "{missing}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn configs_build_with_their_alpn() {
        let verified = verified_config(&[], &[b"h2", b"http/1.1"]).unwrap();
        assert_eq!(
            verified.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(insecure_config(&[]).alpn_protocols.is_empty());
        let bad = root_store(&[CertificateDer::from(vec![1, 2, 3])]).unwrap_err();
        assert_eq!(bad.path, "(extra roots)");
    }

    #[derive(Debug, Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl InspectCertificate for Arc<Count> {
        fn inspect(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn accepting_verifiers_show_the_certificate_and_check_signatures_like_webpki() {
        let seen = Arc::new(Count::default());
        let verifier = AcceptAnyCertificate::inspecting(seen.clone());
        let name = ServerName::try_from("site.test").unwrap();
        let cert = CertificateDer::from(vec![1, 2, 3]);
        let now = UnixTime::now();
        assert!(
            verifier
                .verify_server_cert(&cert, &[], &name, &[], now)
                .is_ok()
        );
        assert!(
            AcceptAnyCertificate::new()
                .verify_server_cert(&cert, &[], &name, &[], now)
                .is_ok()
        );
        assert_eq!(seen.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(root_store(&[]).unwrap()),
            provider(),
        )
        .build()
        .unwrap();
        assert_eq!(
            verifier.supported_verify_schemes(),
            webpki.supported_verify_schemes()
        );
    }
}
