//! PKCS#1 v1.5: CKM_RSA_PKCS (sign a caller-built DigestInfo, encrypt/decrypt) and
//! CKM_SHA*_RSA_PKCS (hash and sign). Decryption uses implicit rejection: a bad padding
//! yields a synthetic message, never a distinguishable error.

use cryptoki_sys::*;
use keyfrag_core::hash::HashAlg;
use keyfrag_core::padding::pkcs1v15;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::secret::SecretBytes;

use super::params::pkcs_mechanism_hash;
use super::{Cipher, Encoding, Mechanism, Message, SigSpec};
use crate::error::{Result, err};

struct Pkcs1Encoding {
    hash: Option<HashAlg>,
}

impl Pkcs1Encoding {
    /// T: the DigestInfo of the hash, or the caller's raw input (at most k − 11 bytes).
    fn t(&self, key: &RsaPublic, msg: &[u8]) -> Result<Vec<u8>> {
        let t = match self.hash {
            Some(h) => h.digest_info(msg),
            None => msg.to_vec(),
        };
        if t.len() + 11 > key.size() {
            return Err(err(CKR_DATA_LEN_RANGE));
        }
        Ok(t)
    }
}

impl Encoding for Pkcs1Encoding {
    fn encode(&self, key: &RsaPublic, msg: &[u8]) -> Result<Vec<u8>> {
        let t = self.t(key, msg)?;
        pkcs1v15::sign_pad(&t, key.size()).map_err(|_| err(CKR_DATA_LEN_RANGE))
    }
    fn check(&self, key: &RsaPublic, msg: &[u8], em: &[u8]) -> Result<bool> {
        let t = self.t(key, msg)?;
        Ok(pkcs1v15::verify_pad(&t, em, key.size()))
    }
}

pub fn signature(m: &Mechanism) -> Result<SigSpec> {
    let hash = pkcs_mechanism_hash(m.ty);
    Ok(SigSpec {
        message: match hash {
            Some(h) => Message::hashed(h),
            None => Message::raw(),
        },
        multipart: hash.is_some(),
        encoding: Box::new(Pkcs1Encoding { hash }),
    })
}

struct Pkcs1Cipher;

impl Cipher for Pkcs1Cipher {
    fn pad(&self, key: &RsaPublic, data: &[u8]) -> Result<Vec<u8>> {
        if data.len() + 11 > key.size() {
            return Err(err(CKR_DATA_LEN_RANGE));
        }
        pkcs1v15::encrypt_pad(data, key.size()).map_err(|_| err(CKR_DATA_LEN_RANGE))
    }
    fn unpad(&self, key: &RsaPublic, em: &SecretBytes) -> Result<SecretBytes> {
        Ok(pkcs1v15::decrypt_unpad_implicit(em.expose(), key.size()))
    }
}

pub fn cipher(_m: &Mechanism) -> Result<Box<dyn Cipher>> {
    Ok(Box::new(Pkcs1Cipher))
}
