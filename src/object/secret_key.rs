//! The object of a secret key the cells generate (C_GenerateKey, `fns/secret_keygen.rs`):
//! the template validated before the cells are asked, and the attributes of a key born on
//! the token. Its material is a PRF key whose shares only the cells hold, so the object is
//! sensitive and unextractable for good, and CKA_VALUE is never stored or revealed.

use cryptoki_sys::*;

use super::attr::{Attribute, encode_bool, encode_ulong};
use super::generated::{Attrs, attrs_bool};
use super::policy;
use crate::error::{CkError, Result, err};
use crate::mechanism::secret;

/// A validated request.
#[derive(Debug)]
pub struct SecretPlan {
    pub key_type: CK_KEY_TYPE,
    /// CKA_VALUE_LEN, bytes.
    pub len: usize,
    pub attrs: Attrs,
}

impl SecretPlan {
    pub fn token(&self) -> bool {
        attrs_bool(&self.attrs, CKA_TOKEN)
    }
}

fn inconsistent(why: &str) -> CkError {
    tracing::warn!("C_GenerateKey: template inconsistent: {why}");
    err(CKR_TEMPLATE_INCONSISTENT)
}

/// Validate a C_GenerateKey template for `mech` (CKM_AES_KEY_GEN or
/// CKM_GENERIC_SECRET_KEY_GEN) and plan the object.
pub fn make_plan(mech: CK_MECHANISM_TYPE, template: &[Attribute]) -> Result<SecretPlan> {
    let key_type = match mech {
        CKM_AES_KEY_GEN | CKM_GENERIC_SECRET_KEY_GEN => {
            secret::key_type(mech).ok_or(err(CKR_MECHANISM_INVALID))?
        }
        _ => return Err(err(CKR_MECHANISM_INVALID)),
    };
    let mut len = None;
    let mut rest = Vec::with_capacity(template.len() + 3);
    for a in template {
        match a.ty {
            CKA_CLASS if a.as_ulong()? != CKO_SECRET_KEY => {
                return Err(inconsistent("CKA_CLASS is not CKO_SECRET_KEY"));
            }
            CKA_KEY_TYPE if a.as_ulong()? != key_type => {
                return Err(inconsistent("CKA_KEY_TYPE differs from the mechanism's"));
            }
            CKA_CLASS | CKA_KEY_TYPE => {}
            CKA_VALUE_LEN => {
                let l = usize::try_from(a.as_ulong()?).unwrap_or(usize::MAX);
                if !secret::valid_len(key_type, l) {
                    tracing::warn!(
                        len = l,
                        "C_GenerateKey: CKA_VALUE_LEN not allowed (AES: 16, 24, 32; \
                         generic secret: 16..=64 bytes)"
                    );
                    return Err(err(CKR_ATTRIBUTE_VALUE_INVALID));
                }
                len = Some(l);
            }
            // As for generated RSA keys (object/generated.rs): a value the token cannot
            // honour is CKR_ATTRIBUTE_VALUE_INVALID.
            CKA_SENSITIVE if !a.as_bool()? => {
                tracing::warn!(
                    "C_GenerateKey: CKA_SENSITIVE = false refused: the key exists only as PRF \
                     shares on the cells and can never be revealed"
                );
                return Err(err(CKR_ATTRIBUTE_VALUE_INVALID));
            }
            CKA_EXTRACTABLE if a.as_bool()? => {
                tracing::warn!(
                    "C_GenerateKey: CKA_EXTRACTABLE = true refused: the key never exists \
                     whole, so it cannot be wrapped or exported"
                );
                return Err(err(CKR_ATTRIBUTE_VALUE_INVALID));
            }
            CKA_SENSITIVE | CKA_EXTRACTABLE => {}
            CKA_VALUE | CKA_CHECK_VALUE => {
                tracing::warn!(
                    attribute = a.ty,
                    "C_GenerateKey: a generation template may not give key material"
                );
                return Err(err(CKR_ATTRIBUTE_READ_ONLY));
            }
            ty => match generated_value(mech, ty) {
                Some(v) if v == a.value[..] => {}
                Some(_) => {
                    tracing::warn!(
                        attribute = ty,
                        "C_GenerateKey: attribute set by the token, template value refused"
                    );
                    return Err(err(CKR_ATTRIBUTE_READ_ONLY));
                }
                None => rest.push(a.clone()),
            },
        }
    }
    // AES keys must say their length; CKM_AES_KEY_GEN has no default (PKCS#11 3.0 §2.10.4).
    let len = len.ok_or_else(|| {
        tracing::warn!("C_GenerateKey: the template lacks CKA_VALUE_LEN");
        err(CKR_TEMPLATE_INCOMPLETE)
    })?;
    let mut attrs = policy::build_generated(CKO_SECRET_KEY, &rest)?;
    attrs.insert(CKA_CLASS, encode_ulong(CKO_SECRET_KEY));
    attrs.insert(CKA_KEY_TYPE, encode_ulong(key_type));
    attrs.insert(CKA_VALUE_LEN, encode_ulong(len as CK_ULONG));
    attrs.insert(CKA_KEY_GEN_MECHANISM, encode_ulong(mech));
    for (ty, v) in [
        (CKA_LOCAL, true),
        (CKA_SENSITIVE, true),
        (CKA_ALWAYS_SENSITIVE, true),
        (CKA_EXTRACTABLE, false),
        (CKA_NEVER_EXTRACTABLE, true),
    ] {
        attrs.insert(ty, encode_bool(v));
    }
    Ok(SecretPlan {
        key_type,
        len,
        attrs,
    })
}

/// CKA_CHECK_VALUE (PKCS#11 3.0 §4.10): for AES the first 3 bytes of the encryption of a
/// zero block, for a generic secret the first 3 bytes of SHA-1 of the key — here of the
/// data key, which is what the standard mechanisms use.
pub fn check_value(key_type: CK_KEY_TYPE, data_key: &[u8]) -> Result<Vec<u8>> {
    use aes::cipher::{BlockCipherEncrypt, KeyInit};
    use digest::Digest;
    if key_type == CKK_GENERIC_SECRET {
        return Ok(sha1::Sha1::digest(data_key)[..3].to_vec());
    }
    let mut block = aes::Block::default();
    crate::mechanism::sym::with_aes!(data_key.len(), A => {
        A::new_from_slice(data_key)
            .map_err(|_| err(CKR_KEY_SIZE_RANGE))?
            .encrypt_block(&mut block);
        Ok(())
    })?;
    Ok(block[..3].to_vec())
}

/// Attributes the token sets: accepted in a template only with the value they get.
fn generated_value(mech: CK_MECHANISM_TYPE, ty: CK_ATTRIBUTE_TYPE) -> Option<Vec<u8>> {
    match ty {
        CKA_LOCAL | CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE => Some(encode_bool(true)),
        CKA_KEY_GEN_MECHANISM => Some(encode_ulong(mech)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(a: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Vec<Attribute> {
        a.iter()
            .map(|(t, v)| Attribute::new(*t, v.clone()))
            .collect()
    }

    #[test]
    fn aes_plan() {
        let p = make_plan(
            CKM_AES_KEY_GEN,
            &t(&[
                (CKA_VALUE_LEN, encode_ulong(32)),
                (CKA_TOKEN, encode_bool(true)),
                (CKA_LABEL, b"k".to_vec()),
                (CKA_SENSITIVE, encode_bool(true)),
                (CKA_LOCAL, encode_bool(true)),
            ]),
        )
        .unwrap();
        assert_eq!((p.key_type, p.len, p.token()), (CKK_AES, 32, true));
        for (ty, v) in [
            (CKA_LOCAL, true),
            (CKA_NEVER_EXTRACTABLE, true),
            (CKA_ALWAYS_SENSITIVE, true),
            (CKA_SENSITIVE, true),
            (CKA_EXTRACTABLE, false),
            (CKA_PRIVATE, true),
            (CKA_ENCRYPT, true),
        ] {
            assert_eq!(p.attrs[&ty], encode_bool(v), "{ty:#x}");
        }
        assert_eq!(
            p.attrs[&CKA_KEY_GEN_MECHANISM],
            encode_ulong(CKM_AES_KEY_GEN)
        );
        assert!(!p.attrs.contains_key(&CKA_VALUE));
        assert!(policy::is_sensitive(CKO_SECRET_KEY, CKA_VALUE));
    }

    #[test]
    fn refusals() {
        let len = |l| (CKA_VALUE_LEN, encode_ulong(l));
        let rv = |m, a: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]| make_plan(m, &t(a)).unwrap_err().rv();
        assert_eq!(rv(CKM_AES_KEY_GEN, &[]), CKR_TEMPLATE_INCOMPLETE);
        assert_eq!(rv(CKM_AES_KEY_GEN, &[len(20)]), CKR_ATTRIBUTE_VALUE_INVALID);
        assert_eq!(
            rv(CKM_GENERIC_SECRET_KEY_GEN, &[len(8)]),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        assert_eq!(
            rv(
                CKM_AES_KEY_GEN,
                &[len(16), (CKA_EXTRACTABLE, encode_bool(true))]
            ),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        assert_eq!(
            rv(
                CKM_AES_KEY_GEN,
                &[len(16), (CKA_SENSITIVE, encode_bool(false))]
            ),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        assert_eq!(
            rv(CKM_AES_KEY_GEN, &[len(16), (CKA_VALUE, vec![0; 16])]),
            CKR_ATTRIBUTE_READ_ONLY
        );
        assert_eq!(
            rv(
                CKM_AES_KEY_GEN,
                &[len(16), (CKA_KEY_TYPE, encode_ulong(CKK_GENERIC_SECRET))]
            ),
            CKR_TEMPLATE_INCONSISTENT
        );
        assert_eq!(
            rv(CKM_AES_KEY_GEN, &[len(16), (CKA_LOCAL, encode_bool(false))]),
            CKR_ATTRIBUTE_READ_ONLY
        );
        assert_eq!(rv(CKM_RSA_PKCS, &[len(16)]), CKR_MECHANISM_INVALID);
        assert!(make_plan(CKM_GENERIC_SECRET_KEY_GEN, &t(&[len(64)])).is_ok());
    }

    #[test]
    fn check_values() {
        // FIPS 197 C.1: AES-128 of the zero block under 000102…0f starts c6 a1 3b.
        let k: Vec<u8> = (0..16).collect();
        let kcv = check_value(CKK_AES, &k).unwrap();
        assert_eq!(kcv.len(), 3);
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        let mut b = aes::Block::default();
        aes::Aes128::new_from_slice(&k)
            .unwrap()
            .encrypt_block(&mut b);
        assert_eq!(kcv, b[..3]);
        assert_eq!(
            check_value(CKK_GENERIC_SECRET, b"abc").unwrap(),
            [0xa9, 0x99, 0x3e]
        );
    }
}
