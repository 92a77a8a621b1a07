//! Provisioning of a local cluster: a CA, one directory per cell (TLS certificate and key,
//! master key, relay seed, cluster file, cell config), one access key per cell for the
//! token, and the module's `keyfrag.toml`. Files holding secrets are created with mode 0600.
//!
//! Relay identities (key generation): each cell gets a random party seed, and every cell's
//! cluster file lists the cards (party id = cell name) of all cells, its own included.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use keyfrag_client::{CellConfig, Config, TokenConfig};
use keyfrag_core::relay::{PartyCard, PartyKeys};
use keyfrag_server::relay_identity::ClusterFile;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
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
    pub ca_cert: PathBuf,
    /// Each cell's `cell.toml`, in cell order.
    pub cell_configs: Vec<PathBuf>,
    /// Each cell's state directory.
    pub cell_dirs: Vec<PathBuf>,
    /// The module's `keyfrag.toml`.
    pub client_config: PathBuf,
}

pub fn cell_name(i: usize) -> String {
    format!("cell-{}", (b'a' + i as u8) as char)
}

/// Write a complete cluster under `dir` (which must exist).
pub fn provision(dir: &Path, options: &ProvisionOptions) -> Result<Provisioned, String> {
    let ca_key = KeyPair::generate().map_err(err("generate CA key"))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err("CA params"))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "keyfrag local cluster CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err("sign CA"))?;
    let ca_path = dir.join("ca.crt");
    write_file(&ca_path, ca_cert.pem().as_bytes(), false)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let client_dir = dir.join("client");
    fs::create_dir_all(&client_dir).map_err(io("create", &client_dir))?;

    // Every cell's card goes into every cluster file, so all seeds come first.
    let mut seeds = Vec::new();
    let mut cards: Vec<PartyCard> = Vec::new();
    for i in 0..options.addrs.len() {
        let seed = random_bytes::<32>()?;
        let card = PartyKeys::from_seed(&seed)
            .card(&cell_name(i))
            .map_err(err("relay card"))?;
        seeds.push(seed);
        cards.push(card);
    }
    let cluster_toml = ClusterFile::from_cards(&cards).to_toml();

    let mut cells = Vec::new();
    let mut cell_configs = Vec::new();
    let mut cell_dirs = Vec::new();
    for (i, addr) in options.addrs.iter().enumerate() {
        let name = cell_name(i);
        let cell_dir = dir.join("cells").join(&name);
        fs::create_dir_all(&cell_dir).map_err(io("create", &cell_dir))?;

        let key = KeyPair::generate().map_err(err("generate cell TLS key"))?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])
            .map_err(err("cell cert params"))?;
        params.subject_alt_names.push(SanType::IpAddress(addr.ip()));
        params.distinguished_name.push(DnType::CommonName, &name);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(err("sign cell cert"))?;
        write_file(&cell_dir.join("tls.crt"), cert.pem().as_bytes(), false)?;
        write_file(
            &cell_dir.join("tls.key"),
            key.serialize_pem().as_bytes(),
            true,
        )?;

        let master = hex::encode(random_bytes::<32>()?);
        write_file(&cell_dir.join("master.key"), master.as_bytes(), true)?;
        let seed = hex::encode(seeds[i]);
        write_file(&cell_dir.join("relay.seed"), seed.as_bytes(), true)?;
        write_file(
            &cell_dir.join("cluster.toml"),
            cluster_toml.as_bytes(),
            false,
        )?;

        let access_key = hex::encode(random_bytes::<32>()?);
        let access_path = client_dir.join(format!("{name}.access-key"));
        write_file(&access_path, access_key.as_bytes(), true)?;
        let access_hash = hex::encode(Sha256::digest(access_key.as_bytes()));

        let cell_toml = format!(
            "name = {name:?}\nlisten = \"{addr}\"\ndatabase = {db:?}\nmaster_key_file = {mk:?}\n\
             tls_cert = {crt:?}\ntls_key = {key:?}\nrelay_seed_file = {seed:?}\n\
             cluster_file = {cluster:?}\n\n[[token]]\nid = {label:?}\n\
             access_key_sha256 = {access_hash:?}\n",
            db = cell_dir.join("cell.db"),
            mk = cell_dir.join("master.key"),
            seed = cell_dir.join("relay.seed"),
            cluster = cell_dir.join("cluster.toml"),
            crt = cell_dir.join("tls.crt"),
            key = cell_dir.join("tls.key"),
            label = options.label,
        );
        let cfg_path = cell_dir.join("cell.toml");
        write_file(&cfg_path, cell_toml.as_bytes(), false)?;
        cell_configs.push(cfg_path);
        cell_dirs.push(cell_dir);

        cells.push(CellConfig {
            name,
            url: format!("https://{addr}"),
            ca: ca_path.clone(),
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
    Ok(Provisioned {
        ca_cert: ca_path,
        cell_configs,
        cell_dirs,
        client_config,
    })
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

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> String + 'a {
    move |e| format!("cannot {what} {}: {e}", path.display())
}
