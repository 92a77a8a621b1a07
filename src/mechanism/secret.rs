//! Symmetric mechanisms on PRF-backed secret keys: which key type each mechanism takes, the
//! sizes C_GetMechanismInfo reports, and building an operation from the parsed mechanism and
//! the key's data key (or, for the per-message mechanism, its PRF).

use cryptoki_sys::*;

use super::aes_kw::{self, Kw};
use super::params::{Mechanism, Params};
use super::sym::{Bytes, Prf, SymCipher};
use super::{aes_cbc_pad, aes_ctr, aes_gcm, hmac, msg_key};
use crate::error::{Result, err};

/// Vendor mechanism (include/keyfrag.h): AES-256-GCM under a per-message key derived from the
/// key's PRF and a random salt; self-describing output (`msg_key.rs`).
pub const CKM_KEYFRAG_AES_GCM_MSG: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | 0x4B46_0001;

/// AES keys: CKA_VALUE_LEN in bytes.
pub const AES_LENS: [usize; 3] = [16, 24, 32];
/// HMAC (generic secret) keys: CKA_VALUE_LEN in bytes.
pub const HMAC_MIN: usize = 16;
pub const HMAC_MAX: usize = 64;

/// The key type a symmetric mechanism works with (None: not a secret-key mechanism).
pub fn key_type(mech: CK_MECHANISM_TYPE) -> Option<CK_KEY_TYPE> {
    match mech {
        CKM_AES_KEY_GEN
        | CKM_AES_GCM
        | CKM_AES_CBC_PAD
        | CKM_AES_CTR
        | CKM_AES_KEY_WRAP
        | CKM_AES_KEY_WRAP_PAD
        | CKM_KEYFRAG_AES_GCM_MSG => Some(CKK_AES),
        CKM_GENERIC_SECRET_KEY_GEN | CKM_SHA256_HMAC | CKM_SHA384_HMAC | CKM_SHA512_HMAC => {
            Some(CKK_GENERIC_SECRET)
        }
        _ => None,
    }
}

/// Whether a CKA_VALUE_LEN is allowed for a key type.
pub fn valid_len(key_type: CK_KEY_TYPE, len: usize) -> bool {
    match key_type {
        CKK_AES => AES_LENS.contains(&len),
        CKK_GENERIC_SECRET => (HMAC_MIN..=HMAC_MAX).contains(&len),
        _ => false,
    }
}

/// C_GetMechanismInfo's key sizes: bytes for the AES and HMAC mechanisms, bits for
/// CKM_GENERIC_SECRET_KEY_GEN (as the specification defines each).
pub fn key_sizes(mech: CK_MECHANISM_TYPE) -> Option<(usize, usize)> {
    match (mech, key_type(mech)?) {
        (CKM_GENERIC_SECRET_KEY_GEN, _) => Some((HMAC_MIN * 8, HMAC_MAX * 8)),
        (CKM_KEYFRAG_AES_GCM_MSG, _) => Some((16, 32)),
        (_, CKK_AES) => Some((16, 32)),
        _ => Some((HMAC_MIN, HMAC_MAX)),
    }
}

/// Whether the mechanism uses the key's standard data key (all but the per-message one).
pub fn uses_data_key(mech: CK_MECHANISM_TYPE) -> bool {
    mech != CKM_KEYFRAG_AES_GCM_MSG
}

fn params_invalid() -> crate::error::CkError {
    err(CKR_MECHANISM_PARAM_INVALID)
}

/// An encryption (`encrypt`) or decryption with a standard mechanism under `key`.
pub fn cipher(m: &Mechanism, key: Bytes, encrypt: bool) -> Result<Box<dyn SymCipher>> {
    match (m.ty, &m.params) {
        (CKM_AES_GCM, Params::Gcm(p)) if encrypt => aes_gcm::encryptor(key, p.clone()),
        (CKM_AES_GCM, Params::Gcm(p)) => aes_gcm::decryptor(key, p.clone()),
        (CKM_AES_CBC_PAD, Params::Iv(iv)) if encrypt => aes_cbc_pad::encryptor(&key, iv),
        (CKM_AES_CBC_PAD, Params::Iv(iv)) => aes_cbc_pad::decryptor(&key, iv),
        (CKM_AES_CTR, Params::Ctr { bits, cb }) => aes_ctr::cipher(&key, *bits, cb),
        (CKM_AES_KEY_WRAP, _) => aes_kw::cipher(key, Kw::Plain, encrypt),
        (CKM_AES_KEY_WRAP_PAD, _) => aes_kw::cipher(key, Kw::Pad, encrypt),
        (CKM_AES_GCM | CKM_AES_CBC_PAD | CKM_AES_CTR, _) => Err(params_invalid()),
        _ => Err(err(CKR_MECHANISM_INVALID)),
    }
}

/// The per-message mechanism with the key's PRF.
pub fn msg_cipher(prf: Box<dyn Prf>, uid: [u8; 16], encrypt: bool) -> Box<dyn SymCipher> {
    if encrypt {
        msg_key::encryptor(prf, uid)
    } else {
        msg_key::decryptor(prf, uid)
    }
}

/// An HMAC sign or verify operation under `key`.
pub fn mac(m: &Mechanism, key: &Bytes) -> Result<hmac::HmacOp> {
    hmac::HmacOp::new(m.ty, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_and_sizes() {
        assert_eq!(key_type(CKM_AES_GCM), Some(CKK_AES));
        assert_eq!(key_type(CKM_SHA384_HMAC), Some(CKK_GENERIC_SECRET));
        assert_eq!(key_type(CKM_RSA_PKCS), None);
        assert_eq!(key_sizes(CKM_AES_CBC_PAD), Some((16, 32)));
        assert_eq!(key_sizes(CKM_GENERIC_SECRET_KEY_GEN), Some((128, 512)));
        assert_eq!(key_sizes(CKM_SHA256_HMAC), Some((16, 64)));
        assert!(valid_len(CKK_AES, 24) && !valid_len(CKK_AES, 20));
        assert!(valid_len(CKK_GENERIC_SECRET, 48) && !valid_len(CKK_GENERIC_SECRET, 8));
        assert!(!uses_data_key(CKM_KEYFRAG_AES_GCM_MSG));
        let m = Mechanism {
            ty: CKM_AES_GCM,
            params: Params::None,
        };
        let key = Bytes::new(vec![0; 16]);
        assert_eq!(
            cipher(&m, key.clone(), true).err().unwrap().rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
        let m = Mechanism {
            ty: CKM_RSA_PKCS,
            params: Params::None,
        };
        assert_eq!(
            cipher(&m, key, true).err().unwrap().rv(),
            CKR_MECHANISM_INVALID
        );
    }
}
