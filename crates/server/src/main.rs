//! `keyfrag-server run --config PATH`: run one fragment cell until SIGTERM or SIGINT.
//! `keyfrag-server init --dir DIR`: set a new cell up (init.rs).
//! `keyfrag-server rotate-master-key --dir DIR`: have the running cell of DIR re-seal every
//! share under a new master key (own_admin.rs).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyfrag_server::{CellConfig, start};

#[derive(Parser)]
#[command(name = "keyfrag-server", version, about = "keyfrag fragment cell")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the cell described by a TOML config file.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Set up a new cell in DIR (keys, TLS certificate, operator key, config) and print its
    /// public card; rerunning prints the same card and never replaces a key.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// The cell's name (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
        /// Where clients and peers reach it, https://HOST:PORT (default: from --listen).
        #[arg(long)]
        url: Option<String>,
        /// Address to listen on (default: the URL's port; 127.0.0.1:7443 without --url).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Have the running cell set up in DIR (by `init`) re-seal every share under a new master
    /// key, through its admin route with DIR's operator key: the cell keeps serving.
    RotateMasterKey {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // A cell's memory holds its master key and opened shares: no core dump, and no ptrace or
    // /proc/PID/mem access by other processes of the same user (prctl PR_SET_DUMPABLE).
    let dumpable_off =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYFRAG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Err(e) = dumpable_off {
        tracing::warn!("cannot turn core dumps off: {e}");
    }
    let result = match Cli::parse().command {
        Command::Run { config } => run(config).await,
        Command::Init {
            dir,
            name,
            url,
            listen,
        } => init(&dir, name, url, listen),
        // The admin client blocks on a runtime of its own: off this runtime's threads.
        Command::RotateMasterKey { dir } => {
            match tokio::task::spawn_blocking(move || rotate_master_key(&dir)).await {
                Ok(r) => r.map_err(Into::into),
                Err(e) => Err(e.into()),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyfrag-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init(
    dir: &std::path::Path,
    name: Option<String>,
    url: Option<String>,
    listen: Option<std::net::SocketAddr>,
) -> Result<(), Box<dyn std::error::Error>> {
    use keyfrag_server::init::{CARD_FILE, InitOptions};
    let done = keyfrag_server::init::init(dir, &InitOptions { name, url, listen })?;
    let mut out = std::io::stdout().lock();
    write!(out, "{}", done.card.display())?;
    writeln!(out, "card         {}", dir.join(CARD_FILE).display())?;
    writeln!(out, "config       {}", done.config.display())?;
    if let Some(key) = done.operator_key_created {
        writeln!(
            out,
            "operator key {} (mode 0600): copy it to the operator's machine next to the card; \
             the cell keeps only its hash",
            key.display()
        )?;
    }
    Ok(())
}

fn rotate_master_key(dir: &std::path::Path) -> Result<(), String> {
    let done = keyfrag_server::own_admin::rotate_master_key(dir)?;
    println!(
        "{}: master key {} now seals every share ({} re-sealed)",
        done.name, done.response.key_id, done.response.resealed
    );
    Ok(())
}

async fn run(path: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let config = CellConfig::load(&path)?;
    let name = config.name.clone();
    let cell = start(config).await?;
    // Scripts (and `keyfrag dev up`) wait for this line to learn the port.
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "keyfrag-server {name} listening on https://{}",
        cell.addr
    )?;
    out.flush()?;
    drop(out);
    wait_for_signal().await?;
    tracing::info!("shutting down");
    cell.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
