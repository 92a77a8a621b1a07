//! Proactive refresh as pure functions: deals among three parties leave the key unchanged and
//! every share new; shares of two epochs do not combine; the check catches a pending epoch
//! that lost a delta; the check input and the check encoding are strict.

mod common;

use common::{key1024, key2048, private_op_with, reconstruct, trim};
use keyfrag_core::Error;
use keyfrag_core::refresh::{
    CheckPartials, Deal, check_input, delta_bits, delta_len, product_matches_key, products_match,
};
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_share::RsaShare;

/// One whole refresh among `shares.len()` parties: every party deals, every party applies.
fn refresh(shares: &[RsaShare], bits: usize) -> Vec<RsaShare> {
    let n = shares.len();
    let deals: Vec<Deal> = (0..n).map(|i| Deal::new(i, n, bits).unwrap()).collect();
    (0..n)
        .map(|j| {
            let received: Vec<&[u8]> = deals
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != j)
                .map(|(_, d)| d.peers().find(|(to, _)| *to == j).unwrap().1.expose())
                .collect();
            deals[j].apply(&shares[j], &received).unwrap()
        })
        .collect()
}

#[test]
fn a_refresh_keeps_the_key_and_changes_every_share() {
    for f in [key1024(), key2048()] {
        let bits = f.public.bits();
        let mut shares = f.shares.clone();
        for _ in 0..3 {
            let next = refresh(&shares, bits);
            for (old, new) in shares.iter().zip(&next) {
                assert_ne!(old, new, "every share changes");
                assert_eq!(new.magnitude.len(), old.magnitude.len(), "fixed width");
            }
            assert_eq!(reconstruct(&next), trim(&f.d()), "Σ shares is still d");
            shares = next;
        }
        let x = vec![0x17u8; f.public.size() - 1];
        assert_eq!(
            private_op_with(&f.public, &f.modulus, &shares, &x),
            f.private_op(&x)
        );
    }
}

#[test]
fn shares_of_two_epochs_do_not_combine() {
    let f = key1024();
    let bits = f.public.bits();
    let new = refresh(&f.shares, bits);
    let mixed = [new[0].clone(), f.shares[1].clone(), f.shares[2].clone()];
    let blinded = blind(&f.public, &[0x33u8; 100]).unwrap();
    let partials: Vec<Vec<u8>> = mixed
        .iter()
        .map(|s| rsa_partial(&f.modulus, &blinded.input, s).unwrap())
        .collect();
    assert_eq!(
        combine(&f.public, &blinded, &partials).unwrap_err(),
        Error::VerifyFailed
    );
}

/// Every party's check partials on the run's input, with the pending shares given.
fn checks(f: &common::Fixture, pending: &[RsaShare], x: &[u8]) -> Vec<CheckPartials> {
    f.shares
        .iter()
        .zip(pending)
        .map(|(old, new)| CheckPartials {
            old: rsa_partial(&f.modulus, x, old).unwrap(),
            pending: rsa_partial(&f.modulus, x, new).unwrap(),
        })
        .collect()
}

#[test]
fn the_check_accepts_a_complete_refresh_and_catches_a_lost_delta() {
    let f = key1024();
    let bits = f.public.bits();
    let x = check_input(&f.modulus, "ab", "session-1", 1).unwrap();
    let good = refresh(&f.shares, bits);
    let ok = checks(f, &good, &x);
    assert!(products_match(&f.modulus, &ok).unwrap());
    let pending: Vec<&[u8]> = ok.iter().map(|c| c.pending.as_slice()).collect();
    assert!(product_matches_key(&f.public, &x, &pending).unwrap());

    // Party 2 applies only its own delta (the relay dropped what its peers dealt to it).
    let deals: Vec<Deal> = (0..3).map(|i| Deal::new(i, 3, bits).unwrap()).collect();
    let mut bad = good.clone();
    let zero = vec![0u8; delta_len(bits)];
    bad[2] = deals[2]
        .apply(&f.shares[2], &[zero.as_slice(), zero.as_slice()])
        .unwrap();
    let caught = checks(f, &bad, &x);
    assert!(!products_match(&f.modulus, &caught).unwrap());
    let pending: Vec<&[u8]> = caught.iter().map(|c| c.pending.as_slice()).collect();
    assert!(!product_matches_key(&f.public, &x, &pending).unwrap());
}

#[test]
fn deltas_have_full_width_and_apply_is_strict() {
    let f = key2048();
    let bits = f.public.bits();
    let deal = Deal::new(0, 3, bits).unwrap();
    let bodies: Vec<_> = deal.peers().collect();
    assert_eq!(
        bodies.iter().map(|(j, _)| *j).collect::<Vec<_>>(),
        vec![1, 2]
    );
    for (_, b) in &bodies {
        assert_eq!(b.len(), delta_len(bits));
        assert!(b.expose()[0] <= 1, "sign byte");
    }
    // Uniform over |N| + 128 bits: over a few deals some magnitude reaches the top byte.
    let top = (0..8)
        .flat_map(|_| {
            Deal::new(0, 3, bits)
                .unwrap()
                .peers()
                .map(|(_, b)| b.expose()[1])
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap();
    assert!(
        top > 0,
        "a {}-bit magnitude uses its top byte",
        delta_bits(bits)
    );
    assert!(format!("{deal:?}").starts_with("Deal {"));

    let ok = vec![0u8; delta_len(bits)];
    let short = vec![0u8; delta_len(bits) - 1];
    let mut bad_sign = ok.clone();
    bad_sign[0] = 2;
    assert!(deal.apply(&f.shares[0], &[&ok]).is_err(), "one per peer");
    assert!(deal.apply(&f.shares[0], &[&ok, &short]).is_err());
    assert!(deal.apply(&f.shares[0], &[&ok, &bad_sign]).is_err());
    assert!(deal.apply(&f.shares[0], &[&ok, &ok]).is_ok());
    assert!(Deal::new(3, 3, bits).is_err());
    assert!(Deal::new(0, 1, bits).is_err());
}

#[test]
fn the_check_input_is_bound_to_key_session_and_epoch() {
    let f = key1024();
    let x = check_input(&f.modulus, "ab", "s", 1).unwrap();
    assert_eq!(x.len(), f.public.size());
    assert_eq!(x, check_input(&f.modulus, "ab", "s", 1).unwrap());
    for other in [
        check_input(&f.modulus, "ac", "s", 1).unwrap(),
        check_input(&f.modulus, "ab", "t", 1).unwrap(),
        check_input(&f.modulus, "ab", "s", 2).unwrap(),
        check_input(&key2048().modulus, "ab", "s", 1).unwrap(),
    ] {
        assert_ne!(x, other);
    }
    // Equal-length big-endian: byte order is numeric order.
    assert!(x < f.modulus);
}

#[test]
fn check_partials_encoding_is_strict() {
    let c = CheckPartials {
        old: vec![1; 128],
        pending: vec![2; 128],
    };
    let bytes = c.to_bytes();
    assert_eq!(CheckPartials::from_bytes(&bytes, 128).unwrap(), c);
    assert!(CheckPartials::from_bytes(&bytes, 127).is_err());
    assert!(CheckPartials::from_bytes(&bytes[..bytes.len() - 1], 128).is_err());
    let mut v = bytes.clone();
    v[0] = 9;
    assert!(CheckPartials::from_bytes(&v, 128).is_err());
    let mut long = bytes.clone();
    long.push(0);
    assert!(CheckPartials::from_bytes(&long, 128).is_err());
    // A partial at or above N is refused by the product check, not silently reduced.
    let f = key1024();
    let above = CheckPartials {
        old: f.modulus.clone(),
        pending: f.modulus.clone(),
    };
    assert!(products_match(&f.modulus, &[above]).is_err());
    assert!(products_match(&f.modulus, &[]).is_err());
}
