//! A cell's backup snapshots: the whole store, sealed under the cell's backup key.
//!
//! The backup key derives from the master key (HKDF-SHA256, its own salt), so restoring a
//! snapshot needs exactly what its shares need anyway — the master key that was in use when
//! it was taken — and the operator escrows one secret per cell, not two. Its `key_id` (a hash
//! of the key, not secret) travels in the header, so a snapshot meets "another master key"
//! instead of "corrupted".
//!
//! File: `MAGIC ‖ u32 BE header length ‖ header (JSON) ‖ nonce (12) ‖ ChaCha20-Poly1305(db)`,
//! the AAD being everything before the nonce: the header is readable (backup id, cell,
//! identity, epochs) and cannot be altered without the seal failing.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use keyfrag_proto::backup::SnapshotHeader;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::sealing::MasterKey;

pub const MAGIC: &[u8; 8] = b"KFSNAP1\n";
pub const SNAPSHOT_FORMAT: u32 = 1;
const NONCE_LEN: usize = 12;
const BACKUP_KEY_SALT: &[u8] = b"keyfrag backup key v1";
const KEY_ID_DOMAIN: &[u8] = b"keyfrag backup key id v1";
/// Headers are small (one epoch per key); bound what a parser reads.
const MAX_HEADER: usize = 64 << 20;

/// The cell's backup key. Zeroized on drop; Debug prints nothing of it.
pub struct BackupKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey([redacted])")
    }
}

impl BackupKey {
    /// The backup key of the current master key (new snapshots are sealed under it).
    pub fn derive(master: &MasterKey) -> Self {
        master.with_bytes(Self::from_ikm)
    }

    fn from_ikm(ikm: &[u8]) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(BACKUP_KEY_SALT), ikm)
            .expand(b"snapshot", key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        BackupKey(key)
    }

    /// The backup keys of every master key the cell holds (current first, then retired).
    pub fn derive_all(master: &MasterKey) -> Vec<Self> {
        let mut out = Vec::new();
        master.each_bytes(|ikm| out.push(Self::from_ikm(ikm)));
        out
    }

    /// Public name of the key: which master key a snapshot needs.
    pub fn key_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(KEY_ID_DOMAIN);
        h.update(self.0.as_ref());
        hex::encode(&h.finalize()[..8])
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(*self.0))
    }

    /// Seal the database bytes under `header`.
    pub fn seal(&self, header: &SnapshotHeader, db: &[u8]) -> Result<Vec<u8>, String> {
        let head = serde_json::to_vec(header).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + head.len() + NONCE_LEN + db.len() + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(
            &u32::try_from(head.len())
                .map_err(|e| e.to_string())?
                .to_be_bytes(),
        );
        out.extend_from_slice(&head);
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| format!("randomness: {e}"))?;
        let ct = self
            .cipher()
            .encrypt(&Nonce::from(nonce), Payload { msg: db, aad: &out })
            .map_err(|_| "sealing failed".to_string())?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Open a snapshot sealed by `seal` under this key: the database bytes.
    pub fn open(&self, file: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        let (header_end, _) = split_header(file)?;
        let (aad, rest) = file.split_at(header_end);
        if rest.len() < NONCE_LEN + 16 {
            return Err("snapshot truncated".into());
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| "snapshot truncated")?;
        self.cipher()
            .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| {
                "snapshot does not authenticate: it is corrupted or was altered".to_string()
            })
    }
}

/// The readable header of a snapshot file (not yet authenticated: `BackupKey::open` does that).
pub fn read_header(file: &[u8]) -> Result<SnapshotHeader, String> {
    split_header(file).map(|(_, h)| h)
}

fn split_header(file: &[u8]) -> Result<(usize, SnapshotHeader), String> {
    let rest = file
        .strip_prefix(MAGIC.as_slice())
        .ok_or("not a keyfrag snapshot (bad magic)")?;
    let len_bytes: [u8; 4] = rest
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("snapshot truncated")?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    if len > MAX_HEADER {
        return Err("snapshot header too large".into());
    }
    let head = rest.get(4..4 + len).ok_or("snapshot truncated")?;
    let header: SnapshotHeader =
        serde_json::from_slice(head).map_err(|e| format!("snapshot header unreadable: {e}"))?;
    if header.format != SNAPSHOT_FORMAT {
        return Err(format!(
            "snapshot format {} (this build reads {SNAPSHOT_FORMAT})",
            header.format
        ));
    }
    Ok((MAGIC.len() + 4 + len, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SnapshotHeader {
        SnapshotHeader {
            format: SNAPSHOT_FORMAT,
            backup_id: "ab".repeat(16),
            cell: "cell-a".into(),
            identity_fingerprint: String::new(),
            key_id: String::new(),
            storage_version: 3,
            created_at: 1,
            epochs: Default::default(),
        }
    }

    #[test]
    fn seals_opens_and_refuses_tampering_and_other_keys() {
        let key = BackupKey::derive(&MasterKey::from_bytes([7; 32]));
        let file = key.seal(&header(), b"database bytes").unwrap();
        assert_eq!(read_header(&file).unwrap(), header());
        assert_eq!(key.open(&file).unwrap().as_slice(), b"database bytes");

        let other = BackupKey::derive(&MasterKey::from_bytes([8; 32]));
        assert_ne!(other.key_id(), key.key_id());
        assert!(other.open(&file).is_err());

        // A header edited in place (another cell name, same length) fails the seal.
        let mut edited = file.clone();
        let at = edited.windows(6).position(|w| w == b"cell-a").unwrap();
        edited[at + 5] = b'b';
        assert_eq!(read_header(&edited).unwrap().cell, "cell-b");
        assert!(key.open(&edited).is_err());
        // A flipped ciphertext byte too.
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(key.open(&flipped).is_err());
        assert!(read_header(b"garbage").is_err());
    }
}
