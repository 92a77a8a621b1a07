//! RSAES-OAEP (CKM_RSA_PKCS_OAEP) with CK_RSA_PKCS_OAEP_PARAMS: any SHA-1/SHA-2 hash, MGF1
//! with any SHA, optional label. Every decoding failure is CKR_ENCRYPTED_DATA_INVALID.

use cryptoki_sys::*;
use keyfrag_core::padding::oaep;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::secret::SecretBytes;

use super::params::OaepParams;
use super::{Cipher, Mechanism, Params};
use crate::error::{Result, err};

struct OaepCipher {
    p: OaepParams,
}

impl Cipher for OaepCipher {
    fn pad(&self, key: &RsaPublic, data: &[u8]) -> Result<Vec<u8>> {
        let k = key.size();
        if data.len() + 2 * self.p.hash.output_len() + 2 > k {
            return Err(err(CKR_DATA_LEN_RANGE));
        }
        oaep::encode(data, k, self.p.hash, self.p.mgf_hash, &self.p.label)
            .map_err(|_| err(CKR_DATA_LEN_RANGE))
    }
    fn unpad(&self, key: &RsaPublic, em: &SecretBytes) -> Result<SecretBytes> {
        oaep::decode(
            em.expose(),
            key.size(),
            self.p.hash,
            self.p.mgf_hash,
            &self.p.label,
        )
        .map_err(|_| err(CKR_ENCRYPTED_DATA_INVALID))
    }
}

pub fn cipher(m: &Mechanism) -> Result<Box<dyn Cipher>> {
    match &m.params {
        Params::Oaep(p) => Ok(Box::new(OaepCipher { p: p.clone() })),
        _ => Err(err(CKR_MECHANISM_PARAM_INVALID)),
    }
}
