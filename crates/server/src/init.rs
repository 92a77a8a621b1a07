//! `keyfrag-server init --dir DIR`: everything a new cell needs, in one directory.
//!
//! | file          | mode | what                                                          |
//! |---------------|------|---------------------------------------------------------------|
//! | master.key    | 0600 | seals the shares at rest (never in the database)              |
//! | relay.seed    | 0600 | derives the Ed25519 identity and X25519 sealing keys          |
//! | tls.key       | 0600 | the server certificate's key                                  |
//! | tls.crt       | 0644 | the server certificate, signed by tls-ca.crt                  |
//! | tls-ca.crt    | 0644 | the cell's own CA: what clients pin (its key is discarded)    |
//! | operator.key  | 0600 | the operator's key for `/v1/admin` (the cell keeps its hash)  |
//! | cell.toml     | 0644 | the cell config (`keyfrag-server run --config DIR/cell.toml`)   |
//! | card.toml     | 0644 | the public card the operator hands to `keyfrag cluster create`  |
//!
//! Idempotent: an existing file is never replaced, so a rerun prints the same card. Secrets are
//! created atomically (written to a temporary name, then hard-linked into place, which fails if
//! the name exists), so a crash leaves either no file or a whole one.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyfrag_core::relay::PartyKeys;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::card::{CellCard, url_host};
use crate::config::CellConfig;
use crate::relay_identity::parse_seed;

pub const CONFIG_FILE: &str = "cell.toml";
pub const CARD_FILE: &str = "card.toml";
pub const OPERATOR_KEY_FILE: &str = "operator.key";
pub const CLUSTER_FILE: &str = "cluster.toml";
pub const TLS_CA_FILE: &str = "tls-ca.crt";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7443";

#[derive(Clone, Debug, Default)]
pub struct InitOptions {
    /// Default: the directory's name (first run); must match the existing cell afterwards.
    pub name: Option<String>,
    /// Where clients and peers reach the cell. Default: `https://` + the listen address.
    pub url: Option<String>,
    /// Default: the URL's port (on 127.0.0.1 for a loopback URL, else 0.0.0.0), 127.0.0.1:7443
    /// without a URL.
    pub listen: Option<SocketAddr>,
}

/// What `init` found or made.
pub struct Initialized {
    pub card: CellCard,
    pub config: PathBuf,
    /// Set when this run created the operator key (the caller tells the operator once).
    pub operator_key_created: Option<PathBuf>,
}

pub fn init(dir: &Path, options: &InitOptions) -> Result<Initialized, String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create", dir))?;
    let config_path = dir.join(CONFIG_FILE);
    let card_path = dir.join(CARD_FILE);
    let existing_config = config_path
        .exists()
        .then(|| CellConfig::load(&config_path).map_err(|e| e.to_string()))
        .transpose()?;
    let existing_card = card_path
        .exists()
        .then(|| CellCard::load(&card_path))
        .transpose()?;

    let name = settle(
        "name",
        options.name.clone(),
        existing_config
            .as_ref()
            .map(|c| c.name.clone())
            .or_else(|| existing_card.as_ref().map(|c| c.name.clone())),
        || {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        },
    )?;
    let asked_url = options
        .url
        .clone()
        .or_else(|| existing_card.as_ref().map(|c| c.url.clone()));
    let listen = settle(
        "listen address",
        options.listen,
        existing_config.as_ref().map(|c| c.listen),
        || default_listen(asked_url.as_deref()),
    )?;
    let url = settle(
        "url",
        options.url.clone(),
        existing_card.as_ref().map(|c| c.url.clone()),
        || format!("https://{listen}"),
    )?;
    let host = url_host(&url)?;

    create_secret(&dir.join("master.key"), || {
        Ok(Zeroizing::new(hex::encode(random::<32>()?)))
    })?;
    create_secret(&dir.join("relay.seed"), || {
        Ok(Zeroizing::new(hex::encode(random::<32>()?)))
    })?;
    let tls_key = dir.join("tls.key");
    if !tls_key.exists() {
        let certs = crate::tls::cell_certificates(&name, &[host]).map_err(|e| e.to_string())?;
        // The public halves first: until the key exists they are replaced freely.
        write_public(&dir.join(TLS_CA_FILE), &certs.ca_pem)?;
        write_public(&dir.join("tls.crt"), &certs.cert_pem)?;
        create_secret(&tls_key, || Ok(Zeroizing::new(certs.key_pem.clone())))?;
    }

    let mut operator_key_created = None;
    if existing_config.is_none() {
        let key_path = dir.join(OPERATOR_KEY_FILE);
        if create_secret(&key_path, || {
            Ok(Zeroizing::new(URL_SAFE_NO_PAD.encode(random::<32>()?)))
        })? {
            operator_key_created = Some(key_path.clone());
        }
        let key = Zeroizing::new(fs::read_to_string(&key_path).map_err(io("read", &key_path))?);
        let hash = hex::encode(Sha256::digest(key.trim().as_bytes()));
        let text = format!(
            "# Written by keyfrag-server init. Paths are relative to this file.\n\
             name = {name:?}\nlisten = \"{listen}\"\ndatabase = \"cell.db\"\n\
             master_key_file = \"master.key\"\ntls_cert = \"tls.crt\"\ntls_key = \"tls.key\"\n\
             relay_seed_file = \"relay.seed\"\ncluster_file = \"{CLUSTER_FILE}\"\n\
             operator_key_sha256 = \"{hash}\"\n"
        );
        // Checked before it is written, so a bad name never leaves a config behind.
        CellConfig::parse(&config_path, &text).map_err(|e| e.to_string())?;
        write_public(&config_path, &text)?;
    }

    let seed_path = dir.join("relay.seed");
    let seed_text = Zeroizing::new(fs::read_to_string(&seed_path).map_err(io("read", &seed_path))?);
    let seed = parse_seed(&seed_text)
        .ok_or_else(|| format!("{}: must hold 64 hex digits", seed_path.display()))?;
    let keys = PartyKeys::from_seed(&seed);
    let ca_path = dir.join(TLS_CA_FILE);
    let ca = fs::read_to_string(&ca_path).map_err(io("read", &ca_path))?;
    let card = CellCard::new(&name, &url, &keys, &ca)?;
    match existing_card {
        Some(old) if old != card => {
            return Err(format!(
                "{} does not match this cell's keys; move it away to write it again",
                card_path.display()
            ));
        }
        Some(_) => {}
        None => write_public(&card_path, &card.to_toml())?,
    }
    Ok(Initialized {
        card,
        config: config_path,
        operator_key_created,
    })
}

/// Without --listen: the URL's port, on loopback when the URL names a loopback host and on
/// every interface otherwise (the URL says the cell is reached from elsewhere).
fn default_listen(url: Option<&str>) -> SocketAddr {
    let fallback = DEFAULT_LISTEN.parse().expect("a valid default address");
    let Some(url) = url else { return fallback };
    let Ok(host) = url_host(url) else {
        return fallback;
    };
    let rest = url.trim_start_matches("https://").trim_end_matches('/');
    let port = rest
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(7443);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let ip: std::net::IpAddr = if loopback {
        [127, 0, 0, 1].into()
    } else {
        [0, 0, 0, 0].into()
    };
    SocketAddr::new(ip, port)
}

/// The value of a setting: the one already on disk wins, and a different one asked for is an
/// error (rerunning `init` never changes a cell).
fn settle<T: PartialEq + std::fmt::Debug>(
    what: &str,
    asked: Option<T>,
    existing: Option<T>,
    default: impl FnOnce() -> T,
) -> Result<T, String> {
    match (asked, existing) {
        (Some(a), Some(e)) if a != e => Err(format!(
            "this cell was set up with {what} {e:?}; refusing to change it to {a:?}"
        )),
        (_, Some(e)) => Ok(e),
        (Some(a), None) => Ok(a),
        (None, None) => Ok(default()),
    }
}

/// Create `path` (0600) with `make()`'s contents unless it exists; true when created.
fn create_secret(
    path: &Path,
    make: impl FnOnce() -> Result<Zeroizing<String>, String>,
) -> Result<bool, String> {
    if path.exists() {
        return Ok(false);
    }
    let contents = make()?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(contents.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(io("write", &tmp))?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        // Another init won the race: its file stands.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

fn write_public(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io("write", path))
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, String> {
    let mut b = Zeroizing::new([0u8; N]);
    getrandom::fill(b.as_mut()).map_err(|e| format!("OS randomness: {e}"))?;
    Ok(b)
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> String + 'a {
    move |e| format!("cannot {what} {}: {e}", path.display())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_everything_once_and_reruns_print_the_same_card() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cell-a");
        let options = InitOptions {
            url: Some("https://127.0.0.1:7443".into()),
            ..Default::default()
        };
        let first = init(&dir, &options).unwrap();
        assert_eq!(first.card.name, "cell-a");
        assert!(first.operator_key_created.is_some());
        for secret in ["master.key", "relay.seed", "tls.key", OPERATOR_KEY_FILE] {
            assert_eq!(mode(&dir.join(secret)), 0o600, "{secret}");
        }
        let config = CellConfig::load(&first.config).unwrap();
        assert!(config.tokens.is_empty());
        assert_eq!(config.listen, "127.0.0.1:7443".parse().unwrap());
        assert_eq!(
            default_listen(Some("https://cell.example:9000")),
            "0.0.0.0:9000".parse().unwrap()
        );
        let key = fs::read_to_string(dir.join(OPERATOR_KEY_FILE)).unwrap();
        assert_eq!(
            config.operator_key_sha256.as_deref(),
            Some(hex::encode(Sha256::digest(key.trim().as_bytes())).as_str())
        );
        let master = fs::read(dir.join("master.key")).unwrap();

        let again = init(&dir, &InitOptions::default()).unwrap();
        assert_eq!(again.card, first.card);
        assert!(again.operator_key_created.is_none());
        assert_eq!(fs::read(dir.join("master.key")).unwrap(), master);
        assert_eq!(CellCard::load(&dir.join(CARD_FILE)).unwrap(), first.card);

        let e = init(
            &dir,
            &InitOptions {
                name: Some("cell-b".into()),
                ..Default::default()
            },
        )
        .err()
        .unwrap();
        assert!(e.contains("refusing to change"), "{e}");
        let e = init(
            &dir,
            &InitOptions {
                url: Some("https://10.0.0.1:7443".into()),
                ..Default::default()
            },
        )
        .err()
        .unwrap();
        assert!(e.contains("refusing to change"), "{e}");
        assert_eq!(CellCard::load(&dir.join(CARD_FILE)).unwrap(), first.card);
    }

    #[test]
    fn a_bad_url_or_tampered_card_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let e = init(
            &dir,
            &InitOptions {
                url: Some("http://x:1".into()),
                ..Default::default()
            },
        )
        .err()
        .unwrap();
        assert!(e.contains("https://"), "{e}");
        assert!(!dir.join("master.key").exists());

        init(&dir, &InitOptions::default()).unwrap();
        let card_path = dir.join(CARD_FILE);
        let text = fs::read_to_string(&card_path).unwrap();
        let fp_line = text.lines().find(|l| l.starts_with("fingerprint")).unwrap();
        let tampered = text.replace(fp_line, &format!("fingerprint = \"{}\"", "ab".repeat(32)));
        fs::write(&card_path, &tampered).unwrap();
        let e = init(&dir, &InitOptions::default()).err().unwrap();
        assert!(e.contains("corrupted"), "{e}");
        assert_eq!(fs::read_to_string(&card_path).unwrap(), tampered);
    }
}
