//! Constant-time fixed-window modular exponentiation for the cells' partials and keygen's
//! secret exponents, on an AVX-512 IFMA Montgomery kernel (`ifma`) when the CPU has one.
//!
//! `pow_ct(x, e, bits, N)` = x^e mod N (and `PowCtx`, the same with N's constants computed
//! once for many exponentiations modulo one N); `partial` adds one final squaring.
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

/// A modulus prepared for repeated constant-time exponentiations (`None` from `new` when no
/// fast kernel applies: no IFMA, or |N| outside the instantiated sizes).
pub(crate) struct PowCtx {
    #[cfg(target_arch = "x86_64")]
    inner: window::Prepared,
}

impl PowCtx {
    pub(crate) fn new(n: &Odd<BoxedUint>) -> Option<PowCtx> {
        #[cfg(target_arch = "x86_64")]
        {
            window::Prepared::new(n).map(|inner| PowCtx { inner })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = n;
            None
        }
    }

    /// The same for a secret modulus (constant-time setup; sizes from its precision).
    pub(crate) fn new_secret(n: &Odd<BoxedUint>) -> Option<PowCtx> {
        #[cfg(target_arch = "x86_64")]
        {
            window::Prepared::new_secret(n).map(|inner| PowCtx { inner })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = n;
            None
        }
    }

    /// x^e mod N in constant time: see `pow_ct`.
    pub(crate) fn pow(&self, x: &BoxedUint, e: &BoxedUint, exp_bits: usize) -> Option<BoxedUint> {
        #[cfg(target_arch = "x86_64")]
        {
            self.inner.pow(x, e.as_words(), exp_bits, false)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (x, e, exp_bits);
            None
        }
    }
}

/// x^e mod N in constant time, or `None` if no fast kernel applies here (the caller then uses
/// crypto-bigint's `pow_bounded_exp`, which computes the same value).
///
/// `base` < N, at N's precision or less; `exponent`: only its low `exp_bits` bits are read
/// (`exp_bits` ≤ its precision; 0 gives `None`). The operation sequence depends only on |N|
/// and `exp_bits`, both public. The result has N's precision.
pub(crate) fn pow_ct(
    base: &BoxedUint,
    exponent: &BoxedUint,
    exp_bits: usize,
    modulus: &Odd<BoxedUint>,
) -> Option<BoxedUint> {
    PowCtx::new(modulus)?.pow(base, exponent, exp_bits)
}

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
