//! Reading a `ca_file:` (PEM certificates a channel trusts besides the web PKI).

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;

// ISSUE 10 (lead): replace with watchpost_net::load_ca_file
/// Every certificate in the PEM file at `path`; an unreadable file, bad PEM or a file without
/// any certificate is an error saying which (the caller adds the path and the setting).
pub(crate) fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}
