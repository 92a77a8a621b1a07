//! Provisioning of a local cluster (`keyfrag dev up`, the testbed): every cell is set up by
//! the same code as `keyfrag-server init` (its own keys, TLS CA and certificate, operator key),
//! every cell's cluster file lists the cards of all cells (what `keyfrag cluster create` writes
//! after the operator confirmed them), and one access key per cell for the token goes into the
//! cell's config as a bootstrap `[[token]]`, next to the module's `keyfrag.toml`; `admin.toml`
//! (what `keyfrag cluster create` writes) names each cell's CA and operator key in place, so
//! `keyfrag backup --cluster DIR`, `keyfrag token create` etc. work on a dev cluster. Files
//! holding secrets, and admin.toml, are created with mode 0600.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use keyfrag_client::admin::{ADMIN_FILE, AdminCell, AdminFile};
use keyfrag_client::{CellConfig, Config, TokenConfig};
use keyfrag_server::card::CellCard;
use keyfrag_server::init::{
    CARD_FILE, CLUSTER_FILE, InitOptions, OPERATOR_KEY_FILE, TLS_CA_FILE, init,
};
use keyfrag_server::relay_identity::ClusterFile;
use sha2::{Digest, Sha256};

pub struct ProvisionOptions {
    pub label: String,
    /// One address per cell; port 0 is not allowed here (the config names the port).
    pub addrs: Vec<SocketAddr>,
    pub allow_raw_rsa: bool,
    pub allow_rsa_1024: bool,
}

/// What `provision` wrote.
pub struct Provisioned {
    /// Every cell's TLS CA in one PEM bundle (each cell is pinned to its own in the config).
    pub ca_cert: PathBuf,
    /// Each cell's `cell.toml`, in cell order.
    pub cell_configs: Vec<PathBuf>,
    /// Each cell's state directory.
    pub cell_dirs: Vec<PathBuf>,
    /// The module's `keyfrag.toml`.
    pub client_config: PathBuf,
    /// The operator's `admin.toml` (`keyfrag backup --cluster`, `token create`, ...).
    pub admin: PathBuf,
}

pub fn cell_name(i: usize) -> String {
    format!("cell-{}", (b'a' + i as u8) as char)
}

/// Write a complete cluster under `dir` (which must exist).
pub fn provision(dir: &Path, options: &ProvisionOptions) -> Result<Provisioned, String> {
    let client_dir = dir.join("client");
    fs::create_dir_all(&client_dir).map_err(io("create", &client_dir))?;

    let mut cards = Vec::new();
    let mut cell_configs = Vec::new();
    let mut cell_dirs = Vec::new();
    for (i, addr) in options.addrs.iter().enumerate() {
        let name = cell_name(i);
        let cell_dir = dir.join("cells").join(&name);
        let done = init(
            &cell_dir,
            &InitOptions {
                name: Some(name),
                url: Some(format!("https://{addr}")),
                listen: Some(*addr),
            },
        )?;
        cards.push(done.card);
        cell_configs.push(done.config);
        cell_dirs.push(cell_dir);
    }
    let party_cards = cards
        .iter()
        .map(|c| c.party_card())
        .collect::<Result<Vec<_>, _>>()?;
    let cluster_toml = ClusterFile::from_cards(&party_cards).to_toml();
    let bundle: String = cards.iter().map(|c| c.tls_ca.as_str()).collect();
    let ca_path = dir.join("ca.crt");
    write_file(&ca_path, bundle.as_bytes(), false)?;

    let mut cells = Vec::new();
    for ((card, cell_dir), cfg_path) in cards.iter().zip(&cell_dirs).zip(&cell_configs) {
        write_file(&cell_dir.join(CLUSTER_FILE), cluster_toml.as_bytes(), false)?;
        let access_key = hex::encode(random_bytes::<32>()?);
        let access_path = client_dir.join(format!("{}.access-key", card.name));
        write_file(&access_path, access_key.as_bytes(), true)?;
        let access_hash = hex::encode(Sha256::digest(access_key.as_bytes()));
        let mut text = fs::read_to_string(cfg_path).map_err(io("read", cfg_path))?;
        text.push_str(&format!(
            "\n# Bootstrap token (keyfrag dev up): declared here rather than created by the \
             operator.\n[[token]]\nid = {label:?}\naccess_key_sha256 = {access_hash:?}\n",
            label = options.label,
        ));
        write_file(cfg_path, text.as_bytes(), false)?;
        cells.push(CellConfig {
            name: card.name.clone(),
            url: card.url.clone(),
            ca: cell_dir.join(TLS_CA_FILE),
            access_key_file: access_path,
        });
    }

    let config = Config {
        tokens: vec![TokenConfig {
            label: options.label.clone(),
            allow_raw_rsa: options.allow_raw_rsa,
            allow_rsa_1024: options.allow_rsa_1024,
            timeout_ms: 2000,
            retries: 1,
            session_key_lease_secs: 600,
            data_key_cache_secs: 0,
            customer_fragment: None,
            cells,
        }],
    };
    let text = toml::to_string(&config).map_err(|e| format!("serialise config: {e}"))?;
    let client_config = dir.join("keyfrag.toml");
    write_file(&client_config, text.as_bytes(), false)?;
    let admin = write_admin_file(dir, &cell_dirs)?;
    Ok(Provisioned {
        ca_cert: ca_path,
        cell_configs,
        cell_dirs,
        client_config,
        admin,
    })
}

/// Write `DIR/admin.toml` over the cells set up in `cell_dirs` (each with its card, CA and
/// operator key where `keyfrag-server init` left them; paths relative to DIR, so the directory
/// can move). The operator keys stay where they are: a local cluster has one owner.
pub fn write_admin_file(dir: &Path, cell_dirs: &[PathBuf]) -> Result<PathBuf, String> {
    let mut cells = Vec::new();
    for cell_dir in cell_dirs {
        let card = CellCard::load(&cell_dir.join(CARD_FILE))?;
        let rel = cell_dir.strip_prefix(dir).unwrap_or(cell_dir);
        cells.push(AdminCell {
            name: card.name,
            url: card.url,
            ca: rel.join(TLS_CA_FILE),
            operator_key_file: rel.join(OPERATOR_KEY_FILE),
            fingerprint: card.fingerprint,
        });
    }
    let text = format!(
        "# The cells of this local cluster and their operator keys (keyfrag dev up).\n{}",
        toml::to_string(&AdminFile { cells }).map_err(|e| e.to_string())?
    );
    let path = dir.join(ADMIN_FILE);
    write_secret_file(&path, text.as_bytes())?;
    Ok(path)
}

/// Addresses on 127.0.0.1 with ports the OS says are free now.
pub fn free_loopback_addrs(n: usize) -> Result<Vec<SocketAddr>, String> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map_err(|e| e.to_string()))
        .collect()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| format!("OS randomness: {e}"))?;
    Ok(b)
}

/// Write a file only its owner can read (mode 0600).
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_file(path, bytes, true)
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), String> {
    let mode = if secret { 0o600 } else { 0o644 };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io("write", path))?;
    f.write_all(bytes).map_err(io("write", path))?;
    f.sync_all().map_err(io("sync", path))
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> String + 'a {
    move |e| format!("cannot {what} {}: {e}", path.display())
}
