//! OAEP and PKCS#1 v1.5 encryption: `rsa` encrypts, the shares decrypt, and vice versa.

mod common;

use common::{SysRng, UnwrapErr, key1024, key2048, keys};
use keyfrag_core::Error;
use keyfrag_core::hash::HashAlg;
use keyfrag_core::padding::{oaep, pkcs1v15};
use rsa::sha2::{Sha256, Sha384};
use rsa::{Oaep, Pkcs1v15Encrypt};
use sha1::Sha1;

const MSG: &[u8] = b"a data key, say 32 bytes long...";

fn rsa_oaep(alg: HashAlg, label: Option<&[u8]>) -> Oaep<Sha256> {
    assert_eq!(alg, HashAlg::Sha256);
    match label {
        Some(l) => Oaep::<Sha256>::new_with_label(l.to_vec()),
        None => Oaep::<Sha256>::new(),
    }
}

#[test]
fn rsa_oaep_ciphertext_decrypts_through_shares() {
    for f in keys() {
        let k = f.public.size();
        let pk = f.rsa_public();
        for label in [None, Some(&b"context label"[..])] {
            let l = label.unwrap_or(b"");
            // SHA-256.
            let c = pk
                .encrypt(
                    &mut UnwrapErr(SysRng),
                    rsa_oaep(HashAlg::Sha256, label),
                    MSG,
                )
                .unwrap();
            let em = f.private_op(&c);
            let m = oaep::decode(&em, k, HashAlg::Sha256, HashAlg::Sha256, l).unwrap();
            assert_eq!(m.expose(), MSG);
            // The wrong label or hash is the one decryption error.
            assert_eq!(
                oaep::decode(&em, k, HashAlg::Sha256, HashAlg::Sha256, b"wrong").unwrap_err(),
                Error::Decryption
            );
            assert_eq!(
                oaep::decode(&em, k, HashAlg::Sha1, HashAlg::Sha1, l).unwrap_err(),
                Error::Decryption
            );
            // SHA-1.
            let p = match label {
                Some(l) => Oaep::<Sha1>::new_with_label(l.to_vec()),
                None => Oaep::<Sha1>::new(),
            };
            let c = pk.encrypt(&mut UnwrapErr(SysRng), p, MSG).unwrap();
            let em = f.private_op(&c);
            let m = oaep::decode(&em, k, HashAlg::Sha1, HashAlg::Sha1, l).unwrap();
            assert_eq!(m.expose(), MSG);
        }
        // Separate MGF1 hash (SHA-384 label hash, SHA-1 MGF1), as in AndroidKeyStore.
        let p = Oaep::<Sha384, Sha1>::new_with_mgf_hash_and_label(b"x".to_vec());
        let c = pk.encrypt(&mut UnwrapErr(SysRng), p, b"").unwrap();
        let em = f.private_op(&c);
        let m = oaep::decode(&em, k, HashAlg::Sha384, HashAlg::Sha1, b"x").unwrap();
        assert!(m.is_empty());
    }
}

#[test]
fn our_oaep_encoding_decrypts_with_rsa() {
    for f in keys() {
        let k = f.public.size();
        for (label, l) in [(None, &b""[..]), (Some(&b"lbl"[..]), &b"lbl"[..])] {
            let em = oaep::encode(MSG, k, HashAlg::Sha256, HashAlg::Sha256, l).unwrap();
            let c = f.public.raw_public(&em).unwrap();
            let m = f
                .private
                .decrypt(rsa_oaep(HashAlg::Sha256, label), &c)
                .unwrap();
            assert_eq!(m, MSG);
            let em = oaep::encode(MSG, k, HashAlg::Sha1, HashAlg::Sha1, l).unwrap();
            let c = f.public.raw_public(&em).unwrap();
            let p = match label {
                Some(l) => Oaep::<Sha1>::new_with_label(l.to_vec()),
                None => Oaep::<Sha1>::new(),
            };
            assert_eq!(f.private.decrypt(p, &c).unwrap(), MSG);
        }
    }
}

#[test]
fn oaep_limits_and_corruption() {
    let k = 128;
    let max = k - 2 * 32 - 2;
    assert!(oaep::encode(&vec![7; max], k, HashAlg::Sha256, HashAlg::Sha256, b"").is_ok());
    assert_eq!(
        oaep::encode(&vec![7; max + 1], k, HashAlg::Sha256, HashAlg::Sha256, b"").unwrap_err(),
        Error::DataTooLarge
    );
    assert!(oaep::encode(b"", 65, HashAlg::Sha256, HashAlg::Sha256, b"").is_err());
    let em = oaep::encode(MSG, k, HashAlg::Sha256, HashAlg::Sha256, b"").unwrap();
    assert_eq!(
        oaep::decode(&em, k, HashAlg::Sha256, HashAlg::Sha256, b"")
            .unwrap()
            .expose(),
        MSG
    );
    // Every corruption — leading byte, seed, DB, length — gives the same single error.
    for i in [0usize, 1, 40, 100, 127] {
        let mut bad = em.clone();
        bad[i] ^= 0x40;
        assert_eq!(
            oaep::decode(&bad, k, HashAlg::Sha256, HashAlg::Sha256, b"").unwrap_err(),
            Error::Decryption
        );
    }
    assert_eq!(
        oaep::decode(&em[1..], k, HashAlg::Sha256, HashAlg::Sha256, b"").unwrap_err(),
        Error::Decryption
    );
    assert_eq!(
        oaep::decode(&[0; 128], k, HashAlg::Sha256, HashAlg::Sha256, b"").unwrap_err(),
        Error::Decryption
    );
}

#[test]
fn pkcs1v15_encryption_round_trips_both_ways() {
    for f in keys() {
        let k = f.public.size();
        // rsa encrypts, the shares decrypt.
        let c = f
            .rsa_public()
            .encrypt(&mut UnwrapErr(SysRng), Pkcs1v15Encrypt, MSG)
            .unwrap();
        let em = f.private_op(&c);
        assert_eq!(pkcs1v15::decrypt_unpad_implicit(&em, k).expose(), MSG);
        // We pad, rsa decrypts.
        let em = pkcs1v15::encrypt_pad(MSG, k).unwrap();
        assert_eq!(&em[..2], &[0, 2]);
        assert!(em[2..k - MSG.len() - 1].iter().all(|&b| b != 0));
        let c = f.public.raw_public(&em).unwrap();
        assert_eq!(f.private.decrypt(Pkcs1v15Encrypt, &c).unwrap(), MSG);
        // Empty and maximal messages.
        for m in [vec![], vec![0u8; k - 11]] {
            let em = pkcs1v15::encrypt_pad(&m, k).unwrap();
            assert_eq!(pkcs1v15::decrypt_unpad_implicit(&em, k).expose(), &m[..]);
        }
        assert_eq!(
            pkcs1v15::encrypt_pad(&vec![1; k - 10], k).unwrap_err(),
            Error::DataTooLarge
        );
    }
}

#[test]
fn pkcs1v15_bad_ciphertext_gives_deterministic_synthetic_message() {
    let f = key2048();
    let k = f.public.size();
    // A random "ciphertext" decrypts to a block that is almost never validly padded.
    let mut c = vec![0u8; k];
    keyfrag_core::random::fill(&mut c).unwrap();
    c[0] = 0;
    let em = f.private_op(&c);
    assert_ne!(&em[..2], &[0, 2]);
    let first = pkcs1v15::decrypt_unpad_implicit(&em, k);
    // Decrypting the same ciphertext again (fresh blinding) gives the same answer, no error.
    let em2 = f.private_op(&c);
    assert_eq!(em, em2);
    let second = pkcs1v15::decrypt_unpad_implicit(&em2, k);
    assert_eq!(first, second);
    assert!(first.len() <= k - 11);
    // Another bad ciphertext gives another synthetic message.
    c[k - 1] ^= 1;
    let other = pkcs1v15::decrypt_unpad_implicit(&f.private_op(&c), k);
    assert_ne!(first, other);
}

#[test]
fn pkcs1v15_each_padding_defect_is_rejected_implicitly() {
    let k = key1024().public.size();
    let good = pkcs1v15::encrypt_pad(MSG, k).unwrap();
    let zero_at = k - MSG.len() - 1;
    let mut cases = Vec::new();
    let mut b = good.clone();
    b[0] = 1; // leading byte
    cases.push(b);
    let mut b = good.clone();
    b[1] = 1; // block type
    cases.push(b);
    let mut b = good.clone();
    b[zero_at] = 0x55; // no separator ... unless MSG contains a zero (it does not)
    cases.push(b);
    let mut b = good.clone();
    b[9] = 0; // PS of 7 bytes
    cases.push(b);
    for bad in cases {
        let a = pkcs1v15::decrypt_unpad_implicit(&bad, k);
        assert_ne!(a.expose(), MSG);
        assert_eq!(a, pkcs1v15::decrypt_unpad_implicit(&bad, k));
        assert!(a.len() <= k - 11);
    }
    // PS of exactly 8 bytes is valid.
    let mut b = good.clone();
    b[10] = 0;
    assert_eq!(pkcs1v15::decrypt_unpad_implicit(&b, k).len(), k - 11);
    // Synthetic lengths vary across inputs (they are not a constant that would mark failure).
    let lens: std::collections::BTreeSet<usize> = (0u8..16)
        .map(|i| {
            let mut b = good.clone();
            b[1] = 3;
            b[50] = i;
            pkcs1v15::decrypt_unpad_implicit(&b, k).len()
        })
        .collect();
    assert!(lens.len() > 4);
    // Wrong-sized input (a public caller error) yields an empty message, not a panic.
    assert!(pkcs1v15::decrypt_unpad_implicit(&good[1..], k).is_empty());
}
