//! What the symmetric mechanisms share: the operation trait the encrypt/decrypt functions
//! drive, the PRF the key material lives behind, and the dispatch from a key length to an AES
//! variant.
//!
//! The mode code (aes_gcm, aes_cbc_pad, aes_ctr, aes_kw, hmac) takes a data key as bytes and
//! never knows where it came from, so the known-answer tests run exactly the code that runs
//! for a key derived from the cells' PRF (`crate::data_key`).

use zeroize::Zeroizing;

use crate::error::Result;

/// Output bytes that may be plaintext: zeroized when dropped.
pub type Bytes = Zeroizing<Vec<u8>>;

/// A symmetric encryption or decryption in progress, with its data key inside.
pub trait SymCipher: Send {
    /// The output of one C_*Update (may be empty: GCM and the per-message mechanism buffer
    /// until the end, CBC holds back a partial block).
    fn update(&mut self, data: &[u8]) -> Result<Bytes>;
    /// The rest of the output, at C_*Final (or the end of a single-part call).
    fn finish(&mut self) -> Result<Bytes>;
}

/// The key's distributed PRF (2HashDH on the cells): F_k(input), the 64-byte RFC 9497
/// Finalize output. The per-message mechanism evaluates it once per message.
pub trait Prf: Send {
    fn evaluate(&self, input: &[u8]) -> Result<Zeroizing<[u8; 64]>>;
}

/// Run `$body` with `$T` the AES variant for a key of `$len` bytes (CKR_KEY_SIZE_RANGE
/// otherwise).
macro_rules! with_aes {
    ($len:expr, $T:ident => $body:expr) => {
        match $len {
            16 => {
                type $T = aes::Aes128;
                $body
            }
            24 => {
                type $T = aes::Aes192;
                $body
            }
            32 => {
                type $T = aes::Aes256;
                $body
            }
            _ => {
                tracing::debug!("AES data key of an unsupported length");
                Err($crate::error::err(cryptoki_sys::CKR_KEY_SIZE_RANGE))
            }
        }
    };
}
pub(crate) use with_aes;

/// Test support: decode a hex vector.
#[cfg(test)]
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("test vector hex")
}
