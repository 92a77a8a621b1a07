//! `keyfrag`: local clusters, key administration, refresh, benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyfrag_cli::dev;

#[derive(Parser)]
#[command(
    name = "keyfrag",
    version,
    about = "keyfrag: a PKCS#11 HSM whose keys exist only as fragments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A local cluster of fragment cells for development and tests.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// Keys held by the cells of a token (uses $KEYFRAG_CONF and the access keys; no PIN).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Proactive refresh: new fragments on every cell, same key (uses $KEYFRAG_CONF and the
    /// access keys; no PIN). Session keys are never refreshed.
    Refresh {
        /// One key, by the uid `keyfrag keys list` shows.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        key: Option<String>,
        /// Every token key of the token.
        #[arg(long)]
        all: bool,
        /// Repeat forever, one pass this often (90s, 15m, 2h, 1d).
        #[arg(long, value_parser = keyfrag_cli::refresh::parse_duration)]
        every: Option<std::time::Duration>,
        /// Token label (default: the first token of the configuration).
        #[arg(long)]
        token: Option<String>,
        /// With --all: keys refreshed at once.
        #[arg(long, default_value_t = keyfrag_cli::refresh::PARALLEL)]
        parallel: usize,
    },
    /// Benchmark a PKCS#11 module (and compare it with another) in one run.
    Bench(Box<keyfrag_cli::bench::BenchArgs>),
}

#[derive(Subcommand)]
enum DevCommand {
    /// Provision (first time) and start three cells on loopback; print the config to export.
    Up {
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value = "keyfrag-dev")]
        label: String,
        #[arg(long, default_value = "1234")]
        user_pin: String,
        #[arg(long, default_value = "12345678")]
        so_pin: String,
        #[arg(long, default_value_t = 3)]
        cells: usize,
    },
    /// Stop the cells started by `dev up`.
    Down {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// One line per key: uid, label, CKA_ID, type, bits, epoch.
    List {
        #[arg(long)]
        token: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYFRAG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Dev { command } => match command {
            DevCommand::Up {
                dir,
                label,
                user_pin,
                so_pin,
                cells,
            } => {
                if cells < 2 {
                    Err("a cluster needs at least 2 cells".to_string())
                } else {
                    dev::up(&dev::DevOptions {
                        dir: dir.unwrap_or_else(dev::default_dir),
                        cells,
                        label,
                        user_pin,
                        so_pin,
                    })
                    .map(|config| println!("export KEYFRAG_CONF={}", config.display()))
                }
            }
            DevCommand::Down { dir } => dev::down(&dir.unwrap_or_else(dev::default_dir)),
        },
        Command::Keys { command } => match command {
            KeysCommand::List { token } => {
                keyfrag_cli::keys::list(token.as_deref()).map(|out| print!("{out}"))
            }
        },
        Command::Refresh {
            key,
            all,
            every,
            token,
            parallel,
        } => keyfrag_cli::refresh::run(
            &keyfrag_cli::refresh::RefreshOptions {
                token,
                key,
                all,
                every,
                parallel,
            },
            &mut std::io::stdout(),
        ),
        Command::Bench(args) => keyfrag_cli::bench::main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyfrag: {e}");
            ExitCode::FAILURE
        }
    }
}
