//! `keyfrag.toml`: one `[[token]]` per slot, each with its cells.
//!
//! Found via the C_Initialize `pReserved` string (`config=PATH`), then `$KEYFRAG_CONF`, then
//! `~/.config/keyfrag/keyfrag.toml`, then `/etc/keyfrag/keyfrag.toml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(rename = "token", default)]
    pub tokens: Vec<TokenConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The token's label as configured (the slot description; C_InitToken may set another).
    pub label: String,
    /// CKM_RSA_X_509 (raw RSA) is a decryption oracle: off unless set.
    #[serde(default)]
    pub allow_raw_rsa: bool,
    /// Accept 1024-bit RSA keys (test suites); off unless set.
    #[serde(default)]
    pub allow_rsa_1024: bool,
    /// Per-request timeout to a cell.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Extra attempts for idempotent requests after a transport failure.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds a session key's fragments live on the cells without renewal.
    #[serde(default = "default_lease_secs")]
    pub session_key_lease_secs: u64,
    #[serde(rename = "cell")]
    pub cells: Vec<CellConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellConfig {
    pub name: String,
    /// `https://host:port`
    pub url: String,
    /// PEM file with the CA that signs this cell's TLS certificate (the only trusted root).
    pub ca: PathBuf,
    /// File holding this token's access key for this cell.
    pub access_key_file: PathBuf,
}

fn default_timeout_ms() -> u64 {
    2000
}
fn default_retries() -> u32 {
    1
}
fn default_lease_secs() -> u64 {
    600
}

impl Config {
    /// Parse and validate a config file. Errors name the file and the line.
    pub fn load(path: &Path) -> Result<Config> {
        let _ = path;
        todo!()
    }

    /// Find and load the config: `reserved` is the C_Initialize pReserved string, if any
    /// (`config=PATH`, possibly among other space-separated `key=value` words as NSS passes).
    pub fn discover(reserved: Option<&str>) -> Result<(Config, PathBuf)> {
        let _ = reserved;
        todo!()
    }
}
