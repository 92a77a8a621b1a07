//! Textbook Paillier (g = N + 1) on crypto-bigint, for the customer-mode products of key
//! generation (CRYPTO-NOTES §1.9, §1.10; docs/PAILLIER.md has the crate survey and review).
//!
//! - `Enc(m; r) = (1 + m·N)·r^N mod N²` for 0 ≤ m < N and r uniform in Z_N (a non-unit r
//!   would factor N: probability ≈ 2^-(|N|/2)).
//! - `Dec(c)` by CRT (`secret.rs`): mₚ = Lₚ(c^(p−1) mod p²)·hₚ mod p with Lₚ(x) = (x − 1)/p and
//!   hₚ = (−q)⁻¹ mod p, the same mod q, then Garner's recombination.
//! - Homomorphic: `add` multiplies ciphertexts; `mul_secret` raises a ciphertext to a secret
//!   scalar at a fixed public width.
//!
//! Constant time: every exponentiation whose exponent is secret (a cell's scalar in
//! `mul_secret`; p − 1 and q − 1 in decryption) runs at a width fixed by public parameters,
//! through crypto-bigint's `pow_bounded_exp` or the crate's IFMA kernel (`modexp`), both
//! constant time in the exponent and the base. Encryption's `r^N` has a public exponent and a
//! secret base; both kernels are constant time in the base. Plaintexts are multiplied and
//! added with constant-time limb arithmetic at fixed precision.
//!
//! Key generation (crypto-primes, `secret.rs`) is variable time in the rejected candidates, as
//! every RSA key generator is; the accepted primes are never branched on afterwards.

mod mta;
mod primes;
mod secret;

pub use mta::{HIDING_BITS, Mta, MtaReply, neg_reduce, reduce};
pub use secret::SecretKey;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, ConcatenatingMul, CtLt, NonZero, Odd, Resize};
use zeroize::Zeroizing;

use crate::bigint::to_fixed_be;
use crate::keygen::KeygenRng;
use crate::modexp::PowCtx;

/// Smallest Paillier modulus accepted (tests run RSA-1024 with Paillier-2048).
pub const MIN_BITS: usize = 2048;
/// Largest Paillier modulus accepted.
pub const MAX_BITS: usize = 8192;

/// Errors of the Paillier layer. None carries a secret.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PaillierError {
    #[error("invalid Paillier parameters: {0}")]
    Params(&'static str),
    #[error("malformed Paillier value: {0}")]
    Malformed(&'static str),
    #[error("operating system randomness unavailable")]
    Random,
}

pub type Result<T> = std::result::Result<T, PaillierError>;

/// A public key: N and the arithmetic modulo N².
#[derive(Clone)]
pub struct PublicKey {
    n: BoxedUint,
    pub(crate) nn: BoxedMontyParams,
    /// The IFMA kernel's constants for N² (None without the kernel or above its sizes).
    nn_ctx: Option<std::sync::Arc<PowCtx>>,
    bits: usize,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaillierPublicKey")
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

/// A ciphertext: an element of Z_{N²}. Not secret (semantically secure), but it is only
/// meaningful under its key.
#[derive(Clone, PartialEq, Eq)]
pub struct Ciphertext(BoxedMontyForm);

impl std::fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ciphertext(..)")
    }
}

/// A precomputed encryption randomiser r^N mod N² (independent of the message, so it can be
/// made ahead of time, e.g. while waiting for peers). Secret: it fixes the ciphertext's
/// randomness. Zeroized on drop.
pub struct Randomiser(pub(crate) BoxedMontyForm);

impl Drop for Randomiser {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl PublicKey {
    /// N from its big-endian bytes: odd, MIN_BITS..=MAX_BITS, a multiple of 8 bits wide.
    /// (Semi-honest setting: a cell does not check that N is a product of two primes.)
    pub fn from_be(bytes: &[u8]) -> Result<PublicKey> {
        let n = BoxedUint::from_be_slice_vartime(crate::bigint::trim(bytes));
        let bits = n.bit_width_vartime() as usize;
        if !(MIN_BITS..=MAX_BITS).contains(&bits) || !bits.is_multiple_of(8) {
            return Err(PaillierError::Params("Paillier modulus size"));
        }
        let n = n.resize_unchecked(bits as u32);
        PublicKey::new(n)
    }

    pub(crate) fn new(n: BoxedUint) -> Result<PublicKey> {
        let bits = n.bit_width_vartime() as usize;
        let nn = n.concatenating_mul(&n);
        let nn = Odd::new(nn)
            .into_option()
            .ok_or(PaillierError::Params("Paillier modulus must be odd"))?;
        let nn_ctx = PowCtx::new(&nn).map(std::sync::Arc::new);
        Ok(PublicKey {
            nn: BoxedMontyParams::new_vartime(nn),
            nn_ctx,
            n,
            bits,
        })
    }

    /// |N| in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Big-endian N, exactly |N|/8 bytes.
    pub fn to_be(&self) -> Vec<u8> {
        to_fixed_be(&self.n, self.bits / 8)
    }

    /// Bytes of one encoded ciphertext (fixed: 2|N|/8).
    pub fn ciphertext_bytes(&self) -> usize {
        2 * self.bits / 8
    }

    /// Whether the IFMA kernel serves exponentiations modulo N² here.
    pub fn has_fast_kernel(&self) -> bool {
        self.nn_ctx.is_some()
    }

    /// A fresh randomiser r^N mod N², r uniform in Z_N (statistically, 128 extra bits).
    pub fn randomiser(&self, rng: &mut dyn KeygenRng) -> Result<Randomiser> {
        let nz = NonZero::new(self.n.clone()).expect("N > 0");
        let r = crate::keygen::rng::uniform_mod(rng, &nz).map_err(|_| PaillierError::Random)?;
        let r = Zeroizing::new((&*r).resize_unchecked(self.nn.bits_precision()));
        let base = BoxedMontyForm::new(BoxedUint::clone(&r), &self.nn);
        // Public exponent N, secret base: constant time in the base either way.
        Ok(Randomiser(self.pow(&base, &self.n, self.bits as u32)))
    }

    /// Enc(m) with a fresh randomiser. m < N (else an error: the caller's bounds are wrong).
    pub fn encrypt(&self, m: &BoxedUint, rng: &mut dyn KeygenRng) -> Result<Ciphertext> {
        let r = self.randomiser(rng)?;
        self.encrypt_with(m, &r)
    }

    /// Enc(m) with a precomputed randomiser (used once, then dropped by the caller).
    pub fn encrypt_with(&self, m: &BoxedUint, r: &Randomiser) -> Result<Ciphertext> {
        if r.0.params().modulus() != self.nn.modulus() {
            return Err(PaillierError::Params("randomiser under another key"));
        }
        Ok(Ciphertext(self.plain(m)?.mul(&r.0)))
    }

    /// (1 + m·N) mod N² for 0 ≤ m < N, in constant time in m.
    fn plain(&self, m: &BoxedUint) -> Result<BoxedMontyForm> {
        let prec = self.n.bits_precision();
        let wide = prec.max(m.bits_precision());
        // The comparison's outcome is a parameter check (callers bound m far below N).
        let mw = Zeroizing::new(m.resize_unchecked(wide));
        if !bool::from(mw.ct_lt(&(&self.n).resize_unchecked(wide))) {
            return Err(PaillierError::Params("plaintext not below N"));
        }
        let m = Zeroizing::new(m.resize_unchecked(prec));
        let mn = Zeroizing::new(m.concatenating_mul(&self.n));
        let one_plus = Zeroizing::new(
            (&*mn)
                .resize_unchecked(self.nn.bits_precision())
                .wrapping_add(BoxedUint::one_with_precision(self.nn.bits_precision())),
        );
        Ok(BoxedMontyForm::new(BoxedUint::clone(&one_plus), &self.nn))
    }

    /// Enc(a + b).
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Ciphertext {
        Ciphertext(a.0.mul(&b.0))
    }

    /// Enc(k·m) from Enc(m), k secret: constant time in k, whose low `k_bits` bits are read
    /// (k_bits is public and must bound k).
    pub fn mul_secret(&self, c: &Ciphertext, k: &BoxedUint, k_bits: u32) -> Ciphertext {
        Ciphertext(self.pow(&c.0, k, k_bits))
    }

    /// The same, always through crypto-bigint (benchmarks compare the two kernels).
    pub fn mul_secret_portable(&self, c: &Ciphertext, k: &BoxedUint, k_bits: u32) -> Ciphertext {
        Ciphertext(c.0.pow_bounded_exp(k, k_bits))
    }

    fn pow(&self, base: &BoxedMontyForm, e: &BoxedUint, bits: u32) -> BoxedMontyForm {
        if let Some(ctx) = &self.nn_ctx {
            let plain = Zeroizing::new(base.retrieve());
            if let Some(v) = ctx.pow(&plain, e, bits as usize) {
                let v = Zeroizing::new(v);
                return BoxedMontyForm::new(BoxedUint::clone(&v), &self.nn);
            }
        }
        base.pow_bounded_exp(e, bits)
    }

    /// Fixed-width big-endian encoding (2|N|/8 bytes).
    pub fn encode(&self, c: &Ciphertext, out: &mut Vec<u8>) {
        out.extend_from_slice(&to_fixed_be(&c.0.retrieve(), self.ciphertext_bytes()));
    }

    /// Decode a ciphertext: exactly 2|N|/8 bytes, 0 < c < N². (Semi-honest: the unit check
    /// gcd(c, N) = 1 is left out; a non-unit would reveal a factor of the sender's own key.)
    pub fn decode(&self, bytes: &[u8]) -> Result<Ciphertext> {
        if bytes.len() != self.ciphertext_bytes() {
            return Err(PaillierError::Malformed("ciphertext length"));
        }
        let v = BoxedUint::from_be_slice(bytes, self.nn.bits_precision())
            .map_err(|_| PaillierError::Malformed("ciphertext too wide"))?;
        if bool::from(v.is_zero()) || !bool::from(v.ct_lt(self.nn.modulus().as_ref())) {
            return Err(PaillierError::Malformed("ciphertext out of range"));
        }
        Ok(Ciphertext(BoxedMontyForm::new(v, &self.nn)))
    }

    pub(crate) fn n(&self) -> &BoxedUint {
        &self.n
    }
}
