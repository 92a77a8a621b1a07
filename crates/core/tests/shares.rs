//! Shares, partials and combination against the `rsa` crate's keys and raw operations.

mod common;

use common::{SysRng, UnwrapErr, key1024, key2048, keys, private_op_with, reconstruct, trim};
use crypto_bigint::BoxedUint;
use keyfrag_core::Error;
use keyfrag_core::customer::CustomerSeed;
use keyfrag_core::rsa_combine::{
    BlindingPair, BlindingPool, blind, blind_with, combine, combine_with_inverse, input_inverse,
};
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::{
    RsaShare, SHARE_HIDING_BITS, magnitude_fits, share_bytes, share_exponent_bits, split_exponent,
    split_exponent_around,
};
use keyfrag_core::secret::SecretBytes;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};

/// A random x < N (top byte cleared so it is below N).
fn random_below(k: usize) -> Vec<u8> {
    let mut x = vec![0u8; k];
    keyfrag_core::random::fill(&mut x).unwrap();
    x[0] = 0;
    x
}

#[test]
fn raw_public_matches_rsa_hazmat() {
    for f in keys() {
        let x = random_below(f.public.size());
        let ours = f.public.raw_public(&x).unwrap();
        let m = BoxedUint::from_be_slice_vartime(&x);
        let theirs = rsa::hazmat::rsa_encrypt(&f.rsa_public(), &m).unwrap();
        assert_eq!(ours.len(), f.public.size());
        assert_eq!(trim(&ours), trim(&theirs.to_be_bytes()));
        assert_eq!(f.public.raw_public(&f.modulus), Err(Error::DataTooLarge));
    }
}

#[test]
fn public_key_accessors_and_checks() {
    let f = key2048();
    assert_eq!(f.public.bits(), 2048);
    assert_eq!(f.public.size(), 256);
    assert_eq!(f.public.modulus(), f.modulus);
    assert_eq!(f.public.public_exponent(), vec![1, 0, 1]);
    // Leading zeros are accepted on input.
    let mut padded = vec![0u8, 0];
    padded.extend_from_slice(&f.modulus);
    assert_eq!(RsaPublic::new(&padded, &[0, 1, 0, 1]).unwrap(), f.public);
    let mut even = f.modulus.clone();
    *even.last_mut().unwrap() &= 0xfe;
    assert!(RsaPublic::new(&even, &[1, 0, 1]).is_err());
    assert!(RsaPublic::new(&f.modulus[..60], &[1, 0, 1]).is_err()); // 480 bits
    assert!(RsaPublic::new(&f.modulus, &[1, 0, 0]).is_err()); // even e
    assert!(RsaPublic::new(&f.modulus, &[1]).is_err()); // e < 3
    assert!(RsaPublic::new(&f.modulus, &[]).is_err());
    assert!(RsaPublic::new(&f.modulus, &f.modulus).is_err()); // e ≥ N
    assert!(RsaPublic::new(&f.modulus, &[3]).is_ok());
}

#[test]
fn distributed_private_op_equals_x_to_the_d() {
    for f in keys() {
        let x = random_below(f.public.size());
        let y = f.private_op(&x);
        assert_eq!(y.len(), f.public.size());
        let expected = rsa::hazmat::rsa_decrypt(
            None::<&mut UnwrapErr<SysRng>>,
            &f.private,
            &BoxedUint::from_be_slice_vartime(&x),
        )
        .unwrap();
        assert_eq!(trim(&y), trim(&expected.to_be_bytes()));
    }
}

/// The module's fast path — a pair from the pool, x'⁻¹ in variable time while the cells
/// work — gives the same x^d as the `rsa` crate.
#[test]
fn pooled_blinding_and_precomputed_inverse_equal_x_to_the_d() {
    for f in keys() {
        let pool = BlindingPool::new(f.public.clone(), 2);
        assert_eq!(pool.refill(2).unwrap(), 2);
        for _ in 0..3 {
            let x = random_below(f.public.size());
            let blinded = blind_with(&f.public, &x, pool.take().unwrap()).unwrap();
            let inverse = input_inverse(&f.public, &blinded.input).unwrap();
            let partials: Vec<Vec<u8>> = f
                .shares
                .iter()
                .map(|s| rsa_partial(&f.modulus, &blinded.input, s).unwrap())
                .collect();
            let y = combine_with_inverse(&f.public, &blinded, &partials, &inverse).unwrap();
            let expected = rsa::hazmat::rsa_decrypt(
                None::<&mut UnwrapErr<SysRng>>,
                &f.private,
                &BoxedUint::from_be_slice_vartime(&x),
            )
            .unwrap();
            assert_eq!(trim(y.expose()), trim(&expected.to_be_bytes()));
        }
    }
    // Another key's pair or inverse is refused, never silently used.
    let (a, b) = (key1024(), key2048());
    let x = random_below(b.public.size());
    let wrong_pair = BlindingPair::new(&a.public).unwrap();
    assert!(matches!(
        blind_with(&b.public, &x, wrong_pair),
        Err(Error::InvalidInput(_))
    ));
    let blinded = blind(&b.public, &x).unwrap();
    let partials: Vec<Vec<u8>> = b
        .shares
        .iter()
        .map(|s| rsa_partial(&b.modulus, &blinded.input, s).unwrap())
        .collect();
    let small = random_below(a.public.size());
    let wrong_inverse = input_inverse(&a.public, &small).unwrap();
    assert!(matches!(
        combine_with_inverse(&b.public, &blinded, &partials, &wrong_inverse),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        input_inverse(&b.public, &b.modulus).unwrap_err(),
        Error::InvalidInput("blinded input not below the modulus")
    );
}

#[test]
fn shares_sum_to_d_and_have_fixed_width() {
    for f in keys() {
        let bits = f.public.bits();
        assert_eq!(f.shares.len(), 3);
        for s in &f.shares {
            assert_eq!(s.magnitude.len(), share_bytes(bits));
        }
        assert_eq!(reconstruct(&f.shares), trim(&f.d()));
        // The random shares are full width (|N| + 160 bits), not short: over a few splits
        // the widest comes within a few bits of the bound and none exceeds it.
        let mut widest = 0;
        for _ in 0..8 {
            let shares = split_exponent(&f.d(), bits, 3).unwrap();
            assert_eq!(reconstruct(&shares), trim(&f.d()));
            for s in &shares[..2] {
                let w = BoxedUint::from_be_slice_vartime(s.magnitude.expose()).bit_width_vartime();
                assert!(w as usize <= bits + SHARE_HIDING_BITS);
                widest = widest.max(w as usize);
            }
            let last = BoxedUint::from_be_slice_vartime(shares[2].magnitude.expose());
            assert!((last.bit_width_vartime() as usize) < share_exponent_bits(bits));
        }
        assert!(
            widest >= bits + SHARE_HIDING_BITS - 8,
            "widest share {widest} bits"
        );
    }
}

#[test]
fn negative_shares_occur_and_work() {
    let f = key1024();
    let bits = f.public.bits();
    // Each random share's sign is a fair coin and the last share is negative whenever the
    // others sum past d, so a split with both kinds of negative share comes quickly.
    let shares = (0..200)
        .map(|_| split_exponent(&f.d(), bits, 4).unwrap())
        .find(|s| s[3].negative && s[..3].iter().any(|x| x.negative))
        .expect("no split with negative shares in 200 tries");
    let x = random_below(f.public.size());
    let y = private_op_with(&f.public, &f.modulus, &shares, &x);
    assert_eq!(trim(&f.public.raw_public(&y).unwrap()), trim(&x));
    assert_eq!(reconstruct(&shares), trim(&f.d()));
}

#[test]
fn split_rejects_bad_arguments() {
    let f = key1024();
    let bits = f.public.bits();
    assert!(split_exponent(&f.d(), bits, 1).is_err());
    assert!(split_exponent(&f.d(), bits, 0).is_err());
    assert!(split_exponent(&[0u8; 128], bits, 3).is_err());
    assert!(split_exponent(&[], bits, 3).is_err());
    // d wider than the modulus.
    assert!(split_exponent(&[1u8; 129], bits, 3).is_err());
    assert!(split_exponent(&f.d(), 512, 3).is_err());
    // Two parties is the minimum and works.
    let two = split_exponent(&f.d(), bits, 2).unwrap();
    assert_eq!(reconstruct(&two), trim(&f.d()));
}

#[test]
fn cells_shares_around_a_customer_share_sign_only_with_it() {
    for f in keys() {
        let bits = f.public.bits();
        let seed = CustomerSeed::generate().unwrap();
        let c = seed.rsa_share("key-uid", bits).unwrap();
        let cells = split_exponent_around(&f.d(), bits, 3, &c).unwrap();
        assert_eq!(cells.len(), 3);
        assert!(
            cells
                .iter()
                .all(|s| magnitude_fits(s.magnitude.expose(), bits))
        );
        let x = random_below(f.public.size());
        let expected = f.private_op(&x);
        let mut all = cells.clone();
        all.push(c.clone());
        assert_eq!(reconstruct(&all), trim(&f.d()));
        assert_eq!(private_op_with(&f.public, &f.modulus, &all, &x), expected);
        // Every cell together, without the customer's share: not x^d.
        let blinded = blind(&f.public, &x).unwrap();
        let partials: Vec<Vec<u8>> = cells
            .iter()
            .map(|s| rsa_partial(&f.modulus, &blinded.input, s).unwrap())
            .collect();
        assert_eq!(
            combine(&f.public, &blinded, &partials).unwrap_err(),
            Error::VerifyFailed
        );
        // One cell share is d − c itself.
        let one = split_exponent_around(&f.d(), bits, 1, &c).unwrap();
        assert_eq!(reconstruct(&[one[0].clone(), c.clone()]), trim(&f.d()));
    }
}

#[test]
fn share_debug_is_redacted() {
    let s = &key1024().shares[0];
    let dbg = format!("{s:?}");
    assert!(dbg.contains("redacted"));
    assert!(!dbg.contains("negative"));
    let b = blind(&key1024().public, &[5]).unwrap();
    assert!(format!("{b:?}").contains("redacted"));
}

#[test]
fn partial_rejects_bad_inputs() {
    let f = key1024();
    let s = &f.shares[0];
    let n = &f.modulus;
    assert!(rsa_partial(n, &[0], s).is_err());
    assert!(rsa_partial(n, &[], s).is_err());
    assert!(rsa_partial(n, n, s).is_err()); // x = N
    let mut big = vec![1u8];
    big.extend_from_slice(n);
    assert!(rsa_partial(n, &big, s).is_err()); // longer than N
    // x sharing a factor with N (here p itself) is not invertible.
    let p = f.private.primes()[0].as_ref().to_be_bytes();
    assert!(rsa_partial(n, &p, s).is_err());
    // Magnitude of the wrong width, or with bits beyond the fixed width.
    let short = RsaShare {
        negative: false,
        magnitude: SecretBytes::new(s.magnitude.expose()[1..].to_vec()),
    };
    assert!(rsa_partial(n, &[2], &short).is_err());
    // A magnitude with bits above the fixed width (possible when the width is not a whole
    // number of bytes) is refused rather than silently truncated.
    let bits = 1020;
    let mut wide = vec![0u8; share_bytes(bits)];
    assert!(magnitude_fits(&wide, bits));
    wide[0] = 0x0f;
    assert!(magnitude_fits(&wide, bits));
    wide[0] = 0x10;
    assert!(!magnitude_fits(&wide, bits));
    assert!(!magnitude_fits(&wide[1..], bits));
    // Output is exactly k bytes.
    assert_eq!(rsa_partial(n, &[2], s).unwrap().len(), 128);
}

#[test]
fn partial_hides_share_parity() {
    // x = N − 1 ≡ −1: x^(dᵢ) would be ±1 by the parity of dᵢ; x^(2dᵢ) is always 1.
    let f = key1024();
    let mut minus_one = f.modulus.clone();
    *minus_one.last_mut().unwrap() -= 1;
    for s in &f.shares {
        let y = rsa_partial(&f.modulus, &minus_one, s).unwrap();
        assert_eq!(trim(&y), &[1]);
    }
}

#[test]
fn wrong_partial_fails_verification() {
    let f = key1024();
    let x = random_below(f.public.size());
    let blinded = blind(&f.public, &x).unwrap();
    let mut partials: Vec<Vec<u8>> = f
        .shares
        .iter()
        .map(|s| rsa_partial(&f.modulus, &blinded.input, s).unwrap())
        .collect();
    assert!(combine(&f.public, &blinded, &partials).is_ok());
    // A partial computed with another share (a faulty or stale cell).
    partials[1] = rsa_partial(&f.modulus, &blinded.input, &f.shares[0]).unwrap();
    assert_eq!(
        combine(&f.public, &blinded, &partials),
        Err(Error::VerifyFailed)
    );
    // A missing partial.
    assert_eq!(
        combine(&f.public, &blinded, &partials[..2]),
        Err(Error::VerifyFailed)
    );
    // A partial on the unblinded x.
    let unblinded: Vec<Vec<u8>> = f
        .shares
        .iter()
        .map(|s| rsa_partial(&f.modulus, &x, s).unwrap())
        .collect();
    assert_eq!(
        combine(&f.public, &blinded, &unblinded),
        Err(Error::VerifyFailed)
    );
    // Malformed partials.
    partials[1] = vec![0xff; 128];
    assert!(matches!(
        combine(&f.public, &blinded, &partials),
        Err(Error::InvalidInput(_))
    ));
    partials[1] = vec![1; 127];
    assert!(matches!(
        combine(&f.public, &blinded, &partials),
        Err(Error::InvalidInput(_))
    ));
    assert!(combine(&f.public, &blinded, &[]).is_err());
    // A blinded input for another key.
    assert!(combine(&key2048().public, &blinded, &partials).is_err());
}

#[test]
fn blind_checks_range_and_randomises() {
    let f = key1024();
    assert_eq!(
        blind(&f.public, &f.modulus).unwrap_err(),
        Error::DataTooLarge
    );
    assert!(blind(&f.public, &[0, 0]).is_err());
    let a = blind(&f.public, &[7]).unwrap();
    let b = blind(&f.public, &[7]).unwrap();
    assert_eq!(a.input.len(), 128);
    assert_ne!(a.input, b.input);
    // Moving the input out of a Blinded still works (its secrets sit in an inner type).
    let input: Vec<u8> = a.input;
    assert_eq!(input.len(), 128);
}

#[test]
fn works_with_primes_from_the_rsa_crate_for_small_e() {
    // e = 3 exercises the correction exponent (e+1)/2 = 2.
    let key =
        rsa::PrivateKey::new_with_exp(&mut UnwrapErr(SysRng), 1024, BoxedUint::from(3u64)).unwrap();
    let n = key.n().as_ref().to_be_bytes_trimmed_vartime();
    let public = RsaPublic::new(&n, &[3]).unwrap();
    let shares = split_exponent(&key.d().to_be_bytes(), 1024, 5).unwrap();
    let x = random_below(128);
    let y = private_op_with(&public, &n, &shares, &x);
    assert_eq!(trim(&public.raw_public(&y).unwrap()), trim(&x));
}
