//! TLS to the cells: rustls with the ring provider, trusting only the configured CA (the host's
//! OpenSSL and the system trust store are never used).

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::{ClientError, ErrorKind, Result};

pub(crate) fn client_config(ca_file: &Path) -> Result<rustls::ClientConfig> {
    let pem = std::fs::read(ca_file).map_err(|e| {
        ClientError::new(
            ErrorKind::Config,
            format!("cannot read CA file {}: {e}", ca_file.display()),
        )
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad_ca(ca_file, &e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| bad_ca(ca_file, &e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad_ca(ca_file, "no certificate in file"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::new(ErrorKind::Config, format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

fn bad_ca(ca_file: &Path, why: &str) -> ClientError {
    ClientError::new(
        ErrorKind::Config,
        format!("CA file {}: {why}", ca_file.display()),
    )
}

/// A config trusting nothing, for unit tests that never connect.
#[cfg(test)]
pub(crate) fn test_config() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}
