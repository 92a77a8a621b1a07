//! Signatures made through the shares, checked by the `rsa` crate; and the reverse.

mod common;

use common::{SysRng, UnwrapErr, key1024, keys};
use keyfrag_core::hash::HashAlg;
use keyfrag_core::padding::{pkcs1v15, pss};
use rsa::sha2::{Sha256, Sha384, Sha512};
use rsa::{Pkcs1v15Sign, Pss};
use sha1::Sha1;

const MSG: &[u8] = b"keyfrag: the whole key never exists";

#[test]
fn pkcs1v15_signature_verifies_with_rsa() {
    for f in keys() {
        let k = f.public.size();
        let pk = f.rsa_public();
        for alg in HashAlg::ALL {
            let h = alg.digest(MSG);
            let em = pkcs1v15::sign_pad(&alg.digest_info(&h), k).unwrap();
            let sig = f.private_op(&em);
            let scheme = match alg {
                HashAlg::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
                HashAlg::Sha224 => Pkcs1v15Sign::new::<rsa::sha2::Sha224>(),
                HashAlg::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
                HashAlg::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
                HashAlg::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
            };
            pk.verify(scheme, &h, &sig)
                .expect("rsa verifies our signature");
            // Our own verification path: public op, then compare the padding.
            let back = f.public.raw_public(&sig).unwrap();
            assert!(pkcs1v15::verify_pad(&alg.digest_info(&h), &back, k));
            let other = alg.digest(b"another message");
            assert!(!pkcs1v15::verify_pad(&alg.digest_info(&other), &back, k));
        }
        // Raw (unprefixed, CKM_RSA_PKCS) data.
        let em = pkcs1v15::sign_pad(b"raw data", k).unwrap();
        let sig = f.private_op(&em);
        pk.verify(Pkcs1v15Sign::new_unprefixed(), b"raw data", &sig)
            .unwrap();
    }
}

#[test]
fn rsa_pkcs1v15_signature_verifies_with_ours() {
    let f = key1024();
    let h = HashAlg::Sha256.digest(MSG);
    let sig = f.private.sign(Pkcs1v15Sign::new::<Sha256>(), &h).unwrap();
    let em = f.public.raw_public(&sig).unwrap();
    assert!(pkcs1v15::verify_pad(
        &HashAlg::Sha256.digest_info(&h),
        &em,
        128
    ));
}

#[test]
fn sign_pad_layout_and_limits() {
    let em = pkcs1v15::sign_pad(b"abc", 16).unwrap();
    assert_eq!(
        em,
        [
            0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, b'a', b'b', b'c'
        ]
    );
    assert!(pkcs1v15::sign_pad(&[0u8; 6], 16).is_err()); // needs ≥ 8 bytes of FF
    assert!(pkcs1v15::sign_pad(&[0u8; 5], 16).is_ok());
    assert!(pkcs1v15::sign_pad(&[], 10).is_err());
    assert!(!pkcs1v15::verify_pad(b"abc", &em[1..], 16));
}

#[test]
fn pss_signature_verifies_with_rsa() {
    for f in keys() {
        let pk = f.rsa_public();
        let bits = f.public.bits();
        for salt_len in [0usize, 20, 32] {
            let h = HashAlg::Sha256.digest(MSG);
            let em = pss::encode(&h, bits, HashAlg::Sha256, HashAlg::Sha256, salt_len).unwrap();
            assert_eq!(em.len(), f.public.size());
            let sig = f.private_op(&em);
            pk.verify(Pss::<Sha256>::new_with_salt(salt_len), &h, &sig)
                .expect("rsa verifies our PSS signature");
            let back = f.public.raw_public(&sig).unwrap();
            assert!(pss::verify(
                &h,
                &back,
                bits,
                HashAlg::Sha256,
                HashAlg::Sha256,
                salt_len
            ));
            // Wrong salt length, hash or message all fail.
            assert!(!pss::verify(
                &h,
                &back,
                bits,
                HashAlg::Sha256,
                HashAlg::Sha256,
                salt_len + 1
            ));
            assert!(!pss::verify(
                &h,
                &back,
                bits,
                HashAlg::Sha256,
                HashAlg::Sha1,
                salt_len
            ));
            let other = HashAlg::Sha256.digest(b"other");
            assert!(!pss::verify(
                &other,
                &back,
                bits,
                HashAlg::Sha256,
                HashAlg::Sha256,
                salt_len
            ));
        }
        let h = HashAlg::Sha1.digest(MSG);
        let em = pss::encode(&h, bits, HashAlg::Sha1, HashAlg::Sha1, 20).unwrap();
        pk.verify(Pss::<Sha1>::new_with_salt(20), &h, &f.private_op(&em))
            .unwrap();
    }
}

#[test]
fn rsa_pss_signature_verifies_with_ours() {
    for f in keys() {
        let bits = f.public.bits();
        for (salt_len, alg) in [
            (32usize, HashAlg::Sha256),
            (0, HashAlg::Sha256),
            (20, HashAlg::Sha512),
        ] {
            let h = alg.digest(MSG);
            let sig = match alg {
                HashAlg::Sha512 => f.private.sign_with_rng(
                    &mut UnwrapErr(SysRng),
                    Pss::<Sha512>::new_with_salt(salt_len),
                    &h,
                ),
                _ => f.private.sign_with_rng(
                    &mut UnwrapErr(SysRng),
                    Pss::<Sha256>::new_with_salt(salt_len),
                    &h,
                ),
            }
            .unwrap();
            let em = f.public.raw_public(&sig).unwrap();
            assert!(pss::verify(&h, &em, bits, alg, alg, salt_len));
            let mut bad = em.clone();
            bad[10] ^= 1;
            assert!(!pss::verify(&h, &bad, bits, alg, alg, salt_len));
        }
    }
}

#[test]
fn pss_separate_mgf_hash_and_odd_sizes() {
    // emBits a multiple of 8 (mod_bits ≡ 1 mod 8) gives a leading zero byte.
    for mod_bits in [1025usize, 1024, 1023, 2049] {
        let h = HashAlg::Sha384.digest(MSG);
        let em = pss::encode(&h, mod_bits, HashAlg::Sha384, HashAlg::Sha1, 17).unwrap();
        assert_eq!(em.len(), mod_bits.div_ceil(8));
        if mod_bits % 8 == 1 {
            assert_eq!(em[0], 0);
        }
        assert!(pss::verify(
            &h,
            &em,
            mod_bits,
            HashAlg::Sha384,
            HashAlg::Sha1,
            17
        ));
        assert!(!pss::verify(
            &h,
            &em,
            mod_bits,
            HashAlg::Sha384,
            HashAlg::Sha256,
            17
        ));
    }
    // Deterministic with a given salt; errors for a bad hash length or a salt that won't fit.
    let h = HashAlg::Sha256.digest(MSG);
    let a = pss::encode_with_salt(&h, 1024, HashAlg::Sha256, HashAlg::Sha256, b"salt").unwrap();
    let b = pss::encode_with_salt(&h, 1024, HashAlg::Sha256, HashAlg::Sha256, b"salt").unwrap();
    assert_eq!(a, b);
    assert!(pss::encode(&h[1..], 1024, HashAlg::Sha256, HashAlg::Sha256, 32).is_err());
    assert!(pss::encode(&h, 1024, HashAlg::Sha256, HashAlg::Sha256, 128 - 32 - 1).is_err());
    assert!(pss::encode(&h, 1024, HashAlg::Sha256, HashAlg::Sha256, 128 - 32 - 2).is_ok());
    assert!(pss::encode(&h, 0, HashAlg::Sha256, HashAlg::Sha256, 0).is_err());
}
