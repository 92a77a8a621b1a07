//! Raw RSA (CKM_RSA_X_509): offered only where the token's policy allows it (it is a
//! decryption oracle). Input is left-padded with zeros to k bytes.

use cryptoki_sys::*;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::secret::SecretBytes;

use super::{Cipher, Encoding, Mechanism, Message, SigSpec, left_pad};
use crate::error::{Result, err};

struct Raw;

impl Encoding for Raw {
    fn encode(&self, key: &RsaPublic, msg: &[u8]) -> Result<Vec<u8>> {
        left_pad(msg, key.size())
    }
    fn check(&self, key: &RsaPublic, msg: &[u8], em: &[u8]) -> Result<bool> {
        Ok(left_pad(msg, key.size())? == em)
    }
}

impl Cipher for Raw {
    fn pad(&self, key: &RsaPublic, data: &[u8]) -> Result<Vec<u8>> {
        let em = left_pad(data, key.size())?;
        if key.raw_public(&em).is_err() {
            return Err(err(CKR_DATA_INVALID));
        }
        Ok(em)
    }
    fn unpad(&self, _key: &RsaPublic, em: &SecretBytes) -> Result<SecretBytes> {
        Ok(em.clone())
    }
}

pub fn signature(_m: &Mechanism) -> Result<SigSpec> {
    Ok(SigSpec {
        message: Message::raw(),
        multipart: false,
        encoding: Box::new(Raw),
    })
}

pub fn cipher(_m: &Mechanism) -> Result<Box<dyn Cipher>> {
    Ok(Box::new(Raw))
}
