//! `keyfrag.toml`: one `[[token]]` per slot, each with its `[[token.cell]]`s.
//!
//! Found via the C_Initialize `pReserved` string (`config=PATH`), then `$KEYFRAG_CONF`, then
//! `~/.config/keyfrag/keyfrag.toml`, then `/etc/keyfrag/keyfrag.toml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ClientError, ErrorKind, Result};

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
    /// Seconds the module may keep a secret key's derived data key (AES/HMAC) after use;
    /// 0 (the default) derives it from the cells' PRF for every operation.
    #[serde(default)]
    pub data_key_cache_secs: u64,
    /// The customer-fragment file (`keyfrag customer-fragment new`): when set, the token's
    /// keys need its seed, unsealed by the user PIN at C_Login, for every private-key use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_fragment: Option<PathBuf>,
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

/// Environment variable naming the config file.
pub const CONF_ENV: &str = "KEYFRAG_CONF";

impl Config {
    /// Parse and validate a config file. Errors name the file and the line.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_error(format!("cannot read config {}: {e}", path.display())))?;
        let config = Config::parse(&text)
            .map_err(|msg| config_error(format!("config {}: {msg}", path.display())))?;
        Ok(config)
    }

    /// Parse config text; the error says which line is wrong and why.
    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.tokens.is_empty() {
            return Err("no [[token]] is configured".into());
        }
        for t in &self.tokens {
            if t.label.is_empty() || t.label.len() > 32 {
                return Err(format!("token label {:?} must be 1 to 32 bytes", t.label));
            }
            if t.cells.len() < 2 {
                return Err(format!(
                    "token {:?} needs at least 2 cells, has {}",
                    t.label,
                    t.cells.len()
                ));
            }
            if t.timeout_ms == 0 {
                return Err(format!("token {:?}: timeout_ms must be > 0", t.label));
            }
            for c in &t.cells {
                if !c.url.starts_with("https://") {
                    return Err(format!(
                        "token {:?} cell {:?}: url must start with https://",
                        t.label, c.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Find and load the config: `reserved` is the C_Initialize pReserved string, if any
    /// (`config=PATH`, possibly among other space-separated `key=value` words as NSS passes).
    pub fn discover(reserved: Option<&str>) -> Result<(Config, PathBuf)> {
        let path = Config::locate(reserved)?;
        let config = Config::load(&path)?;
        Ok((config, path))
    }

    /// Which file `discover` would load.
    pub fn locate(reserved: Option<&str>) -> Result<PathBuf> {
        if let Some(path) = reserved.and_then(config_word) {
            return Ok(PathBuf::from(path));
        }
        if let Some(path) = std::env::var_os(CONF_ENV).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        let mut candidates = Vec::new();
        if let Some(home) = std::env::var_os("HOME").filter(|p| !p.is_empty()) {
            candidates.push(PathBuf::from(home).join(".config/keyfrag/keyfrag.toml"));
        }
        candidates.push(PathBuf::from("/etc/keyfrag/keyfrag.toml"));
        candidates.into_iter().find(|p| p.exists()).ok_or_else(|| {
            config_error(format!(
                "no keyfrag config: pass config=PATH, set {CONF_ENV}, or create \
                     ~/.config/keyfrag/keyfrag.toml or /etc/keyfrag/keyfrag.toml"
            ))
        })
    }
}

/// The value of `config=...` among space-separated words; quotes around the value allowed.
fn config_word(reserved: &str) -> Option<&str> {
    reserved
        .split_whitespace()
        .find_map(|w| w.strip_prefix("config="))
        .map(|v| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

fn config_error(message: String) -> ClientError {
    ClientError::new(ErrorKind::Config, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[token]]
label = "dev"
[[token.cell]]
name = "a"
url = "https://127.0.0.1:1"
ca = "/ca.pem"
access_key_file = "/a.key"
[[token.cell]]
name = "b"
url = "https://127.0.0.1:2"
ca = "/ca.pem"
access_key_file = "/b.key"
"#;

    #[test]
    fn parses_a_good_config_with_defaults() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.tokens[0].cells.len(), 2);
        assert_eq!(c.tokens[0].timeout_ms, 2000);
        assert!(!c.tokens[0].allow_raw_rsa);
    }

    #[test]
    fn names_the_line_of_an_unknown_key() {
        let bad = GOOD.replace("name = \"b\"", "name = \"b\"\nbogus = 1");
        let err = Config::parse(&bad).unwrap_err();
        assert!(err.starts_with("line 11:"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn refuses_plain_http_and_single_cells() {
        let err = Config::parse(&GOOD.replace("https://127.0.0.1:2", "http://x")).unwrap_err();
        assert!(err.contains("https"), "{err}");
        let one = GOOD.split("[[token.cell]]\nname = \"b\"").next().unwrap();
        assert!(Config::parse(one).unwrap_err().contains("at least 2 cells"));
    }

    #[test]
    fn finds_config_word_among_nss_parameters() {
        assert_eq!(
            config_word("configDir=/x config=\"/etc/k.toml\" flags=1"),
            Some("/etc/k.toml")
        );
        assert_eq!(config_word("configDir=/x"), None);
    }
}
