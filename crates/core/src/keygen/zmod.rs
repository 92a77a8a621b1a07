//! Arithmetic modulo an odd public modulus (the BGW prime P, the sieve modulus M, or N) and
//! Shamir sharing over it (CRYPTO-NOTES §1.3). Party j's point is x = j + 1.
//!
//! Shamir over the ring Z_M or Z_N (not a field) is sound here because every Lagrange
//! denominator is a product of differences < n, and those are invertible: M has no prime
//! factor ≤ n (sieve.rs) and N none below 2^16 (trial division).

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, NonZero, Odd, Resize};
use zeroize::Zeroizing;

use super::rng::{KeygenRng, uniform_mod};
use super::{KeygenError, Result};

/// Elements are Montgomery forms; secrets among them live in `Zeroizing` containers.
pub(crate) type Elem = BoxedMontyForm;

#[derive(Clone)]
pub(crate) struct Zmod {
    params: BoxedMontyParams,
    modulus: NonZero<BoxedUint>,
    /// Bytes of one encoded element (fixed, so payload sizes never depend on values).
    pub(crate) bytes: usize,
    /// The modulus's bit width (public).
    bits: u32,
}

impl Zmod {
    pub(crate) fn new(modulus: &BoxedUint) -> Result<Self> {
        let odd = Odd::new(modulus.clone())
            .into_option()
            .ok_or(KeygenError::Params("modulus must be odd"))?;
        let bits = modulus.bit_width_vartime();
        Ok(Zmod {
            params: BoxedMontyParams::new_vartime(odd),
            modulus: NonZero::new(modulus.clone()).expect("odd is nonzero"),
            bytes: (bits as usize).div_ceil(8),
            bits,
        })
    }

    pub(crate) fn odd_modulus(&self) -> &Odd<BoxedUint> {
        self.params.modulus()
    }

    pub(crate) fn modulus(&self) -> &BoxedUint {
        self.modulus.as_ref()
    }

    pub(crate) fn precision(&self) -> u32 {
        self.params.bits_precision()
    }

    /// Any integer, reduced (constant time in its value; its precision is public). A value
    /// whose precision alone puts it below the modulus needs no division.
    pub(crate) fn elem(&self, v: &BoxedUint) -> Elem {
        if v.bits_precision() < self.bits {
            return self.reduced(v);
        }
        let reduced = Zeroizing::new(v.rem(&self.modulus));
        BoxedMontyForm::new(BoxedUint::clone(&reduced), &self.params)
    }

    /// An integer already below the modulus (no reduction).
    pub(crate) fn reduced(&self, v: &BoxedUint) -> Elem {
        BoxedMontyForm::new(v.resize_unchecked(self.precision()), &self.params)
    }

    pub(crate) fn small(&self, k: u64) -> Elem {
        let v = BoxedUint::from(k).resize_unchecked(self.precision());
        if self.modulus.as_ref().bit_width_vartime() > 64 {
            self.reduced(&v)
        } else {
            self.elem(&v)
        }
    }

    /// c·k for a small public k, by doubling and adding (cheaper than a Montgomery product;
    /// the sequence depends only on k).
    pub(crate) fn mul_small(&self, c: &Elem, k: u64) -> Elem {
        if k == 0 {
            return self.zero();
        }
        let mut acc = c.clone();
        for bit in (0..63 - k.leading_zeros()).rev() {
            acc = acc.double();
            if (k >> bit) & 1 == 1 {
                acc = acc.add(c);
            }
        }
        acc
    }

    pub(crate) fn zero(&self) -> Elem {
        BoxedMontyForm::zero(&self.params)
    }

    pub(crate) fn random(&self, rng: &mut dyn KeygenRng) -> Result<Elem> {
        let v = uniform_mod(rng, &self.modulus)?;
        Ok(BoxedMontyForm::new(BoxedUint::clone(&v), &self.params))
    }

    /// Fixed-width big-endian encoding of the Montgomery representation x·R mod m
    /// (R = 2^(64·⌈precision/64⌉), public: the modulus's precision is part of the protocol
    /// parameters), appended to `out`. A fixed public bijection of x, so a message carries
    /// exactly what x's plain encoding would, without a conversion at either end.
    pub(crate) fn encode(&self, x: &Elem, out: &mut Vec<u8>) {
        let be = Zeroizing::new(x.as_montgomery().to_be_bytes());
        out.extend_from_slice(&be[be.len() - self.bytes..]);
    }

    /// Decode one `encode`d element; rejects values ≥ the modulus.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Elem> {
        let v = self.decode_integer(bytes)?;
        Ok(BoxedMontyForm::from_montgomery(
            BoxedUint::clone(&v),
            &self.params,
        ))
    }

    /// Decode a plain big-endian integer below the modulus (not an `encode`d element).
    pub(crate) fn decode_plain(&self, bytes: &[u8]) -> Result<Elem> {
        let v = self.decode_integer(bytes)?;
        Ok(self.reduced(&v))
    }

    fn decode_integer(&self, bytes: &[u8]) -> Result<Zeroizing<BoxedUint>> {
        let v = Zeroizing::new(
            BoxedUint::from_be_slice(bytes, self.precision())
                .map_err(|_| KeygenError::Malformed("element too long"))?,
        );
        if !bool::from(v.ct_lt(self.modulus.as_ref())) {
            return Err(KeygenError::Malformed("element not reduced"));
        }
        Ok(v)
    }

    /// Lagrange coefficients at 0 for the points xs (public, small, distinct).
    pub(crate) fn lagrange_at_zero(&self, xs: &[u64]) -> Result<Vec<Elem>> {
        let mut out = Vec::with_capacity(xs.len());
        for (j, &xj) in xs.iter().enumerate() {
            // λ_j = Π_{k≠j} x_k / (x_k − x_j); |products| ≤ 16! fits i64 (n ≤ 16).
            let (mut num, mut den) = (1i64, 1i64);
            for (k, &xk) in xs.iter().enumerate() {
                if k != j {
                    num *= xk as i64;
                    den *= xk as i64 - xj as i64;
                }
            }
            let sign_neg = (num < 0) != (den < 0);
            let num = self.small(num.unsigned_abs());
            let den_inv = self
                .small(den.unsigned_abs())
                .invert_vartime()
                .into_option()
                .ok_or(KeygenError::Params("Lagrange denominator not invertible"))?;
            let l = num.mul(&den_inv);
            out.push(if sign_neg { l.neg() } else { l });
        }
        Ok(out)
    }

    /// Points (x = 1..=n) of a random degree-`degree` polynomial with constant term `secret`.
    pub(crate) fn share(
        &self,
        secret: &Elem,
        degree: usize,
        n: usize,
        rng: &mut dyn KeygenRng,
    ) -> Result<Zeroizing<Vec<Elem>>> {
        let mut coeffs = Zeroizing::new(Vec::with_capacity(degree));
        for _ in 0..degree {
            coeffs.push(self.random(rng)?);
        }
        let mut points = Zeroizing::new(Vec::with_capacity(n));
        for x in 1..=n as u64 {
            // Horner: a_d·x^d + … + a_1·x + secret.
            let mut acc = self.zero();
            for c in coeffs.iter().rev() {
                acc = self.mul_small(&acc.add(c), x);
            }
            points.push(acc.add(secret));
        }
        Ok(points)
    }

    /// Σ λ_j·v_j.
    pub(crate) fn combine(&self, lambdas: &[Elem], values: &[Elem]) -> Elem {
        let mut acc = self.zero();
        for (l, v) in lambdas.iter().zip(values) {
            acc = acc.add(&l.mul(v));
        }
        acc
    }
}

use crypto_bigint::CtLt;
