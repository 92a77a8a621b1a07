//! A cell's partial result: x^(2·dᵢ) mod N, in constant time with a fixed exponent width.
//!
//! Squaring the exponent keeps the parity (Jacobi symbol) of a share from leaking
//! (CRYPTO-NOTES §5.2); a negative share is applied as an exponent of x⁻¹, selected in
//! constant time.

use crate::Result;
use crate::rsa_share::RsaShare;

/// x^(2·share) mod N. `modulus` and `input` big-endian; output exactly len(N) bytes
/// (len(N) = ceil(bits/8)). Errors: input = 0, input ≥ N, input not invertible mod N,
/// share magnitude not `share_bytes(bits(N))` long.
pub fn rsa_partial(modulus: &[u8], input: &[u8], share: &RsaShare) -> Result<Vec<u8>> {
    let _ = (modulus, input, share);
    todo!()
}
