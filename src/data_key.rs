//! Data keys of PRF-backed secret keys (issue 9, CRYPTO-NOTES §3).
//!
//! A CKO_SECRET_KEY object's material is a PRF key k = Σ kᵢ that exists only as shares on the
//! cells. The standard mechanisms (AES-GCM/CBC/CTR/KW, HMAC) need one fixed key of the
//! object's CKA_VALUE_LEN, its *data key*:
//!
//!   x  = label ‖ key uid (16 bytes) ‖ CKA_VALUE_LEN (2 bytes, big-endian)
//!   y  = F_k(x)                               (64 bytes, 2HashDH on the cells, RFC 9497)
//!   DK = HKDF-SHA256(salt = label, IKM = y, info = "keyfrag data key" ‖ x, L = CKA_VALUE_LEN)
//!
//! with label "keyfrag/aes/v1" for CKK_AES and "keyfrag/hmac/v1" for CKK_GENERIC_SECRET. The
//! root k never exists; DK exists in this module for one operation (or, when the token sets
//! `data_key_cache_secs`, for that long in `DataKeyCache`), and is the same across refreshes
//! of the cells' shares because F is. The per-message mechanism (`mechanism::msg_key`)
//! derives a fresh key per message instead and never uses the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cryptoki_sys::*;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Result, err};
use crate::mechanism::sym::{Bytes, Prf};
use crate::state::lock;

pub const AES_LABEL: &[u8] = b"keyfrag/aes/v1";
pub const HMAC_LABEL: &[u8] = b"keyfrag/hmac/v1";
const INFO: &[u8] = b"keyfrag data key";

/// The 16 bytes of a key uid (32 hex digits).
pub fn uid_bytes(uid: &str) -> Result<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(uid, &mut out).map_err(|_| {
        tracing::error!("a secret key references a malformed key uid");
        err(CKR_GENERAL_ERROR)
    })?;
    Ok(out)
}

/// The label of a key type's data keys.
pub fn label(key_type: CK_KEY_TYPE) -> Result<&'static [u8]> {
    match key_type {
        CKK_AES => Ok(AES_LABEL),
        CKK_GENERIC_SECRET => Ok(HMAC_LABEL),
        _ => Err(err(CKR_KEY_TYPE_INCONSISTENT)),
    }
}

/// The PRF input x of a standard data key.
pub fn prf_input(label: &[u8], uid: &[u8; 16], len: usize) -> Vec<u8> {
    let mut x = Vec::with_capacity(label.len() + 18);
    x.extend_from_slice(label);
    x.extend_from_slice(uid);
    x.extend_from_slice(&(len as u16).to_be_bytes());
    x
}

/// HKDF from the PRF output to the data key.
pub fn from_prf_output(label: &[u8], x: &[u8], y: &[u8; 64], len: usize) -> Result<Bytes> {
    let mut info = INFO.to_vec();
    info.extend_from_slice(x);
    let mut dk = Zeroizing::new(vec![0u8; len]);
    Hkdf::<Sha256>::new(Some(label), y)
        .expand(&info, &mut dk)
        .map_err(|_| err(CKR_KEY_SIZE_RANGE))?;
    Ok(dk)
}

/// The standard data key of a key of `key_type` and `len` bytes whose PRF is `prf`.
pub fn derive(prf: &dyn Prf, key_type: CK_KEY_TYPE, uid: &str, len: usize) -> Result<Bytes> {
    let label = label(key_type)?;
    let x = prf_input(label, &uid_bytes(uid)?, len);
    let y = prf.evaluate(&x)?;
    from_prf_output(label, &x, &y, len)
}

/// Per-slot cache of standard data keys, keyed by key uid. A TTL of zero disables it.
/// Entries are zeroized when they expire (on the next access), and on clear (C_Logout,
/// C_InitToken, C_Finalize).
pub struct DataKeyCache {
    ttl: Duration,
    keys: Mutex<HashMap<(String, usize), (Bytes, Instant)>>,
}

impl DataKeyCache {
    pub fn new(ttl_secs: u64) -> DataKeyCache {
        DataKeyCache {
            ttl: Duration::from_secs(ttl_secs),
            keys: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// A fresh cached key, dropping (and so zeroizing) every expired one.
    pub fn get(&self, uid: &str, len: usize) -> Option<Bytes> {
        if !self.enabled() {
            return None;
        }
        let mut keys = lock(&self.keys);
        keys.retain(|_, (_, at)| at.elapsed() < self.ttl);
        keys.get(&(uid.to_owned(), len)).map(|(k, _)| k.clone())
    }

    pub fn put(&self, uid: &str, len: usize, key: &Bytes) {
        if self.enabled() {
            lock(&self.keys).insert((uid.to_owned(), len), (key.clone(), Instant::now()));
        }
    }

    /// Forget one key (its object was destroyed).
    pub fn forget(&self, uid: &str) {
        lock(&self.keys).retain(|(u, _), _| u != uid);
    }

    pub fn clear(&self) {
        lock(&self.keys).clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.keys).len()
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha512;

    /// A stand-in PRF for unit tests of the code around the PRF (HMAC-SHA512 under a fixed
    /// key). The real one is the cells' 2HashDH, tested at the ABI level.
    pub struct TestPrf(pub [u8; 32]);

    impl Prf for TestPrf {
        fn evaluate(&self, input: &[u8]) -> Result<Zeroizing<[u8; 64]>> {
            let mut m = <Hmac<Sha512> as KeyInit>::new_from_slice(&self.0).unwrap();
            m.update(input);
            let mut out = Zeroizing::new([0u8; 64]);
            out.copy_from_slice(&m.finalize().into_bytes());
            Ok(out)
        }
    }

    const UID: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn derivation_is_fixed_and_separated() {
        let prf = TestPrf([1; 32]);
        let a = derive(&prf, CKK_AES, UID, 32).unwrap();
        assert_eq!(a, derive(&prf, CKK_AES, UID, 32).unwrap());
        assert_eq!(a.len(), 32);
        // Length, type and uid each give another key (not a prefix of it).
        let a16 = derive(&prf, CKK_AES, UID, 16).unwrap();
        assert_ne!(a16[..], a[..16]);
        assert_ne!(derive(&prf, CKK_GENERIC_SECRET, UID, 32).unwrap(), a);
        let other = "ffeeddccbbaa99887766554433221100";
        assert_ne!(derive(&prf, CKK_AES, other, 32).unwrap(), a);
        assert_eq!(
            prf_input(AES_LABEL, &uid_bytes(UID).unwrap(), 24),
            [AES_LABEL, &uid_bytes(UID).unwrap(), &[0, 24]].concat()
        );
        assert_eq!(
            derive(&prf, CKK_RSA, UID, 32).unwrap_err().rv(),
            CKR_KEY_TYPE_INCONSISTENT
        );
        assert_eq!(uid_bytes("xyz").unwrap_err().rv(), CKR_GENERAL_ERROR);
    }

    #[test]
    fn cache_honours_ttl_and_clear() {
        let off = DataKeyCache::new(0);
        off.put(UID, 32, &Zeroizing::new(vec![1; 32]));
        assert!(off.get(UID, 32).is_none());
        let on = DataKeyCache::new(3600);
        on.put(UID, 32, &Zeroizing::new(vec![1; 32]));
        assert_eq!(on.get(UID, 32).unwrap()[..], [1; 32]);
        assert!(on.get(UID, 16).is_none());
        on.forget(UID);
        assert_eq!(on.len(), 0);
        on.put(UID, 32, &Zeroizing::new(vec![1; 32]));
        on.clear();
        assert!(on.get(UID, 32).is_none());
    }
}
