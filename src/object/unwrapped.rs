//! The key an unwrap recovers: a PKCS#8 RSA private key becomes the template attributes an
//! import takes (n, e, d), so it is split into fragments on the way in like any imported key
//! (`import.rs`) and never stored whole. The DER and the attributes are zeroized on drop.

use cryptoki_sys::*;
use pkcs8::PrivateKeyInfoRef;
use pkcs8::der::Decode;

use super::attr::Attribute;
use crate::error::{CkError, Result, err};

fn invalid(why: &str) -> CkError {
    tracing::warn!("C_UnwrapKey: the unwrapped key is not usable: {why}");
    err(CKR_WRAPPED_KEY_INVALID)
}

/// CKA_MODULUS, CKA_PUBLIC_EXPONENT and CKA_PRIVATE_EXPONENT of a PKCS#8 rsaEncryption key.
pub fn rsa_attributes(der: &[u8]) -> Result<Vec<Attribute>> {
    let info = PrivateKeyInfoRef::from_der(der).map_err(|_| invalid("not PKCS#8 DER"))?;
    if info.algorithm.oid != pkcs1::ALGORITHM_OID {
        return Err(invalid("not an rsaEncryption key"));
    }
    let key = pkcs1::RsaPrivateKeyRef::from_der(info.private_key.as_bytes())
        .map_err(|_| invalid("malformed RSAPrivateKey"))?;
    if key.other_prime_infos.is_some() {
        return Err(invalid("multi-prime RSA keys are not supported"));
    }
    Ok(vec![
        Attribute::new(CKA_MODULUS, key.modulus.as_bytes().to_vec()),
        Attribute::new(CKA_PUBLIC_EXPONENT, key.public_exponent.as_bytes().to_vec()),
        Attribute::new(
            CKA_PRIVATE_EXPONENT,
            key.private_exponent.as_bytes().to_vec(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_an_rsa_pkcs8_key() {
        for bad in [&b""[..], b"\x30\x00", &[0x30, 0x03, 0x02, 0x01, 0x00]] {
            assert_eq!(
                rsa_attributes(bad).unwrap_err().rv(),
                CKR_WRAPPED_KEY_INVALID
            );
        }
    }
}
