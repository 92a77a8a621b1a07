//! RSA through the C ABI against a 3-cell testbed: import a key made by the `rsa` crate, sign
//! with every mechanism and verify with `rsa`, decrypt what `rsa` encrypted, threads, outages.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use std::time::{Duration, Instant};

use common::*;
use cryptoki_sys::*;
use rsa::pkcs8::EncodePublicKey;
use rsa::sha2::{Digest, Sha256, Sha384, Sha512};
use rsa::{Oaep, Pkcs1v15Encrypt, Pkcs1v15Sign};

fn setup(token: bool) -> (CK_SESSION_HANDLE, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let (k, p) = import_rsa(h, rsa_key(), token, b"k1");
    (h, k, p)
}

#[test]
fn imported_key_attributes() {
    let _f = Fixture::new();
    let h = open_session(true);
    // Private keys need a login.
    let mut t = Tpl::new()
        .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA);
    let (tp, tn) = t.ptr();
    let mut o = 0;
    assert_eq!(
        call!(C_CreateObject, h, tp, tn, &mut o),
        CKR_USER_NOT_LOGGED_IN
    );
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(
        call!(C_CreateObject, h, tp, tn, &mut o),
        CKR_TEMPLATE_INCOMPLETE
    );
    let key = rsa_key();
    let (k, p) = import_rsa(h, key, false, b"k1");
    let n = key.as_public_key().n_bytes().to_vec();
    use rsa::traits::PublicKeyParts;
    assert_eq!(get_attr(h, k, CKA_MODULUS).1.unwrap(), n);
    assert_eq!(
        get_attr(h, k, CKA_PUBLIC_EXPONENT).1.unwrap(),
        vec![1, 0, 1]
    );
    let spki = key.to_public_key().to_public_key_der().unwrap();
    assert_eq!(
        get_attr(h, k, CKA_PUBLIC_KEY_INFO).1.unwrap(),
        spki.as_bytes()
    );
    assert_eq!(
        get_attr(h, p, CKA_PUBLIC_KEY_INFO).1.unwrap(),
        spki.as_bytes()
    );
    assert_eq!(
        get_attr(h, p, CKA_MODULUS_BITS).1.unwrap(),
        2048u64.to_ne_bytes()
    );
    for t in [
        CKA_PRIVATE_EXPONENT,
        CKA_PRIME_1,
        CKA_PRIME_2,
        CKA_EXPONENT_1,
        CKA_EXPONENT_2,
        CKA_COEFFICIENT,
    ] {
        assert_eq!(
            get_attr(h, k, t).0,
            CKR_ATTRIBUTE_SENSITIVE,
            "attribute {t:#x}"
        );
    }
    assert_eq!(get_attr(h, k, CKA_VALUE).0, CKR_ATTRIBUTE_TYPE_INVALID);
    for (t, v) in [
        (CKA_SENSITIVE, 1u8),
        (CKA_EXTRACTABLE, 0),
        (CKA_ALWAYS_SENSITIVE, 0),
        (CKA_NEVER_EXTRACTABLE, 0),
        (CKA_LOCAL, 0),
        (CKA_TOKEN, 0),
        (CKA_PRIVATE, 1),
        (CKA_ALWAYS_AUTHENTICATE, 0),
    ] {
        assert_eq!(get_attr(h, k, t).1.unwrap(), vec![v], "attribute {t:#x}");
    }
    assert_eq!(get_attr(h, p, CKA_PRIVATE).1.unwrap(), vec![0]);
    // A batched query: one sensitive attribute makes the call CKR_ATTRIBUTE_SENSITIVE, the
    // others are still answered.
    let mut label = [0u8; 64];
    let mut attrs = [
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_mut_ptr() as *mut _,
            ulValueLen: 64,
        },
        CK_ATTRIBUTE {
            type_: CKA_PRIVATE_EXPONENT,
            pValue: std::ptr::null_mut(),
            ulValueLen: 0,
        },
        CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: std::ptr::null_mut(),
            ulValueLen: 0,
        },
    ];
    assert_eq!(
        call!(C_GetAttributeValue, h, k, attrs.as_mut_ptr(), 3),
        CKR_ATTRIBUTE_SENSITIVE
    );
    assert_eq!(attrs[0].ulValueLen, 8);
    assert_eq!(&label[..8], b"test key");
    assert_eq!(attrs[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(attrs[2].ulValueLen, 2);
    // Set: CKA_SENSITIVE only false→true, CKA_EXTRACTABLE only true→false, modulus read-only.
    let mut t = Tpl::new().bool(CKA_SENSITIVE, false);
    let (tp, tn) = t.ptr();
    assert_eq!(
        call!(C_SetAttributeValue, h, k, tp, tn),
        CKR_ATTRIBUTE_READ_ONLY
    );
    let mut t = Tpl::new().bool(CKA_EXTRACTABLE, true);
    let (tp, tn) = t.ptr();
    assert_eq!(
        call!(C_SetAttributeValue, h, k, tp, tn),
        CKR_ATTRIBUTE_READ_ONLY
    );
    let mut t = Tpl::new().bytes(CKA_MODULUS, &[1]);
    let (tp, tn) = t.ptr();
    assert_eq!(
        call!(C_SetAttributeValue, h, k, tp, tn),
        CKR_ATTRIBUTE_READ_ONLY
    );
    let mut t = Tpl::new().bytes(CKA_LABEL, b"renamed");
    let (tp, tn) = t.ptr();
    assert_eq!(call!(C_SetAttributeValue, h, k, tp, tn), CKR_OK);
    assert_eq!(get_attr(h, k, CKA_LABEL).1.unwrap(), b"renamed");
    // A wrong private exponent is refused (the import self-test catches it).
    let mut bad = rsa_key_components();
    bad.2[10] ^= 1;
    let mut t = Tpl::new()
        .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA)
        .bytes(CKA_MODULUS, &bad.0)
        .bytes(CKA_PUBLIC_EXPONENT, &bad.1)
        .bytes(CKA_PRIVATE_EXPONENT, &bad.2);
    let (tp, tn) = t.ptr();
    assert_eq!(
        call!(C_CreateObject, h, tp, tn, &mut o),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
}

fn rsa_key_components() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let k = rsa_key();
    (
        k.n_bytes().to_vec(),
        k.e_bytes().to_vec(),
        k.d().to_be_bytes_trimmed_vartime().to_vec(),
    )
}

#[test]
fn sign_with_every_mechanism() {
    let _f = Fixture::new();
    let (h, k, p) = setup(false);
    let public = rsa_key().to_public_key();
    let msg = b"keyfrag signs standard signatures";

    // Hash-and-sign PKCS#1 v1.5.
    for (m, verify) in [
        (
            CKM_SHA256_RSA_PKCS,
            public.pkcs1v15_verify::<Sha256>(
                msg,
                &sign(h, &mut mech(CKM_SHA256_RSA_PKCS), k, msg).unwrap(),
            ),
        ),
        (
            CKM_SHA384_RSA_PKCS,
            public.pkcs1v15_verify::<Sha384>(
                msg,
                &sign(h, &mut mech(CKM_SHA384_RSA_PKCS), k, msg).unwrap(),
            ),
        ),
        (
            CKM_SHA512_RSA_PKCS,
            public.pkcs1v15_verify::<Sha512>(
                msg,
                &sign(h, &mut mech(CKM_SHA512_RSA_PKCS), k, msg).unwrap(),
            ),
        ),
        (
            CKM_SHA1_RSA_PKCS,
            public.pkcs1v15_verify::<sha1::Sha1>(
                msg,
                &sign(h, &mut mech(CKM_SHA1_RSA_PKCS), k, msg).unwrap(),
            ),
        ),
        (
            CKM_SHA224_RSA_PKCS,
            public.pkcs1v15_verify::<rsa::sha2::Sha224>(
                msg,
                &sign(h, &mut mech(CKM_SHA224_RSA_PKCS), k, msg).unwrap(),
            ),
        ),
    ] {
        assert!(verify.is_ok(), "mechanism {m:#x}");
    }
    // Module verify too.
    let s = sign(h, &mut mech(CKM_SHA256_RSA_PKCS), k, msg).unwrap();
    assert_eq!(
        verify(h, &mut mech(CKM_SHA256_RSA_PKCS), p, msg, &s),
        CKR_OK
    );
    assert_eq!(
        verify(h, &mut mech(CKM_SHA256_RSA_PKCS), p, b"other", &s),
        CKR_SIGNATURE_INVALID
    );
    assert_eq!(
        verify(h, &mut mech(CKM_SHA256_RSA_PKCS), p, msg, &s[1..]),
        CKR_SIGNATURE_LEN_RANGE
    );

    // CKM_RSA_PKCS over a caller-built DigestInfo (what NSS and Java do).
    let hash = Sha256::digest(msg);
    let mut di = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    di.extend_from_slice(&hash);
    let s = sign(h, &mut mech(CKM_RSA_PKCS), k, &di).unwrap();
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &s)
        .unwrap();
    assert_eq!(verify(h, &mut mech(CKM_RSA_PKCS), p, &di, &s), CKR_OK);
    assert_eq!(
        sign(h, &mut mech(CKM_RSA_PKCS), k, &[0u8; 250]).unwrap_err(),
        CKR_DATA_LEN_RANGE
    );

    // PSS, pre-hashed (TLS 1.3 via NSS) and hash-and-sign.
    let mut pp = CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        sLen: 32,
    };
    let s = sign(h, &mut mech_with(CKM_RSA_PKCS_PSS, &mut pp), k, &hash).unwrap();
    public.pss_verify_prehash::<Sha256>(&hash, &s).unwrap();
    assert_eq!(
        verify(h, &mut mech_with(CKM_RSA_PKCS_PSS, &mut pp), p, &hash, &s),
        CKR_OK
    );
    assert_eq!(
        sign(h, &mut mech_with(CKM_RSA_PKCS_PSS, &mut pp), k, &hash[1..]).unwrap_err(),
        CKR_DATA_LEN_RANGE
    );
    let s = sign(h, &mut mech_with(CKM_SHA256_RSA_PKCS_PSS, &mut pp), k, msg).unwrap();
    public.pss_verify::<Sha256>(msg, &s).unwrap();
    let mut pp384 = CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: CKM_SHA384,
        mgf: CKG_MGF1_SHA384,
        sLen: 48,
    };
    let s = sign(
        h,
        &mut mech_with(CKM_SHA384_RSA_PKCS_PSS, &mut pp384),
        k,
        msg,
    )
    .unwrap();
    public.pss_verify::<Sha384>(msg, &s).unwrap();
    let mut pp512 = CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: CKM_SHA512,
        mgf: CKG_MGF1_SHA512,
        sLen: 64,
    };
    let s = sign(
        h,
        &mut mech_with(CKM_SHA512_RSA_PKCS_PSS, &mut pp512),
        k,
        msg,
    )
    .unwrap();
    public.pss_verify::<Sha512>(msg, &s).unwrap();
    // Salt 0 and an MGF hash different from the message hash: verified by the module.
    let mut odd = CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA1,
        sLen: 0,
    };
    let s = sign(h, &mut mech_with(CKM_SHA256_RSA_PKCS_PSS, &mut odd), k, msg).unwrap();
    assert_eq!(
        verify(
            h,
            &mut mech_with(CKM_SHA256_RSA_PKCS_PSS, &mut odd),
            p,
            msg,
            &s
        ),
        CKR_OK
    );
    // Parameters contradicting the mechanism.
    assert_eq!(
        sign(h, &mut mech_with(CKM_SHA384_RSA_PKCS_PSS, &mut pp), k, msg).unwrap_err(),
        CKR_MECHANISM_PARAM_INVALID
    );
    let mut m = CK_MECHANISM {
        mechanism: CKM_RSA_PKCS_PSS,
        pParameter: &mut pp as *mut _ as *mut _,
        ulParameterLen: 8,
    };
    assert_eq!(call!(C_SignInit, h, &mut m, k), CKR_MECHANISM_PARAM_INVALID);

    // Raw RSA (allowed by the testbed's policy).
    let mut em = vec![0u8; 256];
    em[255] = 7;
    let s = sign(h, &mut mech(CKM_RSA_X_509), k, &em).unwrap();
    assert_eq!(verify(h, &mut mech(CKM_RSA_X_509), p, &em, &s), CKR_OK);
}

#[test]
fn two_call_rule_and_operation_state() {
    let _f = Fixture::new();
    let (h, k, _) = setup(false);
    let msg = b"data";
    let mut m = mech(CKM_SHA256_RSA_PKCS);
    assert_eq!(
        call!(
            C_Sign,
            h,
            msg.as_ptr() as *mut u8,
            4,
            std::ptr::null_mut(),
            &mut 0
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(C_SignInit, h, &mut m, k), CKR_OK);
    assert_eq!(call!(C_SignInit, h, &mut m, k), CKR_OPERATION_ACTIVE);
    let mut len: CK_ULONG = 0;
    assert_eq!(
        call!(
            C_Sign,
            h,
            msg.as_ptr() as *mut u8,
            4,
            std::ptr::null_mut(),
            &mut len
        ),
        CKR_OK
    );
    assert_eq!(len, 256);
    let mut sig = [0u8; 256];
    len = 100;
    assert_eq!(
        call!(
            C_Sign,
            h,
            msg.as_ptr() as *mut u8,
            4,
            sig.as_mut_ptr(),
            &mut len
        ),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, 256);
    assert_eq!(
        call!(
            C_Sign,
            h,
            msg.as_ptr() as *mut u8,
            4,
            sig.as_mut_ptr(),
            &mut len
        ),
        CKR_OK
    );
    // Finished: a new init works.
    assert_eq!(call!(C_SignInit, h, &mut m, k), CKR_OK);
    // NULL data with length 0 (OpenSSL 3.2) is an empty message.
    len = 256;
    assert_eq!(
        call!(
            C_Sign,
            h,
            std::ptr::null_mut(),
            0,
            sig.as_mut_ptr(),
            &mut len
        ),
        CKR_OK
    );
    rsa_key()
        .to_public_key()
        .pkcs1v15_verify::<Sha256>(b"", &sig)
        .unwrap();
    // Any other error ends the operation.
    assert_eq!(call!(C_SignInit, h, &mut m, k), CKR_OK);
    assert_eq!(
        call!(
            C_Sign,
            h,
            std::ptr::null_mut(),
            5,
            sig.as_mut_ptr(),
            &mut len
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(C_SignInit, h, &mut m, k), CKR_OK);
    // Multi-part.
    assert_eq!(call!(C_SignUpdate, h, b"da".as_ptr() as *mut u8, 2), CKR_OK);
    assert_eq!(call!(C_SignUpdate, h, b"ta".as_ptr() as *mut u8, 2), CKR_OK);
    len = 0;
    assert_eq!(
        call!(C_SignFinal, h, std::ptr::null_mut(), &mut len),
        CKR_OK
    );
    len = 256;
    assert_eq!(call!(C_SignFinal, h, sig.as_mut_ptr(), &mut len), CKR_OK);
    rsa_key()
        .to_public_key()
        .pkcs1v15_verify::<Sha256>(msg, &sig)
        .unwrap();
    // Single-part mechanisms refuse multi-part calls (and the operation ends).
    let mut raw = mech(CKM_RSA_PKCS);
    assert_eq!(call!(C_SignInit, h, &mut raw, k), CKR_OK);
    assert_eq!(
        call!(C_SignUpdate, h, b"x".as_ptr() as *mut u8, 1),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(call!(C_SignInit, h, &mut raw, k), CKR_OK);
    // Bad handles and mechanisms.
    let h2 = open_session(false);
    assert_eq!(
        call!(C_SignInit, h2, &mut m, 999_999),
        CKR_KEY_HANDLE_INVALID
    );
    let mut md5 = mech(CKM_MD5_RSA_PKCS);
    assert_eq!(call!(C_SignInit, h2, &mut md5, k), CKR_MECHANISM_INVALID);
    assert_eq!(
        call!(C_SignInit, h2, std::ptr::null_mut(), k),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(C_SignInit, 999_999, &mut m, k),
        CKR_SESSION_HANDLE_INVALID
    );
}

#[test]
fn decrypt_and_encrypt() {
    let _f = Fixture::new();
    let (h, k, p) = setup(false);
    let public = rsa_key().to_public_key();
    let secret = b"a secret for the cells to never see";
    // PKCS#1 v1.5.
    let c = public.pkcs1v15_encrypt(secret).unwrap();
    assert_eq!(decrypt(h, &mut mech(CKM_RSA_PKCS), k, &c).unwrap(), secret);
    assert_eq!(
        decrypt(h, &mut mech(CKM_RSA_PKCS), k, &c[1..]).unwrap_err(),
        CKR_ENCRYPTED_DATA_LEN_RANGE
    );
    // OAEP SHA-256 with source 0 (COMPAT item 7), SHA-1, and a label with MGF1-SHA1.
    let c = public.oaep_encrypt::<Sha256>(secret).unwrap();
    let mut op = CK_RSA_PKCS_OAEP_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        source: 0,
        pSourceData: std::ptr::null_mut(),
        ulSourceDataLen: 0,
    };
    assert_eq!(
        decrypt(h, &mut mech_with(CKM_RSA_PKCS_OAEP, &mut op), k, &c).unwrap(),
        secret
    );
    let c = public.oaep_encrypt::<sha1::Sha1>(secret).unwrap();
    let mut op1 = CK_RSA_PKCS_OAEP_PARAMS {
        hashAlg: CKM_SHA_1,
        mgf: CKG_MGF1_SHA1,
        source: CKZ_DATA_SPECIFIED,
        pSourceData: std::ptr::null_mut(),
        ulSourceDataLen: 0,
    };
    assert_eq!(
        decrypt(h, &mut mech_with(CKM_RSA_PKCS_OAEP, &mut op1), k, &c).unwrap(),
        secret
    );
    let mut label = *b"my label";
    let c = public
        .encrypt(
            &mut getrandom::SysRng,
            Oaep::<Sha256, sha1::Sha1>::new_with_mgf_hash_and_label(label.to_vec()),
            secret,
        )
        .unwrap();
    let mut opl = CK_RSA_PKCS_OAEP_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA1,
        source: CKZ_DATA_SPECIFIED,
        pSourceData: label.as_mut_ptr() as *mut _,
        ulSourceDataLen: 8,
    };
    assert_eq!(
        decrypt(h, &mut mech_with(CKM_RSA_PKCS_OAEP, &mut opl), k, &c).unwrap(),
        secret
    );
    // Wrong label → CKR_ENCRYPTED_DATA_INVALID.
    assert_eq!(
        decrypt(h, &mut mech_with(CKM_RSA_PKCS_OAEP, &mut op), k, &c).unwrap_err(),
        CKR_ENCRYPTED_DATA_INVALID
    );
    // Too-small buffer: the length is reported, the operation stays, the retry succeeds.
    let c = public.oaep_encrypt::<Sha256>(secret).unwrap();
    assert_eq!(
        call!(
            C_DecryptInit,
            h,
            &mut mech_with(CKM_RSA_PKCS_OAEP, &mut op),
            k
        ),
        CKR_OK
    );
    let mut out = [0u8; 64];
    let mut len: CK_ULONG = 4;
    assert_eq!(
        call!(
            C_Decrypt,
            h,
            c.as_ptr() as *mut u8,
            256,
            out.as_mut_ptr(),
            &mut len
        ),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len as usize, secret.len());
    assert_eq!(
        call!(
            C_Decrypt,
            h,
            c.as_ptr() as *mut u8,
            256,
            out.as_mut_ptr(),
            &mut len
        ),
        CKR_OK
    );
    assert_eq!(&out[..len as usize], secret);
    // Encrypt with the public key object; `rsa` decrypts.
    for (m, dec) in [(CKM_RSA_PKCS, 0), (CKM_RSA_PKCS_OAEP, 1)] {
        let mut mm = if dec == 0 {
            mech(m)
        } else {
            mech_with(m, &mut op)
        };
        assert_eq!(call!(C_EncryptInit, h, &mut mm, p), CKR_OK);
        let mut c = [0u8; 256];
        let mut len: CK_ULONG = 256;
        assert_eq!(
            call!(
                C_Encrypt,
                h,
                secret.as_ptr() as *mut u8,
                secret.len() as CK_ULONG,
                c.as_mut_ptr(),
                &mut len
            ),
            CKR_OK
        );
        let plain = if dec == 0 {
            rsa_key().decrypt(Pkcs1v15Encrypt, &c).unwrap()
        } else {
            rsa_key().oaep_decrypt::<Sha256>(&c).unwrap()
        };
        assert_eq!(plain, secret);
    }
    // Decrypting with a public key is inconsistent.
    assert_eq!(
        call!(C_DecryptInit, h, &mut mech(CKM_RSA_PKCS), p),
        CKR_KEY_TYPE_INCONSISTENT
    );
}

#[test]
fn one_key_from_eight_threads() {
    let _f = Fixture::new();
    let (_, k, _) = setup(false);
    let public = rsa_key().to_public_key();
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let public = &public;
            s.spawn(move || {
                let h = open_session(false);
                for i in 0..3u8 {
                    let msg = [t, i];
                    let sig = sign(h, &mut mech(CKM_SHA256_RSA_PKCS), k, &msg).unwrap();
                    public.pkcs1v15_verify::<Sha256>(&msg, &sig).unwrap();
                }
                assert_eq!(call!(C_CloseSession, h), CKR_OK);
            });
        }
    });
}

#[test]
fn cell_outage_fails_fast_and_recovers() {
    let mut f = Fixture::new();
    let (h, k, _) = setup(false);
    let msg = b"outage";
    sign(h, &mut mech(CKM_SHA256_RSA_PKCS), k, msg).unwrap();
    f.bed.stop_cell(1);
    let t = Instant::now();
    assert_eq!(
        sign(h, &mut mech(CKM_SHA256_RSA_PKCS), k, msg).unwrap_err(),
        CKR_DEVICE_ERROR
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    let mut ti = std::mem::MaybeUninit::<CK_TOKEN_INFO>::zeroed();
    assert_eq!(call!(C_GetTokenInfo, 0, ti.as_mut_ptr()), CKR_OK);
    let ti = unsafe { ti.assume_init() };
    assert_eq!(&ti.label[..12], b"keyfrag-test");
    assert_eq!(ti.flags & CKF_TOKEN_INITIALIZED, CKF_TOKEN_INITIALIZED);
    let mut si = std::mem::MaybeUninit::<CK_SLOT_INFO>::zeroed();
    assert_eq!(call!(C_GetSlotInfo, 0, si.as_mut_ptr()), CKR_OK);
    f.bed.start_cell(1);
    let public = rsa_key().to_public_key();
    let sig = sign(h, &mut mech(CKM_SHA256_RSA_PKCS), k, msg).unwrap();
    public.pkcs1v15_verify::<Sha256>(msg, &sig).unwrap();
}
