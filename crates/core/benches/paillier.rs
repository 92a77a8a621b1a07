//! Paillier and MtA unit costs (customer-mode key generation, CRYPTO-NOTES §1.10).
//!
//! `cargo bench -p keyfrag-core --bench paillier` (release). Environment: PAILLIER_BITS
//! ("2048,3072"), PAILLIER_REPS (20). Exponent widths follow RSA generation at |N_pk| − 1024
//! (RSA-2048 under Paillier-3072, RSA-1024 under Paillier-2048): K = |N_rsa|/2 bits.

use std::time::Instant;

use crypto_bigint::{BoxedUint, Resize};
use keyfrag_core::keygen::SeededRng;
use keyfrag_core::paillier::{Mta, SecretKey};

fn random(rng: &mut SeededRng, bits: usize) -> BoxedUint {
    use keyfrag_core::keygen::KeygenRng;
    let mut buf = vec![0u8; bits.div_ceil(8)];
    rng.fill(&mut buf).unwrap();
    if !bits.is_multiple_of(8) {
        buf[0] &= 0xff >> (8 - bits % 8);
    }
    BoxedUint::from_be_slice_vartime(&buf)
}

/// Median of `reps` timings of f, in ms.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("PAILLIER_BITS")
        .unwrap_or_else(|_| "2048,3072".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let reps: usize = std::env::var("PAILLIER_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut rng = SeededRng::new(7, 0);
    for bits in sizes {
        let k = (bits - 1024) / 2; // RSA prime-share width
        let t = Instant::now();
        let sk = SecretKey::generate(bits, &mut rng).unwrap();
        let keygen_ms = t.elapsed().as_secs_f64() * 1e3;
        let pk = sk.public().clone();
        let m = random(&mut rng, k);
        let y = random(&mut rng, k);
        let c = pk.encrypt(&m, &mut rng).unwrap();
        let enc = time(reps, || {
            pk.encrypt(&m, &mut rng).unwrap();
        });
        let rnd = time(reps, || {
            pk.randomiser(&mut rng).unwrap();
        });
        let enc_own = time(reps, || {
            sk.encrypt(&m, &mut rng).unwrap();
        });
        let r = pk.randomiser(&mut rng).unwrap();
        let enc_pre = time(reps, || {
            pk.encrypt_with(&m, &r).unwrap();
        });
        let exp_fast = time(reps, || {
            pk.mul_secret(&c, &y, k as u32);
        });
        let exp_ct = time(reps, || {
            pk.mul_secret_portable(&c, &y, k as u32);
        });
        let dec = time(reps, || {
            sk.decrypt(&c);
        });
        // One N-product MtA with one cell: 2 encryptions (customer; shared by every cell),
        // one reply (cell: 2 exponentiations + Enc(β)), one decryption (customer).
        let mta = Mta::new(&pk, k, k, 2).unwrap();
        let xs = [random(&mut rng, k), random(&mut rng, k)];
        let ys = [random(&mut rng, k), random(&mut rng, k)];
        let mut cts = Vec::new();
        let enc2 = time(reps, || cts = mta.encrypt_own(&sk, &xs, &mut rng).unwrap());
        let mut reply = None;
        let rep = time(reps, || {
            reply = Some(mta.reply(&cts, &ys, &mut rng).unwrap())
        });
        let reply = reply.unwrap();
        let fin = time(reps, || {
            mta.finish(&sk, &reply.ciphertext).unwrap();
        });
        let check = mta.finish(&sk, &reply.ciphertext).unwrap();
        let w = (2 * bits) as u32;
        let wide = |v: &BoxedUint| v.resize_unchecked(w);
        let want = wide(&xs[0])
            .wrapping_mul(wide(&ys[0]))
            .wrapping_add(wide(&xs[1]).wrapping_mul(wide(&ys[1])));
        assert_eq!(
            wide(&check).wrapping_sub(wide(&reply.beta)),
            want,
            "MtA identity"
        );
        println!(
            "Paillier-{bits} (IFMA kernel for N²: {}), secret exponents {k} bits, median of {reps}:",
            pk.has_fast_kernel()
        );
        println!("  keygen                          {keygen_ms:>9.1} ms (one run)");
        println!("  Enc, fresh r^N                  {enc:>9.2} ms");
        println!("  randomiser r^N alone            {rnd:>9.2} ms");
        println!("  Enc, precomputed r^N            {enc_pre:>9.3} ms");
        println!("  Enc by the key holder (CRT)     {enc_own:>9.2} ms");
        println!("  c^k, k secret ({k} b), kernel   {exp_fast:>9.2} ms");
        println!("  c^k, crypto-bigint              {exp_ct:>9.2} ms");
        println!("  Dec (CRT)                       {dec:>9.2} ms");
        println!(
            "  MtA of an N product, one cell: customer 2 Enc (CRT) {enc2:.2} ms (shared by all \
             cells) + Dec {fin:.2} ms (one per value: replies are summed first); cell reply \
             {rep:.2} ms; {} B out, {} B back",
            2 * pk.ciphertext_bytes(),
            pk.ciphertext_bytes()
        );
    }
}
