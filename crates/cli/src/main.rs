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
    /// Operator set-up: accept the cells' cards and write the cluster's files.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Back up every cell into a new directory: refresh paused on every cell meanwhile, one
    /// sealed snapshot per cell under one backup id, and manifest.json.
    Backup {
        #[arg(long)]
        out: PathBuf,
        /// admin.toml, or the directory `cluster create` wrote.
        #[arg(long)]
        cluster: PathBuf,
    },
    /// Restore every cell from one backup directory; refuses a mixed, corrupted or foreign set
    /// before any cell changes.
    Restore {
        #[arg(long)]
        from: PathBuf,
        /// admin.toml, or the directory `cluster create` wrote.
        #[arg(long)]
        cluster: PathBuf,
    },
    /// Check a module config against its cells, one line per check (ok / FAIL with a fix /
    /// skip); exits non-zero on any failure. With --pin-file, also times each cell's partial
    /// and verifies a signature made with a temporary test key.
    Doctor {
        /// The module config (default: found as the module finds it, $KEYFRAG_CONF first).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A file holding the user PIN.
        #[arg(long)]
        pin_file: Option<PathBuf>,
        /// Only this token (label).
        #[arg(long)]
        token: Option<String>,
    },
    /// The operator's tokens, on every cell of a cluster (admin.toml from `cluster create`).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Operator maintenance of the cells (admin.toml from `cluster create`).
    Cell {
        #[command(subcommand)]
        command: CellCommand,
    },
    /// Access keys of a token: issued per cell, stored there as hashes, revocable at once.
    AccessKey {
        #[command(subcommand)]
        command: AccessKeyCommand,
    },
    /// The token's pool of keys generated ahead of time: C_GenerateKeyPair takes one of the
    /// asked size instantly (uses $KEYFRAG_CONF and the access keys).
    Pool {
        #[command(subcommand)]
        command: PoolCommand,
    },
    /// Benchmark a PKCS#11 module (and compare it with another) in one run.
    Bench(Box<keyfrag_cli::bench::BenchArgs>),
    /// The customer's fragment file: without it (and the user PIN) no key of the token can be
    /// used, whoever runs the cells. Secrets are read from the terminal (echo off) or, when
    /// standard input is not a terminal, one per line from it.
    CustomerFragment {
        #[command(subcommand)]
        command: CustomerFragmentCommand,
    },
}

#[derive(Subcommand)]
enum CustomerFragmentCommand {
    /// Create a file with a fresh seed, sealed under a user PIN; prints the recovery secret once.
    New {
        #[arg(long)]
        file: PathBuf,
    },
    /// Write a backup (opens only with the recovery secret, which is checked first).
    Backup {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Re-create the file from a backup and the recovery secret, sealed under a new PIN
    /// (also after the security officer reset the user PIN).
    Restore {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        file: PathBuf,
    },
    /// Re-seal the file under a new PIN (C_SetPIN through the module does this itself).
    ChangePin {
        #[arg(long)]
        file: PathBuf,
    },
    /// Public facts: fingerprint and identity key.
    Show {
        #[arg(long)]
        file: PathBuf,
    },
    /// Pin the file's customer card on a token of every cell (operator keys from admin.toml):
    /// the customer becomes a party of every key generation on the token, and generation
    /// without it is refused from then on. Idempotent; asks for the user PIN.
    Pin {
        #[arg(long)]
        file: PathBuf,
        /// Token label.
        #[arg(long)]
        token: String,
        /// admin.toml, or its directory (default: beside the module config, $KEYFRAG_CONF).
        #[arg(long)]
        admin: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Take every cell's card (from `keyfrag-server init`), confirm each fingerprint, and write
    /// cluster.toml (install on every cell), admin.toml, the cells' CAs and operator keys.
    Create {
        /// A cell's card.toml; one per cell (an operator.key beside it is copied too).
        #[arg(long = "card", required = true)]
        cards: Vec<PathBuf>,
        /// The fingerprints the cells printed, in --card order (otherwise asked one by one).
        #[arg(long, value_delimiter = ',')]
        yes_fingerprints: Option<Vec<String>>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create the token (label = its id) with an SO PIN on every cell, or on none.
    Create {
        #[arg(long)]
        label: String,
        /// admin.toml, or the directory `cluster create` wrote.
        #[arg(long)]
        cluster: PathBuf,
        /// A file holding the SO PIN (otherwise it is asked for).
        #[arg(long)]
        so_pin_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CellCommand {
    /// Re-seal every stored share under a new master key, while the cells serve.
    RotateMasterKey {
        #[arg(long)]
        cluster: PathBuf,
        /// Only this cell (default: every cell, one after the other).
        #[arg(long)]
        cell: Option<String>,
    },
}

#[derive(Subcommand)]
enum AccessKeyCommand {
    /// Issue a key (one per cell), write it once beside admin.toml and point keyfrag.toml
    /// at it.
    Issue {
        #[arg(long)]
        token: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        cluster: PathBuf,
    },
    /// Revoke a key on every cell: refused from the next request on.
    Revoke {
        #[arg(long)]
        token: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        cluster: PathBuf,
    },
    /// Name, creation, last use (to the minute) and state of every key of the token.
    List {
        #[arg(long)]
        token: String,
        #[arg(long)]
        cluster: PathBuf,
    },
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
        /// Also create a customer fragment (sealed under the user PIN), name it in the
        /// token's config and pin its card on every cell: keys imported or generated from then
        /// on need it.
        #[arg(long)]
        customer_fragment: bool,
    },
    /// Stop the cells started by `dev up`.
    Down {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PoolCommand {
    /// Generate keys into the pool, one after the other, printing each one's time. With a
    /// customer fragment (--customer-fragment, or the token's configured one) this process is
    /// the customer party and asks for the user PIN; minutes per RSA-2048 key. Ctrl-C aborts
    /// the key in progress on every cell; the finished ones stay.
    Fill {
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 2048)]
        bits: u32,
        #[arg(long)]
        customer_fragment: Option<PathBuf>,
        /// Token label (default: the first token of the configuration).
        #[arg(long)]
        token: Option<String>,
    },
    /// The pooled keys and how many of each size.
    List {
        #[arg(long)]
        token: Option<String>,
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

fn customer_fragment(command: CustomerFragmentCommand) -> Result<String, String> {
    use keyfrag_cli::customer_fragment as cf;
    use keyfrag_core::customer::KdfParams;
    let mut input = keyfrag_cli::secret_input::SecretInput::default();
    match command {
        CustomerFragmentCommand::New { file } => cf::new(&file, &mut input, KdfParams::default()),
        CustomerFragmentCommand::Backup { file, out } => cf::backup(&file, &out, &mut input),
        CustomerFragmentCommand::Restore { from, file } => {
            cf::restore(&from, &file, &mut input, KdfParams::default())
        }
        CustomerFragmentCommand::ChangePin { file } => {
            cf::change_pin(&file, &mut input, KdfParams::default())
        }
        CustomerFragmentCommand::Show { file } => cf::show(&file),
        CustomerFragmentCommand::Pin { file, token, admin } => {
            let admin = match admin {
                Some(a) => keyfrag_cli::operator::admin_path(&a),
                None => keyfrag_client::Config::locate(None)
                    .map_err(|e| e.message)?
                    .with_file_name(keyfrag_client::admin::ADMIN_FILE),
            };
            cf::pin(&file, &token, &admin, &mut input)
        }
    }
}

fn pool(command: PoolCommand) -> Result<(), String> {
    use keyfrag_cli::pool;
    static CANCEL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    match command {
        PoolCommand::Fill {
            count,
            bits,
            customer_fragment,
            token,
        } => {
            let cluster = keyfrag_cli::keys::token_cluster(None, token.as_deref())?;
            let mut input = keyfrag_cli::secret_input::SecretInput::default();
            let seed = pool::customer_seed(&cluster, customer_fragment.as_deref(), &mut input)?;
            pool::cancel_on_ctrl_c(&CANCEL);
            let stdout = &mut std::io::stdout();
            let added = pool::fill(&cluster, count, bits, seed.as_ref(), &CANCEL, stdout)?;
            let now = cluster.pool_list().map_err(|e| e.message)?;
            println!(
                "{} added; pool: {}",
                added.len(),
                keyfrag_cli::keys::pool_sizes(&now)
            );
            Ok(())
        }
        PoolCommand::List { token } => {
            let cluster = keyfrag_cli::keys::token_cluster(None, token.as_deref())?;
            pool::list(&cluster).map(|out| print!("{out}"))
        }
    }
}

fn cluster_create(
    cards: &[PathBuf],
    fingerprints: Option<&[String]>,
    out: &std::path::Path,
) -> Result<(), String> {
    use keyfrag_cli::cluster_create::{Confirm, create};
    let stdin = std::io::stdin();
    let (mut input, mut prompts) = (stdin.lock(), std::io::stderr());
    let confirm = match fingerprints {
        Some(f) => Confirm::Given(f),
        None => Confirm::Ask {
            input: &mut input,
            prompts: &mut prompts,
        },
    };
    let done = create(cards, confirm, out)?;
    println!(
        "cluster of {} in {}{}",
        done.cells.join(", "),
        done.out.display(),
        if done.changed { "" } else { " (unchanged)" }
    );
    println!(
        "install {} as cluster.toml in every cell's directory, then start the cells",
        done.out.join("cluster.toml").display()
    );
    for key in &done.missing_operator_keys {
        println!(
            "place the cell's operator.key at {} (mode 0600)",
            key.display()
        );
    }
    Ok(())
}

fn token_create(
    label: &str,
    cluster: &std::path::Path,
    so_pin_file: Option<&std::path::Path>,
) -> Result<String, String> {
    let pin = match so_pin_file {
        Some(f) => zeroize::Zeroizing::new(
            std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read {}: {e}", f.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        ),
        None => keyfrag_cli::secret_input::SecretInput::default().read_new("SO PIN", "SO PIN")?,
    };
    keyfrag_cli::operator::token_create(&keyfrag_cli::operator::admin_path(cluster), label, &pin)
}

fn access_key(command: AccessKeyCommand) -> Result<String, String> {
    use keyfrag_cli::operator::{access_key_issue, access_key_list, access_key_revoke, admin_path};
    match command {
        AccessKeyCommand::Issue {
            token,
            name,
            cluster,
        } => access_key_issue(&admin_path(&cluster), &token, name.as_deref()),
        AccessKeyCommand::Revoke {
            token,
            name,
            cluster,
        } => access_key_revoke(&admin_path(&cluster), &token, &name),
        AccessKeyCommand::List { token, cluster } => access_key_list(&admin_path(&cluster), &token),
    }
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
                customer_fragment,
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
                        customer_fragment,
                    })
                    .map(|config| println!("export KEYFRAG_CONF={}", config.display()))
                }
            }
            DevCommand::Down { dir } => dev::down(&dir.unwrap_or_else(dev::default_dir)),
        },
        Command::Pool { command } => pool(command),
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
        Command::Cluster { command } => match command {
            ClusterCommand::Create {
                cards,
                yes_fingerprints,
                out,
            } => cluster_create(&cards, yes_fingerprints.as_deref(), &out),
        },
        Command::Backup { out, cluster } => {
            keyfrag_client::admin::AdminFile::load(&keyfrag_cli::backup::admin_path(&cluster))
                .map_err(|e| e.message)
                .and_then(|admin| keyfrag_cli::backup::backup(&admin, &out))
                .map(|summary| print!("{summary}"))
        }
        Command::Restore { from, cluster } => {
            keyfrag_client::admin::AdminFile::load(&keyfrag_cli::backup::admin_path(&cluster))
                .map_err(|e| e.message)
                .and_then(|admin| keyfrag_cli::backup::restore(&admin, &from))
                .map(|summary| print!("{summary}"))
        }
        Command::Doctor {
            config,
            pin_file,
            token,
        } => {
            let options = keyfrag_cli::doctor::DoctorOptions {
                config,
                pin_file,
                token,
            };
            match keyfrag_cli::doctor::run(&options, &mut std::io::stdout()) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            }
        }
        Command::Token { command } => match command {
            TokenCommand::Create {
                label,
                cluster,
                so_pin_file,
            } => token_create(&label, &cluster, so_pin_file.as_deref()).map(|out| print!("{out}")),
        },
        Command::Cell {
            command: CellCommand::RotateMasterKey { cluster, cell },
        } => keyfrag_cli::operator::rotate_master_keys(
            &keyfrag_cli::operator::admin_path(&cluster),
            cell.as_deref(),
        )
        .map(|out| print!("{out}")),
        Command::AccessKey { command } => access_key(command).map(|out| print!("{out}")),
        Command::Bench(args) => keyfrag_cli::bench::main(&args),
        Command::CustomerFragment { command } => {
            customer_fragment(command).map(|out| print!("{out}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyfrag: {e}");
            ExitCode::FAILURE
        }
    }
}
