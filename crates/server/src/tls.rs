//! The cell's TLS server configuration: rustls with the ring provider, HTTP/1.1 only.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::ServerError;

/// Load a PEM certificate chain (leaf first) and a PKCS#8 PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ServerError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServerError::file(cert, format!("cannot read PEM certificates: {e}")))?;
    if chain.is_empty() {
        return Err(ServerError::file(cert, "no certificate in file"));
    }
    // The error text of a key parse never includes key bytes.
    let key_der = PrivatePkcs8KeyDer::from_pem_file(key)
        .map_err(|e| ServerError::file(key, format!("cannot read PKCS#8 PEM key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, PrivateKeyDer::Pkcs8(key_der))
        .map_err(|e| ServerError::Tls(format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A development CA and a leaf certificate it signed, all PEM (the leaf key is PKCS#8).
pub struct DevCertificates {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for DevCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevCertificates([redacted])")
    }
}

/// Generate a throwaway CA and a server certificate for `hosts` (DNS names or IP addresses),
/// for `keyfrag dev up` and tests. The CA key is discarded, so nothing else can ever be
/// issued under it.
pub fn dev_certificates(hosts: &[String]) -> Result<DevCertificates, ServerError> {
    cell_certificates("keyfrag cell", hosts)
}

/// A cell's own CA (its certificate is what the module pins) and the server certificate it
/// signed for `hosts`. The CA key is discarded: nothing else can ever be issued under the pin,
/// and a new certificate means a new card (`keyfrag-server init` on a fresh TLS key).
pub fn cell_certificates(name: &str, hosts: &[String]) -> Result<DevCertificates, ServerError> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let err = |e: rcgen::Error| ServerError::Tls(format!("certificate generation: {e}"));
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("keyfrag CA of {name}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(err)?).map_err(err)?;
    let mut leaf_params = CertificateParams::new(hosts.to_vec()).map_err(err)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, name);
    let leaf_key = KeyPair::generate().map_err(err)?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(err)?;
    Ok(DevCertificates {
        ca_pem: ca.pem(),
        cert_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}
