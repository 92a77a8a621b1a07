//! `keyfrag dev up|down`: a local cluster of cells as background processes, in one command.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyfrag_client::{Cluster, Config, UserKind};

use crate::provision::{ProvisionOptions, free_loopback_addrs, provision};

pub struct DevOptions {
    pub dir: PathBuf,
    pub cells: usize,
    pub label: String,
    pub user_pin: String,
    pub so_pin: String,
    /// Create a customer fragment for the token (sealed under `user_pin`) and name it in the
    /// config, so the cells' shares alone can use no key made from then on.
    pub customer_fragment: bool,
}

/// The default state directory: `$XDG_DATA_HOME/keyfrag/dev` or `~/.local/share/keyfrag/dev`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("keyfrag/dev");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".local/share/keyfrag/dev")
}

/// Provision (first time), start every cell that is not running, initialise the token
/// (first time). Idempotent.
pub fn up(options: &DevOptions) -> Result<PathBuf, String> {
    fs::create_dir_all(&options.dir)
        .map_err(|e| format!("cannot create {}: {e}", options.dir.display()))?;
    let dir = options
        .dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", options.dir.display()))?;
    let config_path = dir.join("keyfrag.toml");
    if !config_path.exists() {
        let addrs = free_loopback_addrs(options.cells)?;
        provision(
            &dir,
            &ProvisionOptions {
                label: options.label.clone(),
                addrs,
                allow_raw_rsa: true,
                allow_rsa_1024: true,
            },
        )?;
        eprintln!(
            "provisioned {} cells under {}",
            options.cells,
            dir.display()
        );
    }
    // Directories provisioned before admin.toml was part of a dev cluster get it now.
    if !dir.join(keyfrag_client::admin::ADMIN_FILE).exists() {
        let cells = cell_dirs(&dir)?;
        // Cells set up before `keyfrag-server init` wrote cards cannot be described to the
        // operator's tools; say so instead of failing on the first missing file.
        if cells
            .iter()
            .any(|c| !c.join(keyfrag_server::init::CARD_FILE).exists())
        {
            return Err(format!(
                "{} was set up by an older keyfrag (its cells have no card.toml): stop it with \
                 `keyfrag dev down --dir {0}` and remove it, or use another --dir",
                dir.display()
            ));
        }
        crate::provision::write_admin_file(&dir, &cells)?;
    }
    if options.customer_fragment {
        add_customer_fragment(&config_path, &dir, &options.user_pin)?;
    }
    let server = server_binary()?;
    for cell_dir in cell_dirs(&dir)? {
        start_cell(&server, &cell_dir)?;
    }
    let config = Config::load(&config_path).map_err(|e| e.message)?;
    let token = &config.tokens[0];
    let cluster = Cluster::new(token).map_err(|e| e.message)?;
    let status = wait_ready(&cluster, Duration::from_secs(20))?;
    if !status.initialized {
        cluster
            .init_token(&options.so_pin, &options.label)
            .map_err(|e| format!("initialise token: {}", e.message))?;
        cluster
            .login(UserKind::So, &options.so_pin)
            .map_err(|e| format!("SO login: {}", e.message))?;
        cluster
            .init_pin(&options.user_pin)
            .map_err(|e| format!("set user PIN: {}", e.message))?;
        cluster.logout();
        eprintln!(
            "token {:?} initialised (user PIN {:?}, SO PIN {:?})",
            options.label, options.user_pin, options.so_pin
        );
    } else {
        eprintln!("token {:?} is up", status.label);
    }
    if options.customer_fragment {
        pin_customer_card(&dir, token, &options.user_pin)?;
    }
    Ok(config_path)
}

/// Pins the token's customer fragment's card on every cell (idempotent, so a later `dev up`
/// repeats it harmlessly): the dev token then generates in customer mode.
fn pin_customer_card(
    dir: &Path,
    token: &keyfrag_client::TokenConfig,
    user_pin: &str,
) -> Result<(), String> {
    let Some(file) = &token.customer_fragment else {
        return Ok(());
    };
    let sealed = keyfrag_client::customer_file::load(file).map_err(|e| e.to_string())?;
    let seed = match sealed.open_with_pin(user_pin.as_bytes()) {
        Ok(seed) => seed,
        // The user changed the PIN since (C_SetPIN re-seals the file): the card was pinned
        // when the fragment was made, so a later `dev up` has nothing to add.
        Err(e) => {
            eprintln!(
                "{}: {e}; customer card not pinned again (keyfrag customer-fragment pin \
                 does it with the current PIN)",
                file.display()
            );
            return Ok(());
        }
    };
    let report = crate::customer_fragment::pin_seed(
        &seed,
        &token.label,
        &dir.join(keyfrag_client::admin::ADMIN_FILE),
    )?;
    eprint!("{report}");
    Ok(())
}

/// Creates `customer.kf` (sealed under the dev user PIN) beside the config and names it under
/// the token; the recovery secret goes to `customer.recovery` (0600), as this is a dev cluster.
/// Nothing happens if the token already names one.
fn add_customer_fragment(config_path: &Path, dir: &Path, user_pin: &str) -> Result<(), String> {
    use keyfrag_core::customer::{CustomerSeed, KdfParams, RecoverySecret, SealedFragment};
    let mut config = Config::load(config_path).map_err(|e| e.message)?;
    if config.tokens[0].customer_fragment.is_some() {
        return Ok(());
    }
    let file = dir.join("customer.kf");
    let seed = CustomerSeed::generate().map_err(|e| e.to_string())?;
    let recovery = RecoverySecret::generate().map_err(|e| e.to_string())?;
    let sealed = SealedFragment::seal(&seed, user_pin.as_bytes(), &recovery, KdfParams::default())
        .map_err(|e| e.to_string())?;
    keyfrag_client::customer_file::create(&file, &sealed).map_err(|e| e.to_string())?;
    let recovery_path = dir.join("customer.recovery");
    crate::provision::write_secret_file(
        &recovery_path,
        format!("{}\n", recovery.to_display().as_str()).as_bytes(),
    )?;
    config.tokens[0].customer_fragment = Some(file.clone());
    let text = toml::to_string(&config).map_err(|e| format!("serialise config: {e}"))?;
    fs::write(config_path, text).map_err(|e| format!("{}: {e}", config_path.display()))?;
    eprintln!(
        "customer fragment {} created (sealed under the user PIN; recovery secret in {})",
        file.display(),
        recovery_path.display()
    );
    Ok(())
}

/// Stop every cell of the cluster under `dir`, waiting for each to exit.
pub fn down(dir: &Path) -> Result<(), String> {
    if !dir.join("keyfrag.toml").exists() {
        return Err(format!("no dev cluster under {}", dir.display()));
    }
    for cell_dir in cell_dirs(dir)? {
        let name = cell_dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        match running_pid(&cell_dir) {
            Some(pid) => {
                stop_pid(pid, Duration::from_secs(10))?;
                eprintln!("stopped {name} (pid {pid})");
            }
            None => eprintln!("{name} was not running"),
        }
        let _ = fs::remove_file(cell_dir.join("pid"));
    }
    Ok(())
}

fn cell_dirs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let cells = dir.join("cells");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&cells)
        .map_err(|e| format!("{}: {e}", cells.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("cell.toml").exists())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// `keyfrag-server` next to this executable, else on PATH.
fn server_binary() -> Result<PathBuf, String> {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let candidate = dir.join("keyfrag-server");
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    Ok(PathBuf::from("keyfrag-server"))
}

fn start_cell(server: &Path, cell_dir: &Path) -> Result<(), String> {
    if running_pid(cell_dir).is_some() {
        return Ok(());
    }
    let log_path = cell_dir.join("cell.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(server)
        .arg("run")
        .arg("--config")
        .arg(cell_dir.join("cell.toml"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
    fs::write(cell_dir.join("pid"), child.id().to_string()).map_err(|e| e.to_string())?;
    Ok(())
}

fn running_pid(cell_dir: &Path) -> Option<i32> {
    let pid: i32 = fs::read_to_string(cell_dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let is_cell = String::from_utf8_lossy(&cmdline).contains("keyfrag-server");
    let alive = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    (is_cell && alive).then_some(pid)
}

fn stop_pid(pid: i32, grace: Duration) -> Result<(), String> {
    let p = rustix::process::Pid::from_raw(pid).ok_or("bad pid")?;
    let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        let alive = fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        if !alive {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    Ok(())
}

/// Wait until every cell accepts connections (cells take a moment to bind), bounded by
/// `limit`, then read the token state.
fn wait_ready(cluster: &Cluster, limit: Duration) -> Result<keyfrag_client::TokenStatus, String> {
    let deadline = Instant::now() + limit;
    for cell in &cluster.config().cells {
        let addr = cell
            .url
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        while std::net::TcpStream::connect(&addr).is_err() {
            if Instant::now() >= deadline {
                return Err(format!("cell {} at {addr} did not start", cell.name));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    cluster
        .token_status()
        .map_err(|e| format!("cells not ready: {}", e.message))
}
