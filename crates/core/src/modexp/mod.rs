//! Constant-time fixed-window modular exponentiation for the cells' partials, on an
//! AVX-512 IFMA Montgomery kernel (`ifma`) when the CPU has one.
//!
//! `partial(N, x, e, bits)` = x^(2e) mod N: left-to-right fixed windows of `WINDOW` bits over
//! exactly `bits` exponent bits (public: a function of |N|), a table of 2^WINDOW powers
//! read by scanning every entry with masks, one final squaring. It returns `None` when no
//! fast kernel applies (no IFMA, or |N| outside the instantiated sizes); the caller then uses
//! crypto-bigint's `BoxedMontyForm::pow_bounded_exp`, which computes the same value.
//!
//! Constant time in the secret exponent e and in x (x is secret too: it may be x⁻¹, chosen
//! by the share's sign): the operation sequence, loop bounds and memory addresses depend only
//! on |N| and `bits`; exponent bits only become masks; conversions move bits at fixed
//! positions; the final reduction subtracts under a mask. The only branches are on |N|, on
//! `bits` and on the CPU's features.

#[cfg(target_arch = "x86_64")]
mod ifma;
#[cfg(target_arch = "x86_64")]
mod window;

use crypto_bigint::{BoxedUint, Odd};

/// x^(2e) mod N, or `None` if no fast kernel applies here.
///
/// `n`: the odd modulus (public). `x`: the base, < N, at N's precision. `e`: the exponent;
/// only its low `exp_bits` bits are read (`exp_bits` ≤ its precision). The result has N's
/// precision.
pub(crate) fn partial(
    n: &Odd<BoxedUint>,
    x: &BoxedUint,
    e: &BoxedUint,
    exp_bits: usize,
) -> Option<BoxedUint> {
    #[cfg(target_arch = "x86_64")]
    {
        // On x86-64 a crypto-bigint word is a u64.
        window::partial(n, x, e.as_words(), exp_bits)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (n, x, e, exp_bits);
        None
    }
}
