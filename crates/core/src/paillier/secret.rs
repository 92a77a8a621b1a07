//! The Paillier secret key: generation and CRT decryption (module docs in mod.rs).

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, ConcatenatingMul, NonZero, Odd, Resize};
use zeroize::{Zeroize, Zeroizing};

use crate::keygen::KeygenRng;
use crate::modexp::PowCtx;

use super::primes::random_prime;
use super::{Ciphertext, MAX_BITS, MIN_BITS, PaillierError, PublicKey, Randomiser, Result};

/// One prime's half of the CRT decryption.
struct Half {
    p: Zeroizing<BoxedUint>,
    p_minus_1: Zeroizing<BoxedUint>,
    /// Arithmetic modulo p and p². crypto-bigint keeps Montgomery parameters behind an `Arc`
    /// and cannot zeroize them (the `rsa` crate's CRT values share this limitation); they
    /// live only as long as one generation session.
    mod_p: BoxedMontyParams,
    mod_pp: BoxedMontyParams,
    /// hₚ = (−q)⁻¹ mod p: for g = N + 1, Lₚ(g^(p−1) mod p²) = (p − 1)·q ≡ −q (mod p).
    h: BoxedMontyForm,
    /// The IFMA kernel for p² (constant-time setup; zeroized on drop), when available.
    ctx: Option<PowCtx>,
    bits: u32,
}

impl Half {
    fn new(p: &BoxedUint, other: &BoxedUint) -> Result<Half> {
        let bits = p.bit_width_vartime(); // |p| = |N|/2 is public
        let odd = |v: BoxedUint| {
            Odd::new(v)
                .into_option()
                .ok_or(PaillierError::Params("prime must be odd"))
        };
        let mod_p = BoxedMontyParams::new(odd(p.clone())?);
        let mod_pp = BoxedMontyParams::new(odd(p.concatenating_mul(p))?);
        let nz = NonZero::new(p.clone()).expect("prime > 0");
        let other_mod_p = Zeroizing::new(other.rem(&nz));
        let h = BoxedMontyForm::new(BoxedUint::clone(&other_mod_p), &mod_p)
            .neg()
            .invert()
            .into_option()
            .ok_or(PaillierError::Params("primes must be distinct"))?;
        Ok(Half {
            ctx: PowCtx::new_secret(mod_pp.modulus()),
            p: Zeroizing::new(p.clone()),
            p_minus_1: Zeroizing::new(
                p.wrapping_sub(BoxedUint::one_with_precision(p.bits_precision())),
            ),
            mod_p,
            mod_pp,
            h,
            bits,
        })
    }

    /// u^p mod p² for u uniform mod p²: uniform in the subgroup of order p − 1, the p-part of
    /// the N-th residues (Z_{p²}* ≅ Z_p × Z_{p−1}, and raising to p kills the first factor
    /// and permutes the second). Constant time in u and p (fixed width |p|).
    fn residue(&self, rng: &mut dyn KeygenRng) -> Result<Zeroizing<BoxedUint>> {
        let pp = self.mod_pp.modulus().as_nz_ref();
        let u = crate::keygen::rng::uniform_mod(rng, pp).map_err(|_| PaillierError::Random)?;
        let fast = self
            .ctx
            .as_ref()
            .and_then(|ctx| ctx.pow(&u, &self.p, self.bits as usize));
        Ok(Zeroizing::new(match fast {
            Some(v) => v,
            None => BoxedMontyForm::new(BoxedUint::clone(&u), &self.mod_pp)
                .pow_bounded_exp(&self.p, self.bits)
                .retrieve(),
        }))
    }

    /// mₚ = Lₚ(c^(p−1) mod p²)·hₚ mod p, constant time in p and c.
    fn decrypt(&self, c: &BoxedUint) -> Zeroizing<BoxedUint> {
        let pp = self.mod_pp.modulus().as_nz_ref();
        let cp = Zeroizing::new(c.rem(pp));
        let fast = self
            .ctx
            .as_ref()
            .and_then(|ctx| ctx.pow(&cp, &self.p_minus_1, self.bits as usize));
        let x = Zeroizing::new(match fast {
            Some(v) => v,
            None => BoxedMontyForm::new(BoxedUint::clone(&cp), &self.mod_pp)
                .pow_bounded_exp(&self.p_minus_1, self.bits)
                .retrieve(),
        });
        let prec = x.bits_precision();
        let xm1 = Zeroizing::new(x.wrapping_sub(BoxedUint::one_with_precision(prec)));
        let p_wide = Zeroizing::new((&*self.p).resize_unchecked(prec));
        let l = Zeroizing::new(
            xm1.div_rem(&NonZero::new(BoxedUint::clone(&p_wide)).expect("p > 0"))
                .0
                .resize_unchecked(self.p.bits_precision()),
        );
        let m = BoxedMontyForm::new(BoxedUint::clone(&l), &self.mod_p).mul(&self.h);
        Zeroizing::new(m.retrieve())
    }
}

impl Drop for Half {
    fn drop(&mut self) {
        self.h.zeroize();
    }
}

/// A Paillier secret key. Zeroized on drop (see `Half` for the Montgomery parameters);
/// Debug prints only the size.
pub struct SecretKey {
    public: PublicKey,
    p: Half,
    q: Half,
    /// p⁻¹ mod q, for Garner's recombination.
    p_inv_q: BoxedMontyForm,
    /// p⁻² mod q², for recombining randomisers modulo N².
    pp_inv_qq: BoxedMontyForm,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaillierSecretKey")
            .field("bits", &self.public.bits)
            .finish_non_exhaustive()
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.p_inv_q.zeroize();
        self.pp_inv_qq.zeroize();
    }
}

impl SecretKey {
    /// A fresh key with an exactly `bits`-bit N = pq, p ≠ q primes of bits/2 bits.
    pub fn generate(bits: usize, rng: &mut dyn KeygenRng) -> Result<SecretKey> {
        if !(MIN_BITS..=MAX_BITS).contains(&bits) || !bits.is_multiple_of(64) {
            return Err(PaillierError::Params("Paillier modulus size"));
        }
        let half = (bits / 2) as u32;
        loop {
            let p = Zeroizing::new(random_prime(rng, half)?);
            let q = Zeroizing::new(random_prime(rng, half)?);
            if *p == *q {
                continue;
            }
            let n = p.concatenating_mul(&*q);
            if n.bit_width_vartime() as usize != bits {
                continue;
            }
            return SecretKey::from_primes(&p, &q);
        }
    }

    /// From two distinct odd primes of the same size (tests and generation).
    pub(crate) fn from_primes(p: &BoxedUint, q: &BoxedUint) -> Result<SecretKey> {
        if p.bit_width_vartime() != q.bit_width_vartime() {
            return Err(PaillierError::Params("primes of different sizes"));
        }
        let n = p.concatenating_mul(q);
        let bits = n.bit_width_vartime();
        let public = PublicKey::new(n.resize_unchecked(bits))?;
        let hp = Half::new(p, q)?;
        let hq = Half::new(q, p)?;
        let p_mod_q = Zeroizing::new(p.rem(&NonZero::new(q.clone()).expect("q > 0")));
        let p_inv_q = BoxedMontyForm::new(BoxedUint::clone(&p_mod_q), &hq.mod_p)
            .invert()
            .into_option()
            .ok_or(PaillierError::Params("primes must be distinct"))?;
        let pp_mod_qq = Zeroizing::new(
            hp.mod_pp
                .modulus()
                .as_ref()
                .rem(hq.mod_pp.modulus().as_nz_ref()),
        );
        let pp_inv_qq = BoxedMontyForm::new(BoxedUint::clone(&pp_mod_qq), &hq.mod_pp)
            .invert()
            .into_option()
            .ok_or(PaillierError::Params("primes must be distinct"))?;
        Ok(SecretKey {
            public,
            p: hp,
            q: hq,
            p_inv_q,
            pp_inv_qq,
        })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// A randomiser made with the factorisation: CRT of u^p mod p² and v^q mod q², uniform
    /// over the N-th residues of Z_{N²}* (the subgroup of order φ(N), since gcd(N, φ(N)) = 1
    /// for primes of equal size) — the distribution of r^N, at a fraction of its cost
    /// (exponents of |N|/2 bits modulo p², q² instead of |N| bits modulo N²; the same idea
    /// as fast-paillier's CRT encryption).
    pub fn randomiser(&self, rng: &mut dyn KeygenRng) -> Result<Randomiser> {
        let rp = self.p.residue(rng)?;
        let rq = self.q.residue(rng)?;
        let qq = &self.q.mod_pp;
        let rp_mod_qq = Zeroizing::new(rp.rem(qq.modulus().as_nz_ref()));
        let diff = BoxedMontyForm::new(BoxedUint::clone(&rq), qq)
            .sub(&BoxedMontyForm::new(BoxedUint::clone(&rp_mod_qq), qq));
        let h = Zeroizing::new(diff.mul(&self.pp_inv_qq).retrieve());
        let prec = self.public.nn.bits_precision();
        let pp = self.p.mod_pp.modulus().as_ref();
        let rho = Zeroizing::new(
            pp.concatenating_mul(&*h)
                .resize_unchecked(prec)
                .wrapping_add((&*rp).resize_unchecked(prec)),
        );
        Ok(Randomiser(BoxedMontyForm::new(
            BoxedUint::clone(&rho),
            &self.public.nn,
        )))
    }

    /// Enc(m) under this key with a CRT randomiser (the key holder's own encryptions).
    pub fn encrypt(&self, m: &BoxedUint, rng: &mut dyn KeygenRng) -> Result<Ciphertext> {
        let r = self.randomiser(rng)?;
        self.public.encrypt_with(m, &r)
    }

    /// Dec(c) ∈ [0, N), by CRT and Garner: m = mₚ + p·((m_q − mₚ)·p⁻¹ mod q).
    pub fn decrypt(&self, c: &Ciphertext) -> Zeroizing<BoxedUint> {
        let c = Zeroizing::new(c.0.retrieve());
        let mp = self.p.decrypt(&c);
        let mq = self.q.decrypt(&c);
        let mp_mod_q = Zeroizing::new(mp.rem(self.q.mod_p.modulus().as_nz_ref()));
        let diff = BoxedMontyForm::new(BoxedUint::clone(&mq), &self.q.mod_p).sub(
            &BoxedMontyForm::new(BoxedUint::clone(&mp_mod_q), &self.q.mod_p),
        );
        let h = Zeroizing::new(diff.mul(&self.p_inv_q).retrieve());
        let prec = self.public.n.bits_precision();
        let ph = Zeroizing::new(self.p.p.concatenating_mul(&*h).resize_unchecked(prec));
        Zeroizing::new(ph.wrapping_add((&*mp).resize_unchecked(prec)))
    }
}
