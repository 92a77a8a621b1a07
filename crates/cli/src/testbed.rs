//! In-process clusters for tests: n cells on 127.0.0.1 ports chosen by the OS, TLS certs and
//! access keys generated under a temp dir, and a `keyfrag.toml` for the module.

use std::path::PathBuf;

/// A running in-process cluster. Dropping it shuts the cells down.
pub struct Testbed {
    /// `keyfrag.toml` naming one token over all cells: pass as `config=PATH` in C_Initialize.
    pub config_path: PathBuf,
    /// Temporary directory holding every cell's state; removed on drop.
    pub dir: tempfile::TempDir,
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
    /// Start a cluster (blocking; runs cells on a background runtime).
    pub fn start(options: TestbedOptions) -> Testbed {
        let _ = options;
        todo!()
    }
    /// Stop cell `i` (graceful) — operations then fail with CKR_DEVICE_ERROR.
    pub fn stop_cell(&mut self, i: usize) {
        let _ = i;
        todo!()
    }
    /// Restart cell `i` on the same address with the same store.
    pub fn start_cell(&mut self, i: usize) {
        let _ = i;
        todo!()
    }
    /// Path of cell `i`'s SQLite database.
    pub fn cell_database(&self, i: usize) -> PathBuf {
        let _ = i;
        todo!()
    }
}
