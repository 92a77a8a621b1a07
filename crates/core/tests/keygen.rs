//! Distributed RSA generation (keyfrag_core::keygen): n parties driven in-process through a
//! relay loop that re-encodes every message, then the key checked against the `rsa` crate.

mod common;

use std::collections::VecDeque;

use crypto_bigint::{BoxedUint, NonZero, Resize};
use keyfrag_core::hash::HashAlg;
use keyfrag_core::keygen::{
    Dest, GeneratedShare, KeygenError, KeygenParams, Message, Party, SeededRng, Step,
};
use keyfrag_core::padding::pkcs1v15;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::{RsaShare, magnitude_fits, share_bytes};
use rsa::Pkcs1v15Sign;
use rsa::sha2::Sha256;

/// One recorded relay hop: who sent it, who received it, the encoded bytes.
pub struct Hop {
    pub from: usize,
    pub to: usize,
    pub bytes: Vec<u8>,
}

pub struct Run {
    pub outputs: Vec<GeneratedShare>,
    pub parties: Vec<Party<SeededRng>>,
    pub hops: Vec<Hop>,
}

pub fn params(seed: u8, bits: usize, batch: usize) -> KeygenParams {
    let mut p = KeygenParams::new([seed; 16], bits);
    p.batch = batch;
    p
}

pub fn parties(n: usize, seed: u64, params: &KeygenParams) -> Vec<Party<SeededRng>> {
    (0..n)
        .map(|i| Party::new(i, n, params.clone(), SeededRng::new(seed, i)).unwrap())
        .collect()
}

/// Deliver everything FIFO (every message of round r reaches its receivers before any of
/// round r+1), through to_bytes/from_bytes as an opaque-blob relay would.
pub fn drive(mut parties: Vec<Party<SeededRng>>, record: bool) -> Run {
    let n = parties.len();
    let mut queue: VecDeque<Message> = VecDeque::new();
    for p in parties.iter_mut() {
        queue.extend(p.start().unwrap());
    }
    let mut outputs: Vec<Option<GeneratedShare>> = vec![None; n];
    let mut hops = Vec::new();
    while let Some(msg) = queue.pop_front() {
        let bytes = msg.to_bytes();
        let to: Vec<usize> = match msg.dest {
            Dest::To(j) => vec![j as usize],
            Dest::Broadcast => (0..n).filter(|&j| j != msg.sender as usize).collect(),
        };
        for j in to {
            if record {
                hops.push(Hop {
                    from: msg.sender as usize,
                    to: j,
                    bytes: bytes.clone(),
                });
            }
            match parties[j]
                .handle(Message::from_bytes(&bytes).unwrap())
                .unwrap()
            {
                Step::Send(out) => queue.extend(out),
                Step::Done(share) => outputs[j] = Some(share),
            }
        }
    }
    Run {
        outputs: outputs
            .into_iter()
            .map(|o| o.expect("every party done"))
            .collect(),
        parties,
        hops,
    }
}

const W: u32 = 8192;

fn big(be: &[u8]) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(be).resize_unchecked(W)
}

fn be(x: &BoxedUint) -> Vec<u8> {
    x.to_be_bytes_trimmed_vartime().into_vec()
}

/// d = Σ shares over the integers (two's complement at W bits; d > 0).
fn sum_shares(shares: &[&RsaShare]) -> BoxedUint {
    let mut acc = BoxedUint::zero_with_precision(W);
    for s in shares {
        let m = big(s.magnitude.expose());
        acc = if s.negative {
            acc.wrapping_sub(&m)
        } else {
            acc.wrapping_add(&m)
        };
    }
    assert!(!bool::from(acc.bit(W - 1)), "d is positive");
    acc
}

/// Everything the test may know and no party may: p, q, φ, d, p+q, p+q−1 (big-endian).
pub struct Secrets {
    pub p: BoxedUint,
    pub q: BoxedUint,
    pub d: BoxedUint,
    pub phi: BoxedUint,
}

impl Secrets {
    pub fn encodings(&self) -> Vec<Vec<u8>> {
        let one = BoxedUint::one_with_precision(W);
        let s = self.p.wrapping_add(&self.q);
        [
            &self.p,
            &self.q,
            &self.d,
            &self.phi,
            &s,
            &s.wrapping_sub(&one),
        ]
        .into_iter()
        .map(be)
        .collect()
    }
}

/// Check the key completely and return the secrets (recovered only here, in the test).
pub fn check_key(run: &Run, bits: usize) -> Secrets {
    let out0 = &run.outputs[0];
    for o in &run.outputs {
        assert_eq!(o.modulus, out0.modulus, "every party has the same N");
        assert_eq!(o.public_exponent, vec![1, 0, 1]);
        assert_eq!(
            o.share.magnitude.len(),
            share_bytes(bits),
            "split_exponent's width"
        );
        assert!(magnitude_fits(o.share.magnitude.expose(), bits));
    }
    let n = big(&out0.modulus);
    assert_eq!(
        n.bit_width_vartime() as usize,
        bits,
        "N has exactly {bits} bits"
    );
    let (mut p, mut q) = (
        BoxedUint::zero_with_precision(W),
        BoxedUint::zero_with_precision(W),
    );
    for party in &run.parties {
        let (pi, qi) = party.test_prime_shares().expect("accepted shares");
        p = p.wrapping_add(big(&pi));
        q = q.wrapping_add(big(&qi));
    }
    assert_eq!(p.wrapping_mul(&q), n, "N = p·q");
    for f in [&p, &q] {
        common::assert_sieve_residues(f);
    }
    for f in [&p, &q] {
        assert_eq!(f.bit_width_vartime() as usize, bits / 2);
        let f = f.resize_unchecked(f.bit_width_vartime());
        assert!(
            crypto_primes::is_prime(crypto_primes::Flavor::Any, &f),
            "factor is prime"
        );
    }
    let one = BoxedUint::one_with_precision(W);
    let phi = p.wrapping_sub(&one).wrapping_mul(q.wrapping_sub(&one));
    let shares: Vec<&RsaShare> = run.outputs.iter().map(|o| &o.share).collect();
    let d = sum_shares(&shares);
    let ed = d.wrapping_mul(BoxedUint::from(65537u64).resize_unchecked(W));
    let r = ed.rem_vartime(&NonZero::new(phi.clone()).unwrap());
    assert_eq!(r, one, "e·d ≡ 1 mod φ");
    // Every share is full width: none is short or structured (split_exponent's size class).
    for s in &shares {
        let m = big(s.magnitude.expose());
        assert!(
            m.bit_width_vartime() as usize > bits + 100,
            "share is full width"
        );
    }
    Secrets { p, q, d, phi }
}

/// A PKCS#1 v1.5 SHA-256 signature through the cells' own code, verified by `rsa`.
pub fn sign_and_verify(run: &Run) {
    let out = &run.outputs[0];
    let public = RsaPublic::new(&out.modulus, &out.public_exponent).unwrap();
    let shares: Vec<RsaShare> = run.outputs.iter().map(|o| o.share.clone()).collect();
    let h = HashAlg::Sha256.digest(b"keyfrag: generated by fragments");
    let em = pkcs1v15::sign_pad(&HashAlg::Sha256.digest_info(&h), public.size()).unwrap();
    let sig = common::private_op_with(&public, &out.modulus, &shares, &em);
    let pk = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&out.modulus),
        rsa::BoxedUint::from(65537u64),
    )
    .unwrap();
    pk.verify(Pkcs1v15Sign::new::<Sha256>(), &h, &sig)
        .expect("rsa verifies the signature");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn rsa1024_three_parties_end_to_end() {
    let p = params(1, 1024, 256);
    let run = drive(parties(3, 1, &p), false);
    check_key(&run, 1024);
    sign_and_verify(&run);
    let s = run.parties[0].stats();
    println!("rsa1024: {s:?}");
}

#[test]
fn transcript_reveals_no_secret_to_any_single_party() {
    let p = params(2, 1024, 256);
    let run = drive(parties(3, 2, &p), true);
    let secrets = check_key(&run, 1024);
    let needles = secrets.encodings();
    for me in 0..3 {
        // Everything party `me` sent or received, and its own output.
        let mut view: Vec<&[u8]> = run
            .hops
            .iter()
            .filter(|h| h.from == me || h.to == me)
            .map(|h| h.bytes.as_slice())
            .collect();
        view.push(run.outputs[me].share.magnitude.expose());
        view.push(&run.outputs[me].modulus);
        for bytes in view {
            for needle in &needles {
                assert!(
                    !contains(bytes, needle),
                    "a secret appears in party {me}'s view"
                );
            }
        }
    }
    assert!(!run.hops.is_empty());
}

#[test]
fn four_parties_rsa1024() {
    // n = 4 > 2t + 1: exercises the consistency check of the openings.
    let p = params(3, 1024, 256);
    let run = drive(parties(4, 3, &p), false);
    check_key(&run, 1024);
    sign_and_verify(&run);
}

#[test]
fn refused_messages_leave_the_session_running() {
    let p = params(4, 1024, 8);
    let mut ps = parties(3, 4, &p);
    let first = ps[0].start().unwrap();
    let _ = ps[1].start().unwrap();
    let to1 = first
        .iter()
        .find(|m| m.dest == Dest::To(1))
        .unwrap()
        .clone();
    let to2 = first
        .iter()
        .find(|m| m.dest == Dest::To(2))
        .unwrap()
        .clone();

    let mut wrong_session = to1.clone();
    wrong_session.session[0] ^= 1;
    assert!(matches!(
        ps[1].handle(wrong_session),
        Err(KeygenError::WrongSession)
    ));
    let mut unknown = to1.clone();
    unknown.sender = 9;
    assert!(matches!(
        ps[1].handle(unknown),
        Err(KeygenError::UnknownSender(9))
    ));
    assert!(matches!(ps[1].handle(to2), Err(KeygenError::NotForMe)));
    let mut later = to1.clone();
    later.round = 5;
    assert!(matches!(
        ps[1].handle(later),
        Err(KeygenError::WrongRound {
            expected: 0,
            got: 5
        })
    ));

    assert!(matches!(ps[1].handle(to1.clone()), Ok(Step::Send(v)) if v.is_empty()));
    assert!(matches!(ps[1].handle(to1), Err(KeygenError::Duplicate(0))));
    assert!(matches!(
        Message::from_bytes(&[1, 2, 3]),
        Err(KeygenError::Malformed(_))
    ));
}

#[test]
fn replayed_round_is_refused_and_generation_still_completes() {
    // Relay every message twice and re-inject round-0 messages at the end: each copy is
    // refused (Duplicate / WrongRound), and the honest run still produces a valid key.
    let p = params(5, 1024, 256);
    let mut ps = parties(3, 5, &p);
    let mut queue: VecDeque<Message> = VecDeque::new();
    for party in ps.iter_mut() {
        queue.extend(party.start().unwrap());
    }
    let round0: Vec<Message> = queue.iter().cloned().collect();
    let mut outputs: Vec<Option<GeneratedShare>> = vec![None; 3];
    let (mut dups, mut stale) = (0, 0);
    while let Some(msg) = queue.pop_front() {
        let to: Vec<usize> = match msg.dest {
            Dest::To(j) => vec![j as usize],
            Dest::Broadcast => (0..3).filter(|&j| j != msg.sender as usize).collect(),
        };
        for j in to {
            match ps[j].handle(msg.clone()) {
                Ok(Step::Send(out)) => queue.extend(out),
                Ok(Step::Done(s)) => outputs[j] = Some(s),
                Err(e) => panic!("honest message refused: {e}"),
            }
            if outputs[j].is_none() {
                match ps[j].handle(msg.clone()) {
                    Err(KeygenError::Duplicate(_)) => dups += 1,
                    Err(KeygenError::WrongRound { .. }) => stale += 1,
                    other => panic!("replay accepted: {other:?}"),
                }
            }
        }
    }
    for m in round0 {
        if let Dest::To(j) = m.dest {
            assert!(ps[j as usize].handle(m).is_err());
        }
    }
    assert!(dups > 0);
    let run = Run {
        outputs: outputs.into_iter().map(Option::unwrap).collect(),
        parties: ps,
        hops: Vec::new(),
    };
    check_key(&run, 1024);
    let _ = stale;
}

#[test]
fn malformed_body_aborts_cleanly() {
    let p = params(6, 1024, 4);
    let mut ps = parties(3, 6, &p);
    let m0 = ps[0].start().unwrap();
    let m2 = ps[2].start().unwrap();
    let _ = ps[1].start().unwrap();
    let mut bad = m0.into_iter().find(|m| m.dest == Dest::To(1)).unwrap();
    bad.body = keyfrag_core::secret::SecretBytes::new(vec![0u8; 3]);
    let good = m2.into_iter().find(|m| m.dest == Dest::To(1)).unwrap();
    assert!(ps[1].handle(bad).is_ok());
    assert!(matches!(
        ps[1].handle(good.clone()),
        Err(KeygenError::Malformed(_))
    ));
    assert!(matches!(ps[1].handle(good), Err(KeygenError::NotRunning)));
}

#[test]
fn bad_parameters_are_refused() {
    let p = params(7, 1024, 4);
    assert!(Party::new(0, 2, p.clone(), SeededRng::new(0, 0)).is_err());
    assert!(Party::new(3, 3, p.clone(), SeededRng::new(0, 0)).is_err());
    let mut few = p.clone();
    few.iterations = 63;
    assert!(Party::new(0, 3, few, SeededRng::new(0, 0)).is_err());
    let mut odd = p;
    odd.modulus_bits = 1025;
    assert!(Party::new(0, 3, odd, SeededRng::new(0, 0)).is_err());
}

#[test]
fn rsa2048_three_parties() {
    let p = params(8, 2048, 1024);
    let t = std::time::Instant::now();
    let run = drive(parties(3, 8, &p), false);
    check_key(&run, 2048);
    sign_and_verify(&run);
    println!("rsa2048: {:?} in {:?}", run.parties[0].stats(), t.elapsed());
}

#[test]
fn rsa3072_three_parties() {
    // Two primes of exactly 1536 bits, e·d ≡ 1 mod φ, and a verifying signature at 3072.
    let p = params(9, 3072, 1024);
    let run = drive(parties(3, 9, &p), false);
    check_key(&run, 3072);
    sign_and_verify(&run);
}

#[test]
fn relay_sees_only_ciphertext_and_public_values() {
    use keyfrag_core::relay::{Context, PartyKeys, Protocol, broadcast, seal};
    // Seal every hop exactly as the cells do, and look at what a relay carries.
    let p = params(5, 1024, 256);
    let run = drive(parties(3, 5, &p), true);
    let secrets = check_key(&run, 1024);
    let keys: Vec<PartyKeys> = (0..3u8)
        .map(|i| PartyKeys::from_seed(&[i + 1; 32]))
        .collect();
    let names = ["cell-a", "cell-b", "cell-c"];
    let mut carried = Vec::new();
    let mut confidential = Vec::new();
    for hop in &run.hops {
        let msg = Message::from_bytes(&hop.bytes).unwrap();
        let ctx = Context::new(Protocol::RsaKeygen, "k", "s", 0, msg.round);
        let env = if msg.is_confidential() {
            confidential.push(msg.body.expose().to_vec());
            let card = keys[hop.to].card(names[hop.to]).unwrap();
            seal(&keys[hop.from], names[hop.from], &card, &ctx, &hop.bytes).unwrap()
        } else {
            broadcast(&keys[hop.from], names[hop.from], &ctx, &hop.bytes).unwrap()
        };
        carried.push(env.to_bytes());
    }
    assert!(!confidential.is_empty());
    let relay_view = carried.concat();
    for needle in secrets.encodings() {
        assert!(
            !contains(&relay_view, &needle),
            "a secret crosses the relay"
        );
    }
    // Pairwise (confidential) bodies never cross in the clear: sample one 16-byte window of
    // each of the first 64 bodies (a full scan of every window is quadratic in the traffic).
    let samples = confidential
        .iter()
        .filter_map(|b| b.get(..16))
        .filter(|w| w.iter().any(|&x| x != 0))
        .take(64);
    for window in samples {
        assert!(
            !contains(&relay_view, window),
            "a pairwise value crosses the relay in the clear"
        );
    }
}
