//! The module's side of a private-key operation: blind, combine partials, correct, unblind,
//! verify (CRYPTO-NOTES §2.1–2.2).
//!
//! x' = x·ρ^e (cells never see x); w = Π x'^(2dᵢ) = x'^(2d); y' = w^((e+1)/2)·x'⁻¹ = x'^d;
//! y = y'·ρ⁻¹ = x^d; and y^e ≡ x is checked before anything is returned.

use crypto_bigint::modular::BoxedMontyForm;
use crypto_bigint::{BoxedUint, CtEq, CtLt};
use zeroize::{Zeroize, Zeroizing};

use crate::rsa_public::RsaPublic;
use crate::secret::SecretBytes;
use crate::{Error, Result, random};

/// Fresh ρ candidates tried before giving up: each is accepted with probability > 1/2
/// (ρ < N and invertible), so running out means the RNG is broken.
const MAX_BLIND_TRIES: usize = 128;

/// A blinded input ready to send to the cells, with the state needed to finish.
pub struct Blinded {
    /// x' = x·ρ^e mod N, big-endian, exactly k bytes: what the cells receive.
    pub input: Vec<u8>,
    state: BlindState,
}

/// The secret half of `Blinded`. Kept in its own type so that it, not `Blinded`, carries the
/// Drop impl: callers can still move `input` out of a `Blinded`.
struct BlindState {
    /// The message representative x.
    x: BoxedMontyForm,
    /// ρ⁻¹, to unblind.
    rho_inv: BoxedMontyForm,
}

impl Drop for BlindState {
    fn drop(&mut self) {
        self.x.zeroize();
        self.rho_inv.zeroize();
    }
}

impl std::fmt::Debug for Blinded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blinded([redacted])")
    }
}

/// Blind the message representative x (big-endian, < N) with a fresh random ρ ∈ Z_N^*.
/// Errors: `DataTooLarge` if x ≥ N; `InvalidInput` if x = 0 (no cell accepts it, and 0^d = 0
/// needs no key); `Random` if the OS RNG fails.
pub fn blind(key: &RsaPublic, x: &[u8]) -> Result<Blinded> {
    let m = &key.modulus;
    let x = m.parse_below(x).ok_or(Error::DataTooLarge)?;
    if bool::from(x.is_zero()) {
        return Err(Error::InvalidInput("message representative is zero"));
    }
    let x = m.monty(x);
    let (rho, rho_inv) = random_unit(key)?;
    let rho_e = Zeroizing::new(key.pow_e(&rho));
    let x_blinded = x.mul(&rho_e);
    Ok(Blinded {
        input: m.to_bytes(&x_blinded),
        state: BlindState { x, rho_inv },
    })
}

/// A uniformly random ρ ∈ Z_N^* and its inverse, both computed in constant time.
fn random_unit(key: &RsaPublic) -> Result<(Zeroizing<BoxedMontyForm>, BoxedMontyForm)> {
    let m = &key.modulus;
    let top_mask = 0xffu8 >> (8 * m.len - m.bits);
    for _ in 0..MAX_BLIND_TRIES {
        let mut buf = Zeroizing::new(vec![0u8; m.len]);
        random::fill(&mut buf)?;
        buf[0] &= top_mask;
        let cand = Zeroizing::new(
            BoxedUint::from_be_slice(&buf, m.precision()).map_err(|_| Error::Random)?,
        );
        // Rejection sampling: only a rejected candidate's fate is revealed, never ρ.
        if !bool::from(cand.ct_lt(m.n())) || bool::from(cand.is_zero()) {
            continue;
        }
        let rho = Zeroizing::new(m.monty(BoxedUint::clone(&cand)));
        let inv = rho.invert();
        if inv.is_some().to_bool() {
            return Ok((rho, inv.unwrap()));
        }
    }
    Err(Error::Random)
}

/// Combine the parties' partials into x^d (exactly k bytes) and verify it.
/// Errors: `VerifyFailed` if any partial was wrong (so the result is never returned);
/// `InvalidInput` if a partial is malformed (≥ N or wrong length).
pub fn combine(key: &RsaPublic, blinded: &Blinded, partials: &[Vec<u8>]) -> Result<SecretBytes> {
    let m = &key.modulus;
    if blinded.state.x.params() != &m.params {
        return Err(Error::InvalidInput("blinded input belongs to another key"));
    }
    if partials.is_empty() {
        return Err(Error::InvalidInput("no partials"));
    }
    // w = Π x'^(2dᵢ) = x'^(2d).
    let w = Zeroizing::new(m.product(partials.iter().map(Vec::as_slice))?);
    // x' is public (it went to every cell); its inverse exists because cells accepted it,
    // and if it does not the verification below fails anyway.
    let x_blinded = m
        .parse_below(&blinded.input)
        .ok_or(Error::InvalidInput("blinded input not below the modulus"))?;
    let x_blinded_inv = m
        .monty(x_blinded)
        .invert()
        .into_option()
        .ok_or(Error::VerifyFailed)?;
    // a = (e+1)/2 is an integer because e is odd, and 2a − e = 1, so y' = w^a·x'⁻¹ =
    // x'^(2ad − 1) has y'^e = x'^(2a·ed − e) = x'^(2a − e) = x': y' is the e-th root x'^d
    // (CRYPTO-NOTES §2.2 step 4).
    let a = key
        .e
        .wrapping_add(BoxedUint::one_with_precision(key.e.bits_precision()))
        .shr(1);
    let y_blinded = Zeroizing::new(
        w.pow_bounded_exp(&a, a.bit_width_vartime())
            .mul(&x_blinded_inv),
    );
    // Unblind: y = x'^d·ρ⁻¹ = x^d·ρ^(ed)·ρ⁻¹ = x^d.
    let y = Zeroizing::new(y_blinded.mul(&blinded.state.rho_inv));
    // Verify before release: a wrong partial must never yield output (nor a fault leak).
    if !key.pow_e(&y).ct_eq(&blinded.state.x).to_bool() {
        return Err(Error::VerifyFailed);
    }
    Ok(SecretBytes::new(m.to_bytes(&y)))
}
