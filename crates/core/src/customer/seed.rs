//! The customer's seed and what derives from it.
//!
//! Two independent uses, separated by their HKDF salts: the relay key pairs
//! (`PartyKeys::from_seed`, salt "keyfrag/party-keys/v1") and the share PRF below (salt
//! "keyfrag/customer-share/v1"). Both are deterministic, so restoring the seed restores every
//! key's customer share and the identity the cells pinned.

use hkdf::Hkdf;
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::dprf::PrfShare;
use crate::relay::PartyKeys;
use crate::rsa_share::{RsaShare, SHARE_HIDING_BITS, share_bytes};
use crate::secret::SecretBytes;
use crate::{Error, Result, random};

pub const SEED_BYTES: usize = 32;

const SHARE_SALT: &[u8] = b"keyfrag/customer-share/v1";

/// Key types the share PRF separates (the `type` of c = PRF(seed, type ‖ key uid)).
const TYPE_RSA: &[u8] = b"rsa";
const TYPE_PRF: &[u8] = b"prf";

/// The seed. Zeroized on drop; Debug prints `[redacted]`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CustomerSeed([u8; SEED_BYTES]);

impl std::fmt::Debug for CustomerSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerSeed([redacted])")
    }
}

impl CustomerSeed {
    /// A fresh seed from OS randomness.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; SEED_BYTES];
        random::fill(&mut seed)?;
        Ok(CustomerSeed(seed))
    }

    pub fn from_bytes(bytes: [u8; SEED_BYTES]) -> Self {
        CustomerSeed(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8; SEED_BYTES] {
        &self.0
    }

    /// The customer's relay key pairs (sealing and identity), which the cells pin.
    pub fn party_keys(&self) -> PartyKeys {
        PartyKeys::from_seed(&self.0)
    }

    /// SHA-256 of the identity public key: a short public name for this seed that a file, a
    /// token's configuration and the cells can compare without any secret.
    pub fn fingerprint(&self) -> [u8; 32] {
        identity_fingerprint(&self.party_keys().identity_public())
    }

    /// The customer's long-term share of RSA key `key_uid` with a `modulus_bits` modulus:
    /// c = PRF(seed, "rsa" ‖ key uid), a signed integer whose magnitude is uniform in
    /// [0, 2^(|N|+160)) — the same distribution as any other random share (CRYPTO-NOTES §2.3),
    /// in the same fixed-width encoding.
    ///
    /// The PRF is HKDF-SHA512 (RFC 5869): extract with a domain salt, expand with an info that
    /// names the type, the modulus size and the key uid (length-prefixed, so no two inputs
    /// collide).
    pub fn rsa_share(&self, key_uid: &str, modulus_bits: usize) -> Result<RsaShare> {
        let hiding_bits = modulus_bits + SHARE_HIDING_BITS;
        let rand_len = hiding_bits.div_ceil(8);
        let out_len = share_bytes(modulus_bits);
        let bits =
            u32::try_from(modulus_bits).map_err(|_| Error::InvalidInput("modulus too large"))?;
        let uid_len =
            u16::try_from(key_uid.len()).map_err(|_| Error::InvalidInput("key uid too long"))?;

        let mut info = Vec::with_capacity(TYPE_RSA.len() + 7 + key_uid.len());
        info.push(TYPE_RSA.len() as u8);
        info.extend_from_slice(TYPE_RSA);
        info.extend_from_slice(&bits.to_be_bytes());
        info.extend_from_slice(&uid_len.to_be_bytes());
        info.extend_from_slice(key_uid.as_bytes());

        // One byte for the sign, then the magnitude's bytes.
        let mut okm = Zeroizing::new(vec![0u8; 1 + rand_len]);
        Hkdf::<Sha512>::new(Some(SHARE_SALT), &self.0)
            .expand(&info, &mut okm)
            .map_err(|_| Error::InvalidInput("modulus too large for the share PRF"))?;
        okm[1] &= 0xffu8 >> (8 * rand_len - hiding_bits);

        let mut magnitude = vec![0u8; out_len];
        magnitude[out_len - rand_len..].copy_from_slice(&okm[1..]);
        Ok(RsaShare {
            negative: okm[0] & 1 == 1,
            magnitude: SecretBytes::new(magnitude),
        })
    }
}

impl CustomerSeed {
    /// The customer's share of PRF key `key_uid`: c = PRF(seed, "prf" ‖ key uid), 64 bytes of
    /// the same HKDF-SHA512 as `rsa_share` (info: type, key uid, both length-prefixed) reduced
    /// mod ℓ, so uniform up to 2^-250. The module adds c·B to the cells' evaluations
    /// (`dprf::Blinding::finalize`); the cells never see c.
    pub fn prf_share(&self, key_uid: &str) -> Result<PrfShare> {
        let uid_len =
            u16::try_from(key_uid.len()).map_err(|_| Error::InvalidInput("key uid too long"))?;
        let mut info = Vec::with_capacity(TYPE_PRF.len() + 3 + key_uid.len());
        info.push(TYPE_PRF.len() as u8);
        info.extend_from_slice(TYPE_PRF);
        info.extend_from_slice(&uid_len.to_be_bytes());
        info.extend_from_slice(key_uid.as_bytes());
        let mut okm = Zeroizing::new([0u8; 64]);
        Hkdf::<Sha512>::new(Some(SHARE_SALT), &self.0)
            .expand(&info, &mut *okm)
            .map_err(|_| Error::InvalidInput("share PRF output length"))?;
        Ok(PrfShare::from_uniform(&okm))
    }
}

/// SHA-256 of an Ed25519 identity public key.
pub fn identity_fingerprint(identity_public: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(identity_public).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsa_share::magnitude_fits;

    fn seed(byte: u8) -> CustomerSeed {
        CustomerSeed::from_bytes([byte; SEED_BYTES])
    }

    #[test]
    fn shares_are_deterministic_per_seed_and_key() {
        let a = seed(1).rsa_share("k1", 2048).unwrap();
        assert_eq!(a, seed(1).rsa_share("k1", 2048).unwrap());
        assert_ne!(a, seed(1).rsa_share("k2", 2048).unwrap());
        assert_ne!(a, seed(2).rsa_share("k1", 2048).unwrap());
        assert_ne!(a, seed(1).rsa_share("k1", 3072).unwrap());
    }

    #[test]
    fn shares_have_the_full_hiding_width_and_fit_the_cells_exponent() {
        for bits in [1024usize, 2048, 3072, 4096] {
            let mut top_bit_seen = false;
            let mut negative_seen = [false; 2];
            for i in 0..64u8 {
                let s = seed(i).rsa_share("uid", bits).unwrap();
                assert!(magnitude_fits(s.magnitude.expose(), bits));
                let m = s.magnitude.expose();
                // Nothing above |N| + 160 bits.
                let leading_zero_bits = m.iter().take_while(|&&b| b == 0).count() * 8
                    + m.iter()
                        .find(|&&b| b != 0)
                        .map_or(0, |b| b.leading_zeros() as usize);
                let width = 8 * m.len() - leading_zero_bits;
                assert!(width <= bits + SHARE_HIDING_BITS);
                top_bit_seen |= width == bits + SHARE_HIDING_BITS;
                negative_seen[s.negative as usize] = true;
            }
            // 64 draws: the top bit is set in about half (a failure here has odds 2^-64).
            assert!(
                top_bit_seen,
                "no share reached the full width at {bits} bits"
            );
            assert_eq!(negative_seen, [true, true]);
        }
    }

    #[test]
    fn prf_shares_are_deterministic_per_seed_and_key_and_apart_from_rsa() {
        let a = seed(1).prf_share("k1").unwrap();
        assert_eq!(*a.to_bytes(), *seed(1).prf_share("k1").unwrap().to_bytes());
        assert_ne!(*a.to_bytes(), *seed(1).prf_share("k2").unwrap().to_bytes());
        assert_ne!(*a.to_bytes(), *seed(2).prf_share("k1").unwrap().to_bytes());
        assert!(a.commitment().is_some());
    }

    #[test]
    fn debug_never_shows_the_seed() {
        assert_eq!(format!("{:?}", seed(7)), "CustomerSeed([redacted])");
    }

    #[test]
    fn the_fingerprint_is_the_party_identity_hash() {
        let s = seed(3);
        assert_eq!(
            s.fingerprint(),
            identity_fingerprint(&s.party_keys().identity_public())
        );
        assert_ne!(s.fingerprint(), seed(4).fingerprint());
    }
}
