//! A cell's partial result: x^(2·dᵢ) mod N, in constant time with a fixed exponent width.
//!
//! Squaring the exponent keeps the parity (Jacobi symbol) of a share from leaking
//! (CRYPTO-NOTES §5.2); a negative share is applied as an exponent of x⁻¹, selected in
//! constant time.

use crypto_bigint::{BoxedUint, Choice, CtSelect};
use zeroize::Zeroizing;

use crate::bigint::{Modulus, to_fixed_be};
use crate::modexp;
use crate::rsa_share::{RsaShare, magnitude_fits, share_bytes, share_exponent_bits};
use crate::{Error, Result};

/// x^(2·share) mod N. `modulus` and `input` big-endian; output exactly len(N) bytes
/// (len(N) = ceil(bits/8)). Errors (all `InvalidInput`): input = 0, input ≥ N, input not
/// invertible mod N, share magnitude not `share_bytes(bits(N))` long or wider than
/// `share_exponent_bits(bits(N))` bits (see `magnitude_fits`), N even or < 3.
pub fn rsa_partial(modulus: &[u8], input: &[u8], share: &RsaShare) -> Result<Vec<u8>> {
    let m = Modulus::parse(modulus)?;
    if share.magnitude.len() != share_bytes(m.bits) {
        return Err(Error::InvalidInput("share magnitude has the wrong width"));
    }
    // pow_bounded_exp reads only share_exponent_bits bits; a wider magnitude would be
    // truncated silently, so refuse it (this reads padding bits only).
    if !magnitude_fits(share.magnitude.expose(), m.bits) {
        return Err(Error::InvalidInput(
            "share magnitude exceeds the fixed width",
        ));
    }
    // The input is public (blinded by the module), so plain checks are fine here.
    let x = m
        .parse_below(input)
        .ok_or(Error::InvalidInput("input not below the modulus"))?;
    if bool::from(x.is_zero()) {
        return Err(Error::InvalidInput("input is zero"));
    }
    let x = m.monty(x);
    // Variable time is fine here: x is the blinded input, which the cell receives in the
    // clear, and x⁻¹ is computed for every request whatever the share's sign, so the
    // inverse's timing depends only on public data and leaks nothing about the share.
    // Which of x and x⁻¹ is used stays a constant-time selection below.
    let x_inv = x.invert_vartime();
    if !x_inv.is_some().to_bool() {
        return Err(Error::InvalidInput("input not invertible modulo N"));
    }
    let x_inv = Zeroizing::new(x_inv.unwrap());

    // Negative share: exponentiate x⁻¹ instead. Select, never branch, on the secret sign.
    let negative = Choice::from_u8_lsb(u8::from(share.negative));
    let base = Zeroizing::new(x.ct_select(&x_inv, negative));

    // Exponent at its fixed width: the magnitude's byte length and the loop bound are both
    // functions of |N| only, never of the share's value.
    let exp_bits = share_exponent_bits(m.bits);
    let precision = u32::try_from(8 * share.magnitude.len())
        .map_err(|_| Error::InvalidInput("share magnitude too large"))?;
    let exponent = Zeroizing::new(
        BoxedUint::from_be_slice(share.magnitude.expose(), precision)
            .map_err(|_| Error::InvalidInput("share magnitude too large"))?,
    );
    // Fast path (AVX-512 IFMA kernel, `modexp`): the same x^(2·|dᵢ|) mod N, constant time.
    let plain_base = Zeroizing::new(base.retrieve());
    if let Some(y2) = modexp::partial(m.params.modulus(), &plain_base, &exponent, exp_bits) {
        let y2 = Zeroizing::new(y2);
        return Ok(to_fixed_be(&y2, m.len));
    }
    let exp_bits = u32::try_from(exp_bits).map_err(|_| Error::InvalidInput("modulus too large"))?;
    let y = Zeroizing::new(base.pow_bounded_exp(&exponent, exp_bits));
    // Square last: x^(2·|dᵢ|) = (x^|dᵢ|)², so the parity of dᵢ never shows (Jacobi +1).
    let y2 = y.square();
    Ok(m.to_bytes(&y2))
}
