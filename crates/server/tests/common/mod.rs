//! Shared fixtures: a cell's state over a temp directory, and one-shot requests to its router.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keyfrag_server::{AppState, CellConfig, CellToken, app};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

pub const KEY_A: &str = "access-key-a";
pub const KEY_B: &str = "access-key-b";
pub const SO_PIN: &str = "so-pin-1234";
pub const USER_PIN: &str = "1234";

pub struct TestCell {
    pub dir: tempfile::TempDir,
    pub config: CellConfig,
    pub state: AppState,
}

pub fn write_master_key(path: &Path) {
    std::fs::write(path, "11".repeat(32)).unwrap();
    set_mode(path, 0o600);
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A config over `dir` with two tokens ("a", "b") and a cheap Argon2 for speed.
pub fn config_in(dir: &Path) -> CellConfig {
    let p = |n: &str| -> PathBuf { dir.join(n) };
    write_master_key(&p("master.key"));
    CellConfig {
        name: "test-cell".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        database: p("cell.db"),
        master_key_file: p("master.key"),
        tls_cert: p("cert.pem"),
        tls_key: p("key.pem"),
        tokens: vec![
            CellToken {
                id: "a".into(),
                access_key_sha256: sha256_hex(KEY_A),
            },
            CellToken {
                id: "b".into(),
                access_key_sha256: sha256_hex(KEY_B),
            },
        ],
        argon2_m_kib: 8,
        relay_seed_file: None,
        cluster_file: None,
        rate_limit_per_sec: 2000,
        rate_limit_burst: 4000,
        metrics_listen: None,
        operator_key_sha256: None,
    }
}

impl TestCell {
    pub fn new() -> TestCell {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let state = AppState::open(&config).unwrap();
        TestCell { dir, config, state }
    }

    /// A cell named `name` whose relay identity derives from `seed`, accepting the parties
    /// of `cluster_toml` (a `ClusterFile` listing it too).
    pub fn with_relay(name: &str, seed: [u8; 32], cluster_toml: &str) -> TestCell {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        let (seed_file, cluster_file) = (dir.path().join("relay.seed"), dir.path().join("c.toml"));
        std::fs::write(&seed_file, hex::encode(seed)).unwrap();
        set_mode(&seed_file, 0o600);
        std::fs::write(&cluster_file, cluster_toml).unwrap();
        config.name = name.to_owned();
        config.relay_seed_file = Some(seed_file);
        config.cluster_file = Some(cluster_file);
        let state = AppState::open(&config).unwrap();
        TestCell { dir, config, state }
    }

    /// The same database and keys opened again, as after a restart.
    pub fn reopen(&self) -> AppState {
        AppState::open(&self.config).unwrap()
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        access_key: Option<&str>,
        login: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(&self.state, method, path, access_key, login, body).await
    }

    /// `call` with access key A and no login.
    pub async fn a(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, path, Some(KEY_A), None, body).await
    }

    /// Initialise token A and set its user PIN; returns an SO login token.
    pub async fn init_token(&self) -> String {
        let (s, _) = self
            .a(
                "POST",
                "/v1/token/init",
                Some(serde_json::json!({"phase":"apply","so_pin":SO_PIN,"label":"tok"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let so = self.login("so", SO_PIN).await.expect("SO login");
        let (s, b) = self
            .call(
                "POST",
                "/v1/pin/init",
                Some(KEY_A),
                Some(&so),
                Some(serde_json::json!({"new_pin": USER_PIN})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        so
    }

    /// Log in to token A; Err carries the error code.
    pub async fn login(&self, user: &str, pin: &str) -> Result<String, String> {
        let (s, b) = self
            .a(
                "POST",
                "/v1/login",
                Some(serde_json::json!({"user": user, "pin": pin})),
            )
            .await;
        if s == StatusCode::OK {
            Ok(b["login_token"].as_str().unwrap().to_string())
        } else {
            Err(b["code"].as_str().unwrap().to_string())
        }
    }

    pub async fn token_status(&self) -> Value {
        let (s, b) = self.a("GET", "/v1/token", None).await;
        assert_eq!(s, StatusCode::OK);
        b
    }
}

pub async fn call(
    state: &AppState,
    method: &str,
    path: &str,
    access_key: Option<&str>,
    login: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("x-request-id", "test-req");
    if let Some(k) = access_key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    if let Some(l) = login {
        req = req.header("x-keyfrag-login", l);
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(serde_json::to_vec(&v).unwrap())
        }
        None => Body::empty(),
    };
    let resp = app(state.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, value)
}

pub fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("")
}

pub fn uid(n: u8) -> String {
    format!("{n:02x}").repeat(16)
}

/// A 512-bit odd modulus (not a real RSA modulus; enough for storage tests).
pub fn fake_modulus() -> Vec<u8> {
    let mut n = vec![0x5au8; 64];
    n[0] = 0xc3;
    n[63] = 0x01 | 0x40;
    n
}

/// Random bytes (from the OS).
pub fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    getrandom::fill(&mut v).unwrap();
    v
}

pub fn b64(bytes: &[u8]) -> String {
    keyfrag_proto::b64::encode(bytes)
}

/// A PUT body for a key with `modulus` and a share magnitude.
pub fn put_body(modulus: &[u8], negative: bool, magnitude: &[u8], lease: Option<u64>) -> Value {
    serde_json::json!({
        "modulus": b64(modulus),
        "public_exponent": b64(&[1, 0, 1]),
        "share": {"negative": negative, "magnitude": b64(magnitude)},
        "lease_secs": lease,
    })
}
