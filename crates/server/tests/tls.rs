//! A real cell on 127.0.0.1:0 over TLS: a rustls client trusting only the test CA, one
//! HTTP/1.1 request per connection, and graceful shutdown.

mod common;

use std::sync::Arc;

use common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn connector(ca_pem: &str) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// One request with `Connection: close`; returns the raw response text.
async fn get(
    connector: &TlsConnector,
    addr: std::net::SocketAddr,
    path: &str,
    key: &str,
) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         x-request-id: tls-test\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn serves_https_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let certs = keyfrag_server::tls::dev_certificates(&["127.0.0.1".into()]).unwrap();
    std::fs::write(&config.tls_cert, &certs.cert_pem).unwrap();
    std::fs::write(&config.tls_key, &certs.key_pem).unwrap();

    let cell = keyfrag_server::start(config.clone()).await.unwrap();
    assert_ne!(cell.addr.port(), 0);
    let trusting = connector(&certs.ca_pem);

    let resp = get(&trusting, cell.addr, "/v1/info", KEY_A).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"cell\":\"test-cell\""), "{resp}");
    let resp = get(&trusting, cell.addr, "/v1/info", "nope").await;
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    assert!(resp.contains("\"code\":\"unauthorized\""), "{resp}");

    // A client that trusts another CA refuses the cell.
    let other = keyfrag_server::tls::dev_certificates(&["127.0.0.1".into()]).unwrap();
    let tcp = TcpStream::connect(cell.addr).await.unwrap();
    let name = ServerName::IpAddress(cell.addr.ip().into());
    assert!(connector(&other.ca_pem).connect(name, tcp).await.is_err());

    let addr = cell.addr;
    cell.shutdown().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still listening after shutdown"
    );

    // Restart on the same address and store.
    let mut again = config;
    again.listen = addr;
    let cell = keyfrag_server::start(again).await.unwrap();
    let resp = get(&trusting, cell.addr, "/v1/token", KEY_A).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    cell.shutdown().await;
}
