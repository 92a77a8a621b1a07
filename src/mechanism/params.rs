//! Mechanism parameters, parsed and validated at the edge: a wrong size, an unknown hash or
//! MGF, or a hash that contradicts the mechanism is CKR_MECHANISM_PARAM_INVALID.

use cryptoki_sys::*;
use keyfrag_core::hash::HashAlg;

use super::aes_gcm::GcmParams;
use crate::error::{Result, err};
use crate::ffi;

/// PSS parameters: the hash of the message, MGF1's hash, the salt length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PssParams {
    pub hash: HashAlg,
    pub mgf_hash: HashAlg,
    pub salt_len: usize,
}

/// OAEP parameters; the label is public (it is not the message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OaepParams {
    pub hash: HashAlg,
    pub mgf_hash: HashAlg,
    pub label: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Params {
    None,
    Pss(PssParams),
    Oaep(OaepParams),
    Gcm(GcmParams),
    /// CKM_AES_CBC_PAD: the 16-byte IV.
    Iv(Vec<u8>),
    /// CKM_AES_CTR: counter bits and the initial counter block.
    Ctr {
        bits: usize,
        cb: [u8; 16],
    },
}

/// CK_GCM_PARAMS as PKCS#11 2.40 declared it (no ulIvBits), which OpenSC and older
/// applications still pass: told apart from the 3.0 layout by its size.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CkGcmParamsV240 {
    pub p_iv: *mut CK_BYTE,
    pub iv_len: CK_ULONG,
    pub p_aad: *mut CK_BYTE,
    pub aad_len: CK_ULONG,
    pub tag_bits: CK_ULONG,
}

fn gcm_params(raw: &CK_MECHANISM) -> Result<GcmParams> {
    let (iv, iv_len, aad, aad_len, tag_bits) =
        if usize::try_from(raw.ulParameterLen).ok() == Some(size_of::<CkGcmParamsV240>()) {
            let p: CkGcmParamsV240 = ffi::read_param(raw.pParameter, raw.ulParameterLen)?;
            (p.p_iv, p.iv_len, p.p_aad, p.aad_len, p.tag_bits)
        } else {
            let p: CK_GCM_PARAMS = ffi::read_param(raw.pParameter, raw.ulParameterLen)?;
            (p.pIv, p.ulIvLen, p.pAAD, p.ulAADLen, p.ulTagBits)
        };
    let iv = ffi::in_slice(iv, iv_len).map_err(|_| bad("GCM pIv"))?;
    let aad = ffi::in_slice(aad, aad_len).map_err(|_| bad("GCM pAAD"))?;
    let tag_bits = usize::try_from(tag_bits).map_err(|_| bad("GCM ulTagBits"))?;
    GcmParams::new(iv, aad, tag_bits)
}

/// A parsed CK_MECHANISM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mechanism {
    pub ty: CK_MECHANISM_TYPE,
    pub params: Params,
}

pub fn hash_of_digest_mechanism(m: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    Some(match m {
        CKM_SHA_1 => HashAlg::Sha1,
        CKM_SHA224 => HashAlg::Sha224,
        CKM_SHA256 => HashAlg::Sha256,
        CKM_SHA384 => HashAlg::Sha384,
        CKM_SHA512 => HashAlg::Sha512,
        _ => return None,
    })
}

pub fn hash_of_mgf(g: CK_RSA_PKCS_MGF_TYPE) -> Option<HashAlg> {
    Some(match g {
        CKG_MGF1_SHA1 => HashAlg::Sha1,
        CKG_MGF1_SHA224 => HashAlg::Sha224,
        CKG_MGF1_SHA256 => HashAlg::Sha256,
        CKG_MGF1_SHA384 => HashAlg::Sha384,
        CKG_MGF1_SHA512 => HashAlg::Sha512,
        _ => return None,
    })
}

/// The hash built into a hash-and-sign PSS mechanism (None for CKM_RSA_PKCS_PSS).
pub fn pss_mechanism_hash(m: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    Some(match m {
        CKM_SHA1_RSA_PKCS_PSS => HashAlg::Sha1,
        CKM_SHA224_RSA_PKCS_PSS => HashAlg::Sha224,
        CKM_SHA256_RSA_PKCS_PSS => HashAlg::Sha256,
        CKM_SHA384_RSA_PKCS_PSS => HashAlg::Sha384,
        CKM_SHA512_RSA_PKCS_PSS => HashAlg::Sha512,
        _ => return None,
    })
}

/// The hash built into a hash-and-sign PKCS#1 v1.5 mechanism.
pub fn pkcs_mechanism_hash(m: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    Some(match m {
        CKM_SHA1_RSA_PKCS => HashAlg::Sha1,
        CKM_SHA224_RSA_PKCS => HashAlg::Sha224,
        CKM_SHA256_RSA_PKCS => HashAlg::Sha256,
        CKM_SHA384_RSA_PKCS => HashAlg::Sha384,
        CKM_SHA512_RSA_PKCS => HashAlg::Sha512,
        _ => return None,
    })
}

fn bad(why: &'static str) -> crate::error::CkError {
    tracing::debug!("mechanism parameter invalid: {why}");
    err(CKR_MECHANISM_PARAM_INVALID)
}

/// Validate CK_RSA_PKCS_PSS_PARAMS for mechanism `m`.
pub fn pss_params(m: CK_MECHANISM_TYPE, p: &CK_RSA_PKCS_PSS_PARAMS) -> Result<PssParams> {
    let hash = hash_of_digest_mechanism(p.hashAlg).ok_or_else(|| bad("PSS hashAlg"))?;
    let mgf_hash = hash_of_mgf(p.mgf).ok_or_else(|| bad("PSS mgf"))?;
    if let Some(h) = pss_mechanism_hash(m)
        && h != hash
    {
        return Err(bad("PSS hashAlg differs from the mechanism's hash"));
    }
    let salt_len = usize::try_from(p.sLen).map_err(|_| bad("PSS sLen"))?;
    if salt_len > 1024 {
        return Err(bad("PSS sLen"));
    }
    Ok(PssParams {
        hash,
        mgf_hash,
        salt_len,
    })
}

/// Validate CK_RSA_PKCS_OAEP_PARAMS; `label` is pSourceData as given. Source 0 is accepted as
/// "no label" (COMPAT item 7); a label with source 0 is a contradiction.
pub fn oaep_params(p: &CK_RSA_PKCS_OAEP_PARAMS, label: &[u8]) -> Result<OaepParams> {
    let hash = hash_of_digest_mechanism(p.hashAlg).ok_or_else(|| bad("OAEP hashAlg"))?;
    let mgf_hash = hash_of_mgf(p.mgf).ok_or_else(|| bad("OAEP mgf"))?;
    match p.source {
        CKZ_DATA_SPECIFIED => {}
        0 if label.is_empty() => {}
        _ => return Err(bad("OAEP source")),
    }
    Ok(OaepParams {
        hash,
        mgf_hash,
        label: label.to_vec(),
    })
}

/// Parse a caller's CK_MECHANISM.
pub fn parse(ptr: *const CK_MECHANISM) -> Result<Mechanism> {
    let raw: CK_MECHANISM = ffi::read_in(ptr)?;
    let params = match raw.mechanism {
        CKM_RSA_PKCS_PSS => {
            let p: CK_RSA_PKCS_PSS_PARAMS = ffi::read_param(raw.pParameter, raw.ulParameterLen)?;
            Params::Pss(pss_params(raw.mechanism, &p)?)
        }
        m if pss_mechanism_hash(m).is_some() => {
            if raw.pParameter.is_null() && raw.ulParameterLen == 0 {
                // Lenient: no parameters means the mechanism's hash everywhere, sLen = hLen.
                let h = pss_mechanism_hash(m).unwrap_or(HashAlg::Sha256);
                Params::Pss(PssParams {
                    hash: h,
                    mgf_hash: h,
                    salt_len: h.output_len(),
                })
            } else {
                let p: CK_RSA_PKCS_PSS_PARAMS =
                    ffi::read_param(raw.pParameter, raw.ulParameterLen)?;
                Params::Pss(pss_params(m, &p)?)
            }
        }
        CKM_RSA_PKCS_OAEP => {
            let p: CK_RSA_PKCS_OAEP_PARAMS = ffi::read_param(raw.pParameter, raw.ulParameterLen)?;
            let label = ffi::in_slice(p.pSourceData as *const u8, p.ulSourceDataLen)
                .map_err(|_| bad("OAEP pSourceData"))?;
            Params::Oaep(oaep_params(&p, label)?)
        }
        CKM_AES_GCM => Params::Gcm(gcm_params(&raw)?),
        CKM_AES_CBC_PAD => {
            let iv = ffi::in_slice(raw.pParameter as *const u8, raw.ulParameterLen)
                .map_err(|_| bad("CBC IV"))?;
            if iv.len() != 16 {
                return Err(bad("CBC IV must be 16 bytes"));
            }
            Params::Iv(iv.to_vec())
        }
        CKM_AES_CTR => {
            let p: CK_AES_CTR_PARAMS = ffi::read_param(raw.pParameter, raw.ulParameterLen)?;
            let bits = usize::try_from(p.ulCounterBits).map_err(|_| bad("CTR ulCounterBits"))?;
            if bits == 0 || bits > 128 {
                return Err(bad("CTR ulCounterBits"));
            }
            Params::Ctr { bits, cb: p.cb }
        }
        // Mechanisms without parameters ignore any given (callers pass stray ones).
        _ => Params::None,
    };
    Ok(Mechanism {
        ty: raw.mechanism,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::c_void;

    fn pss(h: CK_MECHANISM_TYPE, g: CK_RSA_PKCS_MGF_TYPE, s: CK_ULONG) -> CK_RSA_PKCS_PSS_PARAMS {
        CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: h,
            mgf: g,
            sLen: s,
        }
    }

    #[test]
    fn pss_validation() {
        let p = pss_params(CKM_RSA_PKCS_PSS, &pss(CKM_SHA384, CKG_MGF1_SHA256, 48)).unwrap();
        assert_eq!(
            p,
            PssParams {
                hash: HashAlg::Sha384,
                mgf_hash: HashAlg::Sha256,
                salt_len: 48
            }
        );
        let e =
            pss_params(CKM_SHA256_RSA_PKCS_PSS, &pss(CKM_SHA_1, CKG_MGF1_SHA1, 20)).unwrap_err();
        assert_eq!(e.rv(), CKR_MECHANISM_PARAM_INVALID);
        let e = pss_params(CKM_RSA_PKCS_PSS, &pss(CKM_MD5, CKG_MGF1_SHA1, 20)).unwrap_err();
        assert_eq!(e.rv(), CKR_MECHANISM_PARAM_INVALID);
        let e = pss_params(CKM_RSA_PKCS_PSS, &pss(CKM_SHA256, 99, 20)).unwrap_err();
        assert_eq!(e.rv(), CKR_MECHANISM_PARAM_INVALID);
        assert!(pss_params(CKM_SHA256_RSA_PKCS_PSS, &pss(CKM_SHA256, CKG_MGF1_SHA1, 0)).is_ok());
    }

    fn oaep(
        h: CK_MECHANISM_TYPE,
        g: CK_RSA_PKCS_MGF_TYPE,
        src: CK_ULONG,
    ) -> CK_RSA_PKCS_OAEP_PARAMS {
        CK_RSA_PKCS_OAEP_PARAMS {
            hashAlg: h,
            mgf: g,
            source: src,
            pSourceData: std::ptr::null_mut(),
            ulSourceDataLen: 0,
        }
    }

    #[test]
    fn oaep_validation() {
        let p = oaep_params(&oaep(CKM_SHA256, CKG_MGF1_SHA1, 0), &[]).unwrap();
        assert_eq!((p.hash, p.mgf_hash), (HashAlg::Sha256, HashAlg::Sha1));
        assert!(oaep_params(&oaep(CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED), &[]).is_ok());
        let p = oaep_params(
            &oaep(CKM_SHA512, CKG_MGF1_SHA512, CKZ_DATA_SPECIFIED),
            b"lbl",
        )
        .unwrap();
        assert_eq!(p.label, b"lbl");
        assert_eq!(
            oaep_params(&oaep(CKM_SHA256, CKG_MGF1_SHA256, 0), b"lbl")
                .unwrap_err()
                .rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            oaep_params(&oaep(CKM_SHA256, CKG_MGF1_SHA256, 7), &[])
                .unwrap_err()
                .rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            oaep_params(&oaep(CKM_MD5, CKG_MGF1_SHA256, 0), &[])
                .unwrap_err()
                .rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
    }

    #[test]
    fn parse_from_c() {
        let mut p = pss(CKM_SHA256, CKG_MGF1_SHA256, 32);
        let m = CK_MECHANISM {
            mechanism: CKM_SHA256_RSA_PKCS_PSS,
            pParameter: &mut p as *mut _ as *mut c_void,
            ulParameterLen: size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG,
        };
        let parsed = parse(&m).unwrap();
        assert!(matches!(
            parsed.params,
            Params::Pss(PssParams { salt_len: 32, .. })
        ));
        let short = CK_MECHANISM {
            ulParameterLen: 8,
            ..m
        };
        assert_eq!(parse(&short).unwrap_err().rv(), CKR_MECHANISM_PARAM_INVALID);
        let none = CK_MECHANISM {
            mechanism: CKM_SHA384_RSA_PKCS_PSS,
            pParameter: std::ptr::null_mut(),
            ulParameterLen: 0,
        };
        assert!(matches!(
            parse(&none).unwrap().params,
            Params::Pss(PssParams { salt_len: 48, .. })
        ));
        let raw_pss = CK_MECHANISM {
            mechanism: CKM_RSA_PKCS_PSS,
            ..none
        };
        assert_eq!(
            parse(&raw_pss).unwrap_err().rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
        let mut label = *b"label";
        let mut o = oaep(CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED);
        o.pSourceData = label.as_mut_ptr() as *mut c_void;
        o.ulSourceDataLen = 5;
        let m = CK_MECHANISM {
            mechanism: CKM_RSA_PKCS_OAEP,
            pParameter: &mut o as *mut _ as *mut c_void,
            ulParameterLen: size_of::<CK_RSA_PKCS_OAEP_PARAMS>() as CK_ULONG,
        };
        assert!(
            matches!(parse(&m).unwrap().params, Params::Oaep(OaepParams { ref label, .. }) if label == b"label")
        );
        let mut o2 = oaep(CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED);
        o2.ulSourceDataLen = 5; // NULL data with a length
        let m2 = CK_MECHANISM {
            pParameter: &mut o2 as *mut _ as *mut c_void,
            ..m
        };
        assert_eq!(parse(&m2).unwrap_err().rv(), CKR_MECHANISM_PARAM_INVALID);
        assert_eq!(parse(std::ptr::null()).unwrap_err().rv(), CKR_ARGUMENTS_BAD);
    }
}
