//! Shares at rest: ChaCha20-Poly1305 under the cell's master key, which lives in a file outside
//! the database. A stolen database alone therefore reveals no share.
//!
//! The AAD binds a sealed share to its row (token id ‖ key uid ‖ epoch ‖ format version), so a
//! ciphertext copied to another key, token or epoch fails to open instead of being used.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use keyfrag_core::rsa_share::RsaShare;
use keyfrag_core::secret::SecretBytes;
use zeroize::{Zeroize, Zeroizing};

use crate::error::ServerError;

/// Format of a sealed share: nonce (12) ‖ ChaCha20-Poly1305(sign byte ‖ magnitude).
pub const SHARE_FORMAT_V1: u32 = 1;
const NONCE_LEN: usize = 12;

/// The 32-byte master key. Zeroized on drop; Debug prints `[redacted]`.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(Zeroizing::new(bytes))
    }

    /// Read 64 hex digits from `path`, refusing a file other users could read.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        check_private(path, "master key")?;
        let mut text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::file(path, format!("cannot read master key: {e}")))?;
        let mut key = [0u8; 32];
        let parsed = hex::decode_to_slice(text.trim(), &mut key);
        text.zeroize();
        parsed.map_err(|_| {
            ServerError::file(path, "master key file must hold exactly 64 hex digits")
        })?;
        let key = MasterKey::from_bytes(key);
        Ok(key)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(*self.0))
    }

    /// Lend the key bytes to a key derivation (the backup key), never out of this scope.
    pub(crate) fn with_bytes<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        f(self.0.as_ref())
    }

    /// Seal a share for the row (token, uid, epoch) in the current format.
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
        let aad = aad(token, uid, epoch, SHARE_FORMAT_V1);
        let ct = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| "sealing failed".to_string())?;
        let mut out = nonce.to_vec();
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
        if format != SHARE_FORMAT_V1 {
            return Err(format!("unsupported share format {format}"));
        }
        if sealed.len() < NONCE_LEN + 16 + 1 {
            return Err("sealed share too short".into());
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let aad = aad(token, uid, epoch, format);
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    &Nonce::try_from(nonce).map_err(|_| "bad nonce".to_string())?,
                    Payload { msg: ct, aad: &aad },
                )
                .map_err(|_| "sealed share failed authentication (wrong master key?)")?,
        );
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

    #[test]
    fn round_trip_and_binding() {
        let k = MasterKey::from_bytes([1u8; 32]);
        let sealed = k.seal_share("t", "u", 1, &share()).unwrap();
        assert_eq!(k.open_share("t", "u", 1, 1, &sealed).unwrap(), share());
        assert!(k.open_share("t", "v", 1, 1, &sealed).is_err());
        assert!(k.open_share("t2", "u", 1, 1, &sealed).is_err());
        assert!(k.open_share("t", "u", 2, 1, &sealed).is_err());
        assert!(k.open_share("t", "u", 1, 2, &sealed).is_err());
        let other = MasterKey::from_bytes([2u8; 32]);
        assert!(other.open_share("t", "u", 1, 1, &sealed).is_err());
        assert_eq!(format!("{k:?}"), "MasterKey([redacted])");
    }
}
