//! In-process clusters for tests: n cells on 127.0.0.1 ports chosen by the OS, TLS certs and
//! access keys generated under a temp dir, and a `keyfrag.toml` for the module.

use std::path::{Path, PathBuf};

use keyfrag_client::{Cluster, Config, UserKind};

use crate::provision::{ProvisionOptions, Provisioned, free_loopback_addrs, provision};

/// A running in-process cluster. Dropping it shuts the cells down.
pub struct Testbed {
    /// `keyfrag.toml` naming one token over all cells: pass as `config=PATH` in C_Initialize.
    pub config_path: PathBuf,
    /// Temporary directory holding every cell's state; removed on drop.
    pub dir: tempfile::TempDir,
    pub provisioned: Provisioned,
    runtime: tokio::runtime::Runtime,
    cells: Vec<Option<keyfrag_server::RunningCell>>,
}

pub struct TestbedOptions {
    pub cells: usize,
    pub label: String,
    pub so_pin: String,
    /// When set, the token is initialised and the user PIN set to this.
    pub user_pin: Option<String>,
    pub allow_raw_rsa: bool,
    pub allow_rsa_1024: bool,
}

impl Default for TestbedOptions {
    fn default() -> Self {
        TestbedOptions {
            cells: 3,
            label: "keyfrag-test".into(),
            so_pin: "12345678".into(),
            user_pin: Some("1234".into()),
            allow_raw_rsa: true,
            allow_rsa_1024: true,
        }
    }
}

impl Testbed {
    /// Start a cluster (blocking; runs cells on a background runtime). Panics on failure:
    /// this is test scaffolding.
    pub fn start(options: TestbedOptions) -> Testbed {
        let dir = tempfile::tempdir().expect("temp dir");
        let addrs = free_loopback_addrs(options.cells).expect("free ports");
        let provisioned = provision(
            dir.path(),
            &ProvisionOptions {
                label: options.label.clone(),
                addrs,
                allow_raw_rsa: options.allow_raw_rsa,
                allow_rsa_1024: options.allow_rsa_1024,
            },
        )
        .expect("provision cluster");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("testbed-cell")
            .enable_all()
            .build()
            .expect("runtime");
        let mut bed = Testbed {
            config_path: provisioned.client_config.clone(),
            dir,
            provisioned,
            runtime,
            cells: Vec::new(),
        };
        for i in 0..options.cells {
            bed.cells.push(None);
            bed.start_cell(i);
        }
        if let Some(user_pin) = &options.user_pin {
            let cluster = bed.cluster();
            cluster
                .init_token(&options.so_pin, &options.label)
                .expect("init token");
            cluster
                .login(UserKind::So, &options.so_pin)
                .expect("SO login");
            cluster.init_pin(user_pin).expect("init user PIN");
            cluster.logout();
        }
        bed
    }

    /// A client for the testbed's token (for set-up and inspection in tests).
    pub fn cluster(&self) -> Cluster {
        let config = Config::load(&self.config_path).expect("testbed config");
        Cluster::new(&config.tokens[0]).expect("cluster")
    }

    /// Stop cell `i` (graceful) — operations then fail with CKR_DEVICE_ERROR.
    pub fn stop_cell(&mut self, i: usize) {
        if let Some(cell) = self.cells[i].take() {
            self.runtime.block_on(cell.shutdown());
        }
    }

    /// (Re)start cell `i` on its configured address with its existing store.
    pub fn start_cell(&mut self, i: usize) {
        if self.cells[i].is_some() {
            return;
        }
        let config = keyfrag_server::CellConfig::load(&self.provisioned.cell_configs[i])
            .expect("cell config");
        let cell = self
            .runtime
            .block_on(keyfrag_server::start(config))
            .expect("start cell");
        self.cells[i] = Some(cell);
    }

    /// Path of cell `i`'s SQLite database.
    pub fn cell_database(&self, i: usize) -> PathBuf {
        self.provisioned.cell_dirs[i].join("cell.db")
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for i in 0..self.cells.len() {
            self.stop_cell(i);
        }
    }
}

/// The `keyfrag-server` binary of the build a test runs in (`target/<profile>/`, beside the
/// test executable's `deps/`); tests that run cells as real processes need `cargo build
/// --bins` first, which the test command does.
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("keyfrag-server"))
        .unwrap();
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bins` first",
        bin.display()
    );
    bin
}
