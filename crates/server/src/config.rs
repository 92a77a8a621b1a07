//! A cell's configuration file (TOML):
//!
//! ```toml
//! name = "cell-a"
//! listen = "127.0.0.1:7443"
//! database = "cell-a.db"
//! master_key_file = "master.key"   # 64 hex digits, mode 0600
//! tls_cert = "cert.pem"            # PEM chain, leaf first
//! tls_key = "key.pem"              # PKCS#8 PEM
//! relay_seed_file = "relay.seed"   # optional: 64 hex digits, mode 0600 (key generation)
//! cluster_file = "cluster.toml"    # optional: the peers' cards (relay_identity.rs)
//! metrics_listen = "127.0.0.1:9464" # optional: Prometheus metrics, plain HTTP
//! operator_key_sha256 = "…"        # optional: hash of the operator key (admin routes)
//!
//! [[token]]
//! id = "token-1"
//! access_key_sha256 = "…64 hex digits…"
//! ```
//! Relative paths are resolved against the directory of the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ServerError;

/// OWASP's Argon2id recommendation (m = 19 MiB, t = 2, p = 1).
pub const DEFAULT_ARGON2_M_KIB: u32 = 19456;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellConfig {
    pub name: String,
    /// Port 0 lets the OS choose; `RunningCell::addr` reports the actual address.
    pub listen: SocketAddr,
    pub database: PathBuf,
    pub master_key_file: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    #[serde(rename = "token", default)]
    pub tokens: Vec<CellToken>,
    /// Argon2id memory cost for new PIN verifiers; tests lower it to stay fast. Existing
    /// verifiers keep the parameters they were made with.
    #[serde(default = "default_argon2_m_kib")]
    pub argon2_m_kib: u32,
    /// This cell's party seed for the sealed relay (its sealing and identity keys derive from
    /// it). Without it and `cluster_file`, the cell refuses to take part in key generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_seed_file: Option<PathBuf>,
    /// The party cards (this cell's included) whose messages this cell accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_file: Option<PathBuf>,
    /// Requests per second admitted per token (each token's access key has its own bucket);
    /// 0 turns the limit off. Over it, requests get 429 `rate_limited`.
    #[serde(default = "default_rate_limit_per_sec")]
    pub rate_limit_per_sec: u32,
    /// Requests a token may send at once above the steady rate.
    #[serde(default = "default_rate_limit_burst")]
    pub rate_limit_burst: u32,
    /// Where to serve Prometheus metrics (plain HTTP, no access key); off when absent. Keep it
    /// on loopback: the metrics hold no key material but show how busy the cell is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Hex SHA-256 of the operator key (`keyfrag-server init` writes it): the bearer key of
    /// the `/v1/admin` routes. Without it every admin route answers 401.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_key_sha256: Option<String>,
}

fn default_rate_limit_per_sec() -> u32 {
    2000
}

fn default_rate_limit_burst() -> u32 {
    4000
}

fn default_argon2_m_kib() -> u32 {
    DEFAULT_ARGON2_M_KIB
}

/// One token this cell serves, and the hash of the access key that selects it. The cell never
/// stores the access key itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellToken {
    pub id: String,
    /// Lowercase or uppercase hex SHA-256 of the access key string.
    pub access_key_sha256: String,
}

impl CellConfig {
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::file(path, format!("cannot read: {e}")))?;
        let mut config = Self::parse(path, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.database,
            &mut config.master_key_file,
            &mut config.tls_cert,
            &mut config.tls_key,
        ]
        .into_iter()
        .chain(config.relay_seed_file.as_mut())
        .chain(config.cluster_file.as_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }

    /// Parse and validate TOML text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ServerError> {
        let config: CellConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_at(text, s.start)).unwrap_or(0);
            ServerError::Config {
                file: path.to_path_buf(),
                line,
                message: e.message().to_string(),
            }
        })?;
        config.validate(path, text)?;
        Ok(config)
    }

    /// Checks serde cannot express. Deserialisation keeps no spans for these fields, so the line
    /// reported is the first one mentioning the offending value.
    fn validate(&self, path: &Path, text: &str) -> Result<(), ServerError> {
        let err = |needle: &str, message: String| ServerError::Config {
            file: path.to_path_buf(),
            line: text.find(needle).map(|i| line_at(text, i)).unwrap_or(0),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(err("name", "name must not be empty".into()));
        }
        if self.argon2_m_kib < 8 {
            return Err(err(
                "argon2_m_kib",
                "argon2_m_kib must be at least 8".into(),
            ));
        }
        if self.relay_seed_file.is_some() != self.cluster_file.is_some() {
            return Err(err(
                if self.cluster_file.is_some() {
                    "cluster_file"
                } else {
                    "relay_seed_file"
                },
                "relay_seed_file and cluster_file must be given together".into(),
            ));
        }
        if let Some(h) = &self.operator_key_sha256
            && parse_sha256_hex(h).is_none()
        {
            return Err(err(h, "operator_key_sha256 must be 64 hex digits".into()));
        }
        // No [[token]] is fine: a cell set up by `keyfrag-server init` gets its tokens from
        // the operator (admin routes), and config-declared ones stay as a bootstrap.
        for (i, t) in self.tokens.iter().enumerate() {
            if t.id.is_empty() || t.id.len() > 128 {
                return Err(err(&t.id, "token id must be 1..=128 characters".into()));
            }
            if self.tokens[..i].iter().any(|o| o.id == t.id) {
                return Err(err(&t.id, format!("duplicate token id {:?}", t.id)));
            }
            if parse_sha256_hex(&t.access_key_sha256).is_none() {
                return Err(err(
                    &t.access_key_sha256,
                    format!("token {:?}: access_key_sha256 must be 64 hex digits", t.id),
                ));
            }
        }
        Ok(())
    }
}

pub(crate) fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

/// 1-based line number of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "a"
listen = "127.0.0.1:0"
database = "a.db"
master_key_file = "mk"
tls_cert = "c.pem"
tls_key = "k.pem"

[[token]]
id = "t1"
access_key_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"#;

    #[test]
    fn parses_and_defaults() {
        let c = CellConfig::parse(Path::new("x.toml"), GOOD).unwrap();
        assert_eq!(c.tokens.len(), 1);
        assert_eq!(c.argon2_m_kib, DEFAULT_ARGON2_M_KIB);
    }

    #[test]
    fn relay_files_go_together() {
        let with_seed = GOOD.replace(
            "tls_key = \"k.pem\"",
            "tls_key = \"k.pem\"\nrelay_seed_file = \"s\"",
        );
        let e = CellConfig::parse(Path::new("x.toml"), &with_seed).unwrap_err();
        assert!(e.to_string().contains("must be given together"), "{e}");
        let both = with_seed.replace(
            "relay_seed_file",
            "cluster_file = \"c.toml\"\nrelay_seed_file",
        );
        let c = CellConfig::parse(Path::new("x.toml"), &both).unwrap();
        assert!(c.relay_seed_file.is_some() && c.cluster_file.is_some());
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = GOOD.replace("listen = \"127.0.0.1:0\"", "listen = \"nowhere\"");
        let e = CellConfig::parse(Path::new("x.toml"), &bad).unwrap_err();
        assert!(e.to_string().starts_with("x.toml:3:"), "{e}");
        let bad = GOOD.replace("access_key_sha256 = \"00", "access_key_sha256 = \"zz");
        let e = CellConfig::parse(Path::new("x.toml"), &bad).unwrap_err();
        assert!(e.to_string().starts_with("x.toml:11:"), "{e}");
    }
}
