//! Customer-mode generation (keygen with `customer_mode`): three cells and the customer in
//! process, RSA-1024 under a Paillier-2048 customer key. The key must be valid with the
//! customer's long-term share c, useless without it, and the merged view of every cell must
//! hold none of p, q, φ, d.

mod common;

use std::collections::VecDeque;

use crypto_bigint::{BoxedUint, NonZero, Resize};
use keyfrag_core::customer::CustomerSeed;
use keyfrag_core::hash::HashAlg;
use keyfrag_core::keygen::{
    Dest, GeneratedShare, KeygenParams, Message, Party, Phase, SeededRng, Step,
};
use keyfrag_core::padding::pkcs1v15;
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::{RsaShare, magnitude_fits, share_bytes};
use rsa::Pkcs1v15Sign;
use rsa::sha2::Sha256;

const CELLS: usize = 3;
const W: u32 = 8192;

struct Hop {
    from: usize,
    to: usize,
    phase: Phase,
    bytes: Vec<u8>,
}

struct Run {
    /// Cells' outputs, then the customer's.
    outputs: Vec<GeneratedShare>,
    parties: Vec<Party<SeededRng>>,
    hops: Vec<Hop>,
    c: RsaShare,
}

fn c_share(bits: usize) -> RsaShare {
    CustomerSeed::from_bytes([7; 32])
        .rsa_share("key-uid-1", bits)
        .unwrap()
}

fn run(seed: u64, bits: usize, batch: usize, record: bool) -> Run {
    let mut params = KeygenParams::customer([seed as u8; 16], bits);
    params.batch = batch;
    let n = CELLS + 1;
    let c = c_share(bits);
    let mut parties: Vec<Party<SeededRng>> = (0..CELLS)
        .map(|i| Party::new(i, n, params.clone(), SeededRng::new(seed, i)).unwrap())
        .collect();
    parties.push(Party::new_customer(n, params, SeededRng::new(seed, CELLS), c.clone()).unwrap());
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
                    phase: msg.phase,
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
        c,
    }
}

fn big(be: &[u8]) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(be).resize_unchecked(W)
}

fn be(x: &BoxedUint) -> Vec<u8> {
    x.to_be_bytes_trimmed_vartime().into_vec()
}

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
    acc
}

struct Secrets {
    p: BoxedUint,
    q: BoxedUint,
    d: BoxedUint,
    phi: BoxedUint,
    /// The customer's shares of the accepted p and q.
    p_c: BoxedUint,
    q_c: BoxedUint,
}

/// The key is valid with the cells' shares and c, and every party agrees on it.
fn check_key(run: &Run, bits: usize) -> Secrets {
    let out0 = &run.outputs[0];
    for o in &run.outputs {
        assert_eq!(o.modulus, out0.modulus);
        assert_eq!(o.public_exponent, vec![1, 0, 1]);
        assert_eq!(o.share.magnitude.len(), share_bytes(bits));
        assert!(magnitude_fits(o.share.magnitude.expose(), bits));
    }
    // The customer ends with exactly its long-term share c.
    assert_eq!(run.outputs[CELLS].share, run.c);
    let n = big(&out0.modulus);
    assert_eq!(n.bit_width_vartime() as usize, bits);
    let mut p = BoxedUint::zero_with_precision(W);
    let mut q = BoxedUint::zero_with_precision(W);
    for party in &run.parties {
        let (pi, qi) = party.test_prime_shares().expect("accepted shares");
        p = p.wrapping_add(big(&pi));
        q = q.wrapping_add(big(&qi));
    }
    let (pc, qc) = run.parties[CELLS].test_prime_shares().unwrap();
    assert_eq!(p.wrapping_mul(&q), n, "N = p·q");
    for f in [&p, &q] {
        common::assert_sieve_residues(f);
        assert_eq!(f.bit_width_vartime() as usize, bits / 2);
        let f = f.resize_unchecked(f.bit_width_vartime());
        assert!(crypto_primes::is_prime(crypto_primes::Flavor::Any, &f));
    }
    let one = BoxedUint::one_with_precision(W);
    let phi = p.wrapping_sub(&one).wrapping_mul(q.wrapping_sub(&one));
    let all: Vec<&RsaShare> = run.outputs.iter().map(|o| &o.share).collect();
    let d = sum_shares(&all);
    assert!(!bool::from(d.bit(W - 1)), "d is positive");
    let ed = d.wrapping_mul(BoxedUint::from(65537u64).resize_unchecked(W));
    assert_eq!(ed.rem_vartime(&NonZero::new(phi.clone()).unwrap()), one);
    for s in &all[..CELLS] {
        assert!(big(s.magnitude.expose()).bit_width_vartime() as usize > bits + 100);
    }
    Secrets {
        p,
        q,
        d,
        phi,
        p_c: big(&pc),
        q_c: big(&qc),
    }
}

fn digest_em(out: &GeneratedShare) -> (RsaPublic, Vec<u8>, Vec<u8>) {
    let public = RsaPublic::new(&out.modulus, &out.public_exponent).unwrap();
    let h = HashAlg::Sha256.digest(b"keyfrag: customer-mode key");
    let em = pkcs1v15::sign_pad(&HashAlg::Sha256.digest_info(&h), public.size()).unwrap();
    (public, h, em)
}

/// All cells' shares plus c sign (verified by `rsa`); the cells' shares alone do not.
fn sign_checks(run: &Run) {
    let out = &run.outputs[0];
    let (public, h, em) = digest_em(out);
    let mut shares: Vec<RsaShare> = run.outputs[..CELLS]
        .iter()
        .map(|o| o.share.clone())
        .collect();
    shares.push(run.c.clone());
    let sig = common::private_op_with(&public, &out.modulus, &shares, &em);
    let pk = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&out.modulus),
        rsa::BoxedUint::from(65537u64),
    )
    .unwrap();
    pk.verify(Pkcs1v15Sign::new::<Sha256>(), &h, &sig)
        .expect("rsa verifies the signature");
    // Without c: the module's combine refuses the result (its verification fails).
    let blinded = blind(&public, &em).unwrap();
    let partials: Vec<Vec<u8>> = shares[..CELLS]
        .iter()
        .map(|s| rsa_partial(&out.modulus, &blinded.input, s).unwrap())
        .collect();
    assert!(
        combine(&public, &blinded, &partials).is_err(),
        "the cells alone produced a valid signature"
    );
}

/// One recorded RSA-1024 run shared by the tests below. The number of candidate pairs is
/// geometric per seed; seed 13 accepts in the second batch (512 pairs, about 25 s of CPU),
/// where other seeds take up to ten times longer.
fn shared_run() -> &'static Run {
    static RUN: std::sync::OnceLock<Run> = std::sync::OnceLock::new();
    RUN.get_or_init(|| run(13, 1024, 256, true))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn customer_mode_rsa1024_end_to_end() {
    let run = shared_run();
    check_key(run, 1024);
    sign_checks(run);
    println!("customer mode rsa1024: cell 0 {:?}", run.parties[0].stats());
    println!("customer {:?}", run.parties[CELLS].stats());

    // One MtA per cell per product: in every batch the customer receives exactly one sieve
    // reply and one N reply from each cell, and no cell sends a Paillier reply to a cell.
    let batches = run.parties[CELLS].stats().batches as usize;
    for phase in [Phase::SieveReply, Phase::ProductReply] {
        for cell in 0..CELLS {
            let to_customer = run
                .hops
                .iter()
                .filter(|h| h.phase == phase && h.from == cell && h.to == CELLS)
                .filter(|h| Message::from_bytes(&h.bytes).unwrap().is_confidential())
                .count();
            assert_eq!(to_customer, batches, "{phase:?} replies from cell {cell}");
        }
    }
    // And the customer sends nothing pairwise before the Test round: its inputs are
    // ciphertexts under its own key, broadcast once for all cells.
    assert!(
        run.hops
            .iter()
            .filter(|h| h.from == CELLS)
            .filter(|h| matches!(
                h.phase,
                Phase::SieveDeal | Phase::ProductInput | Phase::Open
            ))
            .all(|h| !Message::from_bytes(&h.bytes).unwrap().is_confidential())
    );
}

#[test]
fn merged_view_of_all_cells_reveals_no_secret() {
    let run = shared_run();
    let s = check_key(run, 1024);
    let one = BoxedUint::one_with_precision(W);
    let sum = s.p.wrapping_add(&s.q);
    let mut needles: Vec<Vec<u8>> = [&s.p, &s.q, &s.d, &s.phi, &sum, &sum.wrapping_sub(&one)]
        .into_iter()
        .map(be)
        .collect();
    // Nor the customer's own shares of the accepted primes or their product.
    needles.push(be(&s.p_c));
    needles.push(be(&s.q_c));
    needles.push(be(&s.p_c.wrapping_mul(&s.q_c)));
    // Everything any cell sent or received, and every cell's output: all cells colluding.
    let mut view: Vec<&[u8]> = run
        .hops
        .iter()
        .filter(|h| h.from < CELLS || h.to < CELLS)
        .map(|h| h.bytes.as_slice())
        .collect();
    for o in &run.outputs[..CELLS] {
        view.push(o.share.magnitude.expose());
        view.push(&o.modulus);
    }
    let merged = view.concat();
    for needle in &needles {
        assert!(needle.len() > 32);
        assert!(
            !contains(&merged, needle),
            "a secret appears in the cells' merged view"
        );
    }
    // What the merged cells do know, p_cells = p − p_C, differs from p: the customer's
    // share is what hides p.
    let mut p_cells = BoxedUint::zero_with_precision(W);
    for party in &run.parties[..CELLS] {
        p_cells = p_cells.wrapping_add(big(&party.test_prime_shares().unwrap().0));
    }
    assert_eq!(p_cells.wrapping_add(&s.p_c), s.p);
    assert!(
        s.p_c.bit_width_vartime() > 400,
        "the customer's share is not small"
    );
}

#[test]
fn customer_mode_parameters_are_checked() {
    let c = c_share(1024);
    let params = KeygenParams::customer([1; 16], 1024);
    // Three cells at least, plus the customer.
    assert!(Party::new(0, 3, params.clone(), SeededRng::new(0, 0)).is_err());
    // The customer's id is not a cell's.
    assert!(Party::new(3, 4, params.clone(), SeededRng::new(0, 3)).is_err());
    // A too-small Paillier key is refused.
    let mut small = params.clone();
    small.paillier_bits = 1536;
    assert!(Party::new(0, 4, small, SeededRng::new(0, 0)).is_err());
    // The customer needs a customer-mode session and a full-width c.
    let cells_only = KeygenParams::new([1; 16], 1024);
    assert!(Party::new_customer(4, cells_only, SeededRng::new(0, 3), c.clone()).is_err());
    let short = RsaShare {
        negative: false,
        magnitude: keyfrag_core::secret::SecretBytes::new(vec![1; 8]),
    };
    assert!(Party::new_customer(4, params.clone(), SeededRng::new(0, 3), short).is_err());
    assert!(Party::new_customer(4, params, SeededRng::new(0, 3), c).is_ok());
}
