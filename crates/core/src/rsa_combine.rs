//! The module's side of a private-key operation: blind, combine partials, correct, unblind,
//! verify (CRYPTO-NOTES §2.1–2.2).
//!
//! x' = x·ρ^e (cells never see x); w = Π x'^(2dᵢ) = x'^(2d); y' = w^((e+1)/2)·x'⁻¹ = x'^d;
//! y = y'·ρ⁻¹ = x^d; and y^e ≡ x is checked before anything is returned.

use crypto_bigint::modular::BoxedMontyForm;
use crypto_bigint::{BoxedUint, CtEq};
use zeroize::{Zeroize, Zeroizing};

pub use crate::blinding::{BlindingPair, BlindingPool};
use crate::rsa_public::RsaPublic;
use crate::secret::SecretBytes;
use crate::{Error, Result};

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

/// Blind the message representative x (big-endian, < N) with a fresh random ρ ∈ Z_N^*
/// (a `BlindingPair` made now).
/// Errors: `DataTooLarge` if x ≥ N; `InvalidInput` if x = 0 (no cell accepts it, and 0^d = 0
/// needs no key); `Random` if the OS RNG fails.
pub fn blind(key: &RsaPublic, x: &[u8]) -> Result<Blinded> {
    blind_with(key, x, BlindingPair::new(key)?)
}

/// `blind` with a pair made in advance (a `BlindingPool`'s); the pair is consumed, so it
/// blinds this input only. Errors as `blind`, and `InvalidInput` for another key's pair.
pub fn blind_with(key: &RsaPublic, x: &[u8], pair: BlindingPair) -> Result<Blinded> {
    let m = &key.modulus;
    if !pair.belongs_to(key) {
        return Err(Error::InvalidInput("blinding pair belongs to another key"));
    }
    let x = m.parse_below(x).ok_or(Error::DataTooLarge)?;
    if bool::from(x.is_zero()) {
        return Err(Error::InvalidInput("message representative is zero"));
    }
    let x = m.monty(x);
    let x_blinded = x.mul(&pair.rho_e);
    Ok(Blinded {
        input: m.to_bytes(&x_blinded),
        state: BlindState {
            x,
            rho_inv: pair.rho_inv.clone(),
        },
    })
}

/// x'⁻¹ mod N for a blinded input, ready for [`combine_with_inverse`].
pub struct InputInverse(BoxedMontyForm);

impl std::fmt::Debug for InputInverse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InputInverse(..)")
    }
}

/// The inverse of the blinded input x' (`Blinded::input`). x' is public — it goes to every
/// cell — so this runs in variable time, and the module computes it while the cells work.
/// Errors: `InvalidInput` if x' is not below N; `VerifyFailed` if it has no inverse (then no
/// combination could verify either).
pub fn input_inverse(key: &RsaPublic, input: &[u8]) -> Result<InputInverse> {
    let m = &key.modulus;
    let x_blinded = m
        .parse_below(input)
        .ok_or(Error::InvalidInput("blinded input not below the modulus"))?;
    m.monty(x_blinded)
        .invert_vartime()
        .into_option()
        .map(InputInverse)
        .ok_or(Error::VerifyFailed)
}

/// Combine the parties' partials into x^d (exactly k bytes) and verify it.
/// Errors: `VerifyFailed` if any partial was wrong (so the result is never returned);
/// `InvalidInput` if a partial is malformed (≥ N or wrong length).
pub fn combine(key: &RsaPublic, blinded: &Blinded, partials: &[Vec<u8>]) -> Result<SecretBytes> {
    let inverse = input_inverse(key, &blinded.input)?;
    combine_with_inverse(key, blinded, partials, &inverse)
}

/// `combine` with x'⁻¹ computed beforehand by [`input_inverse`] (while the cells worked).
/// A wrong inverse only makes the verification fail.
pub fn combine_with_inverse(
    key: &RsaPublic,
    blinded: &Blinded,
    partials: &[Vec<u8>],
    inverse: &InputInverse,
) -> Result<SecretBytes> {
    let m = &key.modulus;
    if blinded.state.x.params() != &m.params {
        return Err(Error::InvalidInput("blinded input belongs to another key"));
    }
    if partials.is_empty() {
        return Err(Error::InvalidInput("no partials"));
    }
    // w = Π x'^(2dᵢ) = x'^(2d).
    let w = Zeroizing::new(m.product(partials.iter().map(Vec::as_slice))?);
    // x'⁻¹: public (x' went to every cell), computed in variable time by `input_inverse`.
    let x_blinded_inv = &inverse.0;
    if x_blinded_inv.params() != &m.params {
        return Err(Error::InvalidInput("inverse belongs to another key"));
    }
    // a = (e+1)/2 is an integer because e is odd, and 2a − e = 1, so y' = w^a·x'⁻¹ =
    // x'^(2ad − 1) has y'^e = x'^(2a·ed − e) = x'^(2a − e) = x': y' is the e-th root x'^d
    // (CRYPTO-NOTES §2.2 step 4).
    let a = key
        .e
        .wrapping_add(BoxedUint::one_with_precision(key.e.bits_precision()))
        .shr(1);
    let y_blinded = Zeroizing::new(
        w.pow_bounded_exp(&a, a.bit_width_vartime())
            .mul(x_blinded_inv),
    );
    // Unblind: y = x'^d·ρ⁻¹ = x^d·ρ^(ed)·ρ⁻¹ = x^d.
    let y = Zeroizing::new(y_blinded.mul(&blinded.state.rho_inv));
    // Verify before release: a wrong partial must never yield output (nor a fault leak).
    if !key.pow_e(&y).ct_eq(&blinded.state.x).to_bool() {
        return Err(Error::VerifyFailed);
    }
    Ok(SecretBytes::new(m.to_bytes(&y)))
}
