//! RSASSA-PSS: CKM_RSA_PKCS_PSS (the input is the message hash) and CKM_SHA*_RSA_PKCS_PSS
//! (hash and sign), with CK_RSA_PKCS_PSS_PARAMS.

use cryptoki_sys::*;
use keyfrag_core::padding::pss;
use keyfrag_core::rsa_public::RsaPublic;

use super::params::{PssParams, pss_mechanism_hash};
use super::{Encoding, Mechanism, Message, Params, SigSpec};
use crate::error::{Result, err};

struct PssEncoding {
    p: PssParams,
}

impl PssEncoding {
    fn check_hash_len(&self, m_hash: &[u8]) -> Result<()> {
        if m_hash.len() != self.p.hash.output_len() {
            return Err(err(CKR_DATA_LEN_RANGE));
        }
        Ok(())
    }
}

impl Encoding for PssEncoding {
    fn check_key(&self, key: &RsaPublic) -> Result<()> {
        // emLen = ceil((modBits − 1)/8) ≥ hLen + sLen + 2 (RFC 8017 §9.1.1 step 3).
        let em_len = (key.bits() - 1).div_ceil(8);
        if em_len < self.p.hash.output_len() + self.p.salt_len + 2 {
            tracing::debug!("PSS salt does not fit the key");
            return Err(err(CKR_MECHANISM_PARAM_INVALID));
        }
        Ok(())
    }
    fn encode(&self, key: &RsaPublic, m_hash: &[u8]) -> Result<Vec<u8>> {
        self.check_hash_len(m_hash)?;
        pss::encode(
            m_hash,
            key.bits(),
            self.p.hash,
            self.p.mgf_hash,
            self.p.salt_len,
        )
        .map_err(|_| err(CKR_DATA_LEN_RANGE))
    }
    fn check(&self, key: &RsaPublic, m_hash: &[u8], em: &[u8]) -> Result<bool> {
        self.check_hash_len(m_hash)?;
        Ok(pss::verify(
            m_hash,
            em,
            key.bits(),
            self.p.hash,
            self.p.mgf_hash,
            self.p.salt_len,
        ))
    }
}

pub fn signature(m: &Mechanism) -> Result<SigSpec> {
    let Params::Pss(p) = m.params else {
        return Err(err(CKR_MECHANISM_PARAM_INVALID));
    };
    let hashed = pss_mechanism_hash(m.ty).is_some();
    Ok(SigSpec {
        message: if hashed {
            Message::hashed(p.hash)
        } else {
            Message::raw()
        },
        multipart: hashed,
        encoding: Box::new(PssEncoding { p }),
    })
}
