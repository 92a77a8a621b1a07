//! Shares at rest: ChaCha20-Poly1305 under the cell's master key, which lives in a file outside
//! the database. A stolen database alone therefore reveals no share.
//!
//! The AAD binds a sealed share to its row (token id ‖ key uid ‖ epoch ‖ format version, and
//! from format 2 the master key id), so a ciphertext copied to another key, token or epoch
//! fails to open instead of being used.
//!
//! Master-key rotation (rotation.rs) keeps several keys at once: `master.key` (current),
//! `master.key.next` (a rotation in progress: it seals, and is current until the rotation
//! commits) and `master.key.retired-<id>` (keys a rotation replaced, kept only for reading
//! old rows and backups until the operator moves them away). Every key in those files opens
//! the rows sealed under it, so a crash at any point of a rotation leaves every share readable.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use keyfrag_core::rsa_share::RsaShare;
use keyfrag_core::secret::SecretBytes;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::ServerError;

/// Format 1: nonce (12) ‖ ChaCha20-Poly1305(sign byte ‖ magnitude). Still read.
pub const SHARE_FORMAT_V1: u32 = 1;
/// Format 2: master key id (8) ‖ nonce (12) ‖ ChaCha20-Poly1305(sign byte ‖ magnitude).
pub const SHARE_FORMAT_V2: u32 = 2;
/// What `seal_share` writes.
pub const SHARE_FORMAT: u32 = SHARE_FORMAT_V2;
const NONCE_LEN: usize = 12;
pub const KEY_ID_LEN: usize = 8;
const KEY_ID_DOMAIN: &[u8] = b"keyfrag master key id v1";

struct Entry {
    id: [u8; KEY_ID_LEN],
    key: Zeroizing<[u8; 32]>,
}

/// The cell's master keys, the current (sealing) one first. Clones share the ring, so a
/// rotation is seen by every holder at once. Zeroized on drop; Debug prints `[redacted]`.
#[derive(Clone)]
pub struct MasterKey {
    ring: Arc<RwLock<Vec<Entry>>>,
    /// `master_key_file`; None for a key given as bytes (tests), which cannot rotate.
    file: Option<PathBuf>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// Public name of a master key (not secret): rows and backups carry it.
pub fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    let mut h = Sha256::new();
    h.update(KEY_ID_DOMAIN);
    h.update(key);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&h.finalize()[..KEY_ID_LEN]);
    id
}

/// `master.key` → `master.key.<suffix>`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

fn read_key(path: &Path) -> Result<Zeroizing<[u8; 32]>, ServerError> {
    check_private(path, "master key")?;
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| ServerError::file(path, format!("cannot read master key: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    let parsed = hex::decode_to_slice(text.trim(), key.as_mut());
    text.zeroize();
    parsed
        .map_err(|_| ServerError::file(path, "master key file must hold exactly 64 hex digits"))?;
    Ok(key)
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let key = Zeroizing::new(bytes);
        MasterKey {
            ring: Arc::new(RwLock::new(vec![Entry {
                id: key_id(&key),
                key,
            }])),
            file: None,
        }
    }

    /// Read the key file (64 hex digits, refusing a file other users could read) and those of
    /// a rotation beside it: `.next` is current while it exists, retired keys only open.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let next = sibling(path, "next");
        let mut files = Vec::new();
        if next.exists() {
            files.push(next);
        }
        // A rotation that renamed the old key away but not yet the new one into place has no
        // `master.key`; `.next` then holds the current key.
        if path.exists() || files.is_empty() {
            files.push(path.to_path_buf());
        }
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            let prefix = format!("{}.retired-", name.to_string_lossy());
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            let mut retired: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| ServerError::file(dir, format!("cannot list: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                })
                .collect();
            retired.sort();
            files.extend(retired);
        }
        let mut ring: Vec<Entry> = Vec::new();
        for f in files {
            let key = read_key(&f)?;
            let id = key_id(&key);
            if !ring.iter().any(|e| e.id == id) {
                ring.push(Entry { id, key });
            }
        }
        Ok(MasterKey {
            ring: Arc::new(RwLock::new(ring)),
            file: Some(path.to_path_buf()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Entry>> {
        self.ring.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The current key's id, hex.
    pub fn current_id(&self) -> String {
        hex::encode(self.read()[0].id)
    }

    /// Lend the current key bytes to a key derivation (the backup key), never out of scope.
    pub(crate) fn with_bytes<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        f(self.read()[0].key.as_ref())
    }

    /// Lend every key of the ring (current first, then retired ones) to a key derivation: a
    /// restore looks for the backup key of the master key a snapshot was taken under.
    pub(crate) fn each_bytes(&self, mut f: impl FnMut(&[u8])) {
        for entry in self.read().iter() {
            f(entry.key.as_ref());
        }
    }

    /// Start (or resume) a rotation: the key in `.next`, created if missing, becomes the
    /// current one (new rows are sealed under it) while every older key still opens.
    pub fn begin_rotation(&self) -> Result<[u8; KEY_ID_LEN], String> {
        let file = self
            .file
            .as_ref()
            .ok_or("this master key has no file to rotate")?;
        let next = sibling(file, "next");
        if !next.exists() {
            let mut fresh = Zeroizing::new([0u8; 32]);
            getrandom::fill(fresh.as_mut()).map_err(|e| format!("randomness: {e}"))?;
            write_new_secret(&next, &Zeroizing::new(hex::encode(*fresh)))?;
        }
        let key = read_key(&next).map_err(|e| e.to_string())?;
        let id = key_id(&key);
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        ring.retain(|e| e.id != id);
        ring.insert(0, Entry { id, key });
        Ok(id)
    }

    /// Commit a rotation once no row is sealed under an older key: the old `master.key` is
    /// renamed `master.key.retired-<id>`, then `.next` becomes `master.key`.
    pub fn finish_rotation(&self) -> Result<(), String> {
        let file = self
            .file
            .as_ref()
            .ok_or("this master key has no file to rotate")?;
        let next = sibling(file, "next");
        if !next.exists() {
            return Ok(());
        }
        if file.exists() {
            let old = read_key(file).map_err(|e| e.to_string())?;
            let retired = sibling(file, &format!("retired-{}", hex::encode(key_id(&old))));
            std::fs::rename(file, &retired)
                .map_err(|e| format!("cannot rename {}: {e}", file.display()))?;
        }
        std::fs::rename(&next, file)
            .map_err(|e| format!("cannot rename {}: {e}", next.display()))?;
        if let Some(dir) = file.parent()
            && let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Seal a share for the row (token, uid, epoch) in the current format, under the current
    /// key.
    pub fn seal_share(
        &self,
        token: &str,
        uid: &str,
        epoch: u64,
        share: &RsaShare,
    ) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| format!("randomness: {e}"))?;
        let mut plain = Zeroizing::new(Vec::with_capacity(1 + share.magnitude.len()));
        plain.push(u8::from(share.negative));
        plain.extend_from_slice(share.magnitude.expose());
        let ring = self.read();
        let current = &ring[0];
        let mut aad = aad(token, uid, epoch, SHARE_FORMAT_V2);
        aad.extend_from_slice(&current.id);
        let ct = cipher(&current.key)
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| "sealing failed".to_string())?;
        let mut out = current.id.to_vec();
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Open a sealed share. Fails if the ciphertext, its row binding or the master key differ.
    pub fn open_share(
        &self,
        token: &str,
        uid: &str,
        epoch: u64,
        format: u32,
        sealed: &[u8],
    ) -> Result<RsaShare, String> {
        let ring = self.read();
        let plain = match format {
            SHARE_FORMAT_V1 => {
                let (nonce, ct) = split_nonce(sealed)?;
                let aad = aad(token, uid, epoch, format);
                // Format 1 names no key: the one that authenticates it is the one.
                ring.iter()
                    .find_map(|e| open(&e.key, nonce, ct, &aad).ok())
                    .ok_or("sealed share failed authentication (wrong master key?)")?
            }
            SHARE_FORMAT_V2 => {
                if sealed.len() < KEY_ID_LEN {
                    return Err("sealed share too short".into());
                }
                let (id, rest) = sealed.split_at(KEY_ID_LEN);
                let entry = ring.iter().find(|e| e.id == id).ok_or_else(|| {
                    format!(
                        "share sealed under master key {} which this cell does not hold",
                        hex::encode(id)
                    )
                })?;
                let (nonce, ct) = split_nonce(rest)?;
                let mut aad = aad(token, uid, epoch, format);
                aad.extend_from_slice(id);
                open(&entry.key, nonce, ct, &aad)?
            }
            _ => return Err(format!("unsupported share format {format}")),
        };
        let negative = match plain[0] {
            0 => false,
            1 => true,
            _ => return Err("sealed share has a bad sign byte".into()),
        };
        Ok(RsaShare {
            negative,
            magnitude: SecretBytes::new(plain[1..].to_vec()),
        })
    }
}

fn cipher(key: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(&Key::from(*key))
}

fn split_nonce(sealed: &[u8]) -> Result<(&[u8], &[u8]), String> {
    if sealed.len() < NONCE_LEN + 16 + 1 {
        return Err("sealed share too short".into());
    }
    Ok(sealed.split_at(NONCE_LEN))
}

fn open(key: &[u8; 32], nonce: &[u8], ct: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let plain = cipher(key)
        .decrypt(
            &Nonce::try_from(nonce).map_err(|_| "bad nonce".to_string())?,
            Payload { msg: ct, aad },
        )
        .map_err(|_| "sealed share failed authentication (wrong master key?)")?;
    if plain.is_empty() {
        return Err("sealed share is empty".into());
    }
    Ok(Zeroizing::new(plain))
}

/// Create `path` (0600) with `text`, failing if it exists (temporary file, then a hard link).
fn write_new_secret(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = sibling(path, &format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked.map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// Length-prefixed so that no two (token, uid) pairs encode alike.
fn aad(token: &str, uid: &str, epoch: u64, format: u32) -> Vec<u8> {
    let mut a = Vec::with_capacity(64 + token.len());
    a.extend_from_slice(b"keyfrag-share");
    for part in [token.as_bytes(), uid.as_bytes()] {
        a.extend_from_slice(&(part.len() as u64).to_be_bytes());
        a.extend_from_slice(part);
    }
    a.extend_from_slice(&epoch.to_be_bytes());
    a.extend_from_slice(&format.to_be_bytes());
    a
}

/// Refuses a secret file (`what`: "master key", "relay seed") other users could read.
#[cfg(unix)]
pub(crate) fn check_private(path: &Path, what: &str) -> Result<(), ServerError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| ServerError::file(path, format!("cannot read {what}: {e}")))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(ServerError::file(
            path,
            format!(
                "{what} file is accessible by group or others (mode {:o}); \
                 run `chmod 600` on it",
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_private(_path: &Path, _what: &str) -> Result<(), ServerError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share() -> RsaShare {
        RsaShare {
            negative: true,
            magnitude: SecretBytes::new(vec![7u8; 40]),
        }
    }

    /// A share sealed as releases before key ids did (format 1), under `key`.
    fn format_1(key: &[u8; 32], token: &str, uid: &str, epoch: u64, share: &RsaShare) -> Vec<u8> {
        let nonce = [9u8; NONCE_LEN];
        let mut plain = vec![u8::from(share.negative)];
        plain.extend_from_slice(share.magnitude.expose());
        let ct = cipher(key)
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: &aad(token, uid, epoch, SHARE_FORMAT_V1),
                },
            )
            .unwrap();
        [nonce.to_vec(), ct].concat()
    }

    #[test]
    fn format_1_shares_still_open_under_any_key_of_the_ring() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        std::fs::write(&file, hex::encode([3u8; 32])).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let k = MasterKey::load(&file).unwrap();
        let old = format_1(&[3u8; 32], "t", "u", 4, &share());
        assert_eq!(k.open_share("t", "u", 4, 1, &old).unwrap(), share());
        assert!(k.open_share("t", "u", 5, 1, &old).is_err());
        // Mid-rotation the new key seals; the format-1 row still opens.
        let id = k.begin_rotation().unwrap();
        assert_eq!(k.current_id(), hex::encode(id));
        assert_eq!(k.open_share("t", "u", 4, 1, &old).unwrap(), share());
        let sealed = k.seal_share("t", "u", 4, &share()).unwrap();
        assert_eq!(&sealed[..KEY_ID_LEN], &id);
        let reloaded = MasterKey::load(&file).unwrap();
        assert_eq!(reloaded.current_id(), hex::encode(id));
        assert_eq!(reloaded.open_share("t", "u", 4, 1, &old).unwrap(), share());
        assert_eq!(
            reloaded.open_share("t", "u", 4, 2, &sealed).unwrap(),
            share()
        );
        k.finish_rotation().unwrap();
        let after = MasterKey::load(&file).unwrap();
        assert_eq!(after.current_id(), hex::encode(id));
        assert_eq!(
            after.open_share("t", "u", 4, 1, &old).unwrap(),
            share(),
            "retired key"
        );
    }

    #[test]
    fn round_trip_and_binding() {
        let k = MasterKey::from_bytes([1u8; 32]);
        let sealed = k.seal_share("t", "u", 1, &share()).unwrap();
        assert_eq!(k.open_share("t", "u", 1, 2, &sealed).unwrap(), share());
        assert!(k.open_share("t", "v", 1, 2, &sealed).is_err());
        assert!(k.open_share("t2", "u", 1, 2, &sealed).is_err());
        assert!(k.open_share("t", "u", 2, 2, &sealed).is_err());
        assert!(k.open_share("t", "u", 1, 1, &sealed).is_err());
        let other = MasterKey::from_bytes([2u8; 32]);
        let e = other.open_share("t", "u", 1, 2, &sealed).unwrap_err();
        assert!(e.contains("does not hold"), "{e}");
        assert_eq!(format!("{k:?}"), "MasterKey([redacted])");
    }
}
