//! CKM_SHA256_HMAC, CKM_SHA384_HMAC, CKM_SHA512_HMAC: sign and verify (the `hmac` crate),
//! single- and multi-part, full-length MACs. Verification compares in constant time; a MAC
//! of the wrong length is CKR_SIGNATURE_LEN_RANGE, a wrong MAC CKR_SIGNATURE_INVALID.

use cryptoki_sys::*;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha384, Sha512};

use super::{PrivateKeyOp, Sign, Verify};
use crate::error::{Result, err};

enum State {
    S256(Hmac<Sha256>),
    S384(Hmac<Sha384>),
    S512(Hmac<Sha512>),
}

/// The MAC length of an HMAC mechanism (None for other mechanisms).
pub fn mac_len(mech: CK_MECHANISM_TYPE) -> Option<usize> {
    match mech {
        CKM_SHA256_HMAC => Some(32),
        CKM_SHA384_HMAC => Some(48),
        CKM_SHA512_HMAC => Some(64),
        _ => None,
    }
}

impl State {
    fn new(mech: CK_MECHANISM_TYPE, key: &[u8]) -> Result<State> {
        let bad = |_| err(CKR_KEY_SIZE_RANGE);
        Ok(match mech {
            CKM_SHA256_HMAC => State::S256(Hmac::new_from_slice(key).map_err(bad)?),
            CKM_SHA384_HMAC => State::S384(Hmac::new_from_slice(key).map_err(bad)?),
            CKM_SHA512_HMAC => State::S512(Hmac::new_from_slice(key).map_err(bad)?),
            _ => return Err(err(CKR_MECHANISM_INVALID)),
        })
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            State::S256(m) => m.update(data),
            State::S384(m) => m.update(data),
            State::S512(m) => m.update(data),
        }
    }

    /// The MAC of what was fed so far (a finished operation is dropped anyway).
    fn finalize(&mut self) -> Vec<u8> {
        match self {
            State::S256(m) => m.clone().finalize().into_bytes().to_vec(),
            State::S384(m) => m.clone().finalize().into_bytes().to_vec(),
            State::S512(m) => m.clone().finalize().into_bytes().to_vec(),
        }
    }

    fn verify(&mut self, mac: &[u8]) -> bool {
        match self {
            State::S256(m) => m.clone().verify_slice(mac).is_ok(),
            State::S384(m) => m.clone().verify_slice(mac).is_ok(),
            State::S512(m) => m.clone().verify_slice(mac).is_ok(),
        }
    }
}

pub struct HmacOp {
    state: State,
    len: usize,
}

impl HmacOp {
    pub fn new(mech: CK_MECHANISM_TYPE, key: &[u8]) -> Result<HmacOp> {
        let len = mac_len(mech).ok_or(err(CKR_MECHANISM_INVALID))?;
        Ok(HmacOp {
            state: State::new(mech, key)?,
            len,
        })
    }
}

impl Sign for HmacOp {
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.state.update(data);
        Ok(())
    }
    fn signature_len(&self) -> usize {
        self.len
    }
    fn holds_key(&self) -> bool {
        true
    }
    fn finish(&mut self, _cells: &dyn PrivateKeyOp) -> Result<Vec<u8>> {
        Ok(self.state.finalize())
    }
}

impl Verify for HmacOp {
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.state.update(data);
        Ok(())
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.len {
            return Err(err(CKR_SIGNATURE_LEN_RANGE));
        }
        if self.state.verify(signature) {
            Ok(())
        } else {
            Err(err(CKR_SIGNATURE_INVALID))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::NoCells;
    use crate::mechanism::sym::unhex;

    // RFC 4231 test cases 1 and 2.
    #[test]
    fn rfc4231_known_answers() {
        let cases = [
            (
                unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                b"Hi There".to_vec(),
                [
                    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
                    "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
                     faea9ea9076ede7f4af152e8b2fa9cb6",
                    "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
                     daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
                ],
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                [
                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                    "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
                     8e2240ca5e69e2c78b3239ecfab21649",
                    "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                     9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
                ],
            ),
        ];
        for (key, data, macs) in cases {
            for (mech, mac) in [CKM_SHA256_HMAC, CKM_SHA384_HMAC, CKM_SHA512_HMAC]
                .into_iter()
                .zip(macs)
            {
                let mut s = HmacOp::new(mech, &key).unwrap();
                Sign::update(&mut s, &data[..3]).unwrap();
                Sign::update(&mut s, &data[3..]).unwrap();
                assert_eq!(Sign::finish(&mut s, &NoCells).unwrap(), unhex(mac));
                let mut v = HmacOp::new(mech, &key).unwrap();
                Verify::update(&mut v, &data).unwrap();
                assert!(Verify::finish(&mut v, &unhex(mac)).is_ok());
            }
        }
    }

    #[test]
    fn verification_failures() {
        let key = [1u8; 32];
        let mut s = HmacOp::new(CKM_SHA256_HMAC, &key).unwrap();
        Sign::update(&mut s, b"m").unwrap();
        let mac = Sign::finish(&mut s, &NoCells).unwrap();
        let mut bad = mac.clone();
        bad[31] ^= 1;
        let mut v = HmacOp::new(CKM_SHA256_HMAC, &key).unwrap();
        Verify::update(&mut v, b"m").unwrap();
        assert_eq!(
            Verify::finish(&mut v, &bad).unwrap_err().rv(),
            CKR_SIGNATURE_INVALID
        );
        assert_eq!(
            Verify::finish(&mut v, &mac[..16]).unwrap_err().rv(),
            CKR_SIGNATURE_LEN_RANGE
        );
        assert!(Verify::finish(&mut v, &mac).is_ok());
    }
}
