//! Reading and writing the customer-fragment file (format in keyfrag_core::customer::sealed).
//!
//! The file is refused unless only its owner can read it (mode 0600 or stricter), as a master
//! key is on the cells. Writes are atomic: a temporary file beside it (created 0600), fsync,
//! rename over the old one, fsync of the directory — a crash leaves the old file or the new
//! one, never a torn one, and a failed write leaves the old file as it was.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use keyfrag_core::customer::{SealedFragment, UnsealError};

/// Largest file accepted (a real one is about 200 bytes).
const MAX_FILE_BYTES: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum CustomerFileError {
    #[error("customer fragment {0} does not exist")]
    Missing(PathBuf),
    #[error(
        "customer fragment {path} is readable by other users (mode {mode:o}): run chmod 600 on it"
    )]
    Insecure { path: PathBuf, mode: u32 },
    #[error("customer fragment {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("customer fragment {path}: {error}")]
    Format { path: PathBuf, error: UnsealError },
    #[error("customer fragment {0} already exists: refusing to overwrite it")]
    Exists(PathBuf),
}

impl CustomerFileError {
    fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        CustomerFileError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Load and parse, after checking the file's permissions.
pub fn load(path: &Path) -> Result<SealedFragment, CustomerFileError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CustomerFileError::Missing(path.to_path_buf()));
        }
        Err(e) => return Err(CustomerFileError::io(path, e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CustomerFileError::Insecure {
            path: path.to_path_buf(),
            mode,
        });
    }
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return Err(CustomerFileError::Format {
            path: path.to_path_buf(),
            error: UnsealError::Format("not a customer-fragment file"),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| CustomerFileError::io(path, e))?;
    SealedFragment::from_bytes(&bytes).map_err(|error| CustomerFileError::Format {
        path: path.to_path_buf(),
        error,
    })
}

/// Replace (or create) the file atomically.
pub fn store(path: &Path, fragment: &SealedFragment) -> Result<(), CustomerFileError> {
    write_atomic(path, &fragment.to_bytes())
}

/// Create the file; refuses to replace an existing one.
pub fn create(path: &Path, fragment: &SealedFragment) -> Result<(), CustomerFileError> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(CustomerFileError::Exists(path.to_path_buf()));
    }
    write_atomic(path, &fragment.to_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CustomerFileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| CustomerFileError::io(path, "not a file name"))?;
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| CustomerFileError::io(path, e))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        hex::encode(suffix)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(CustomerFileError::io(path, format!("cannot write: {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyfrag_core::customer::{CustomerSeed, KdfParams, RecoverySecret};

    fn fragment() -> SealedFragment {
        SealedFragment::seal(
            &CustomerSeed::generate().unwrap(),
            b"1234",
            &RecoverySecret::generate().unwrap(),
            KdfParams::insecure_for_tests(),
        )
        .unwrap()
    }

    #[test]
    fn create_then_load_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("customer.kf");
        let f = fragment();
        create(&path, &f).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&path).unwrap(), f);
        assert!(matches!(
            create(&path, &fragment()),
            Err(CustomerFileError::Exists(_))
        ));
        // store replaces, and leaves no temporary file behind.
        let g = fragment();
        store(&path, &g).unwrap();
        assert_eq!(load(&path).unwrap(), g);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("customer.kf");
        create(&path, &fragment()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = load(&path).unwrap_err();
        assert!(matches!(
            err,
            CustomerFileError::Insecure { mode: 0o640, .. }
        ));
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn missing_and_garbage_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("customer.kf");
        assert!(matches!(load(&path), Err(CustomerFileError::Missing(_))));
        std::fs::write(&path, b"not a fragment").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load(&path), Err(CustomerFileError::Format { .. })));
    }
}
