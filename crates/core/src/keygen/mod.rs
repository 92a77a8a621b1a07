//! Distributed RSA key generation (Boneh–Franklin with distributed sieving) among n ≥ 3
//! honest-but-curious parties, as message-driven state machines with no I/O
//! (CRYPTO-NOTES §1, DESIGN.md "RSA generation"). No party ever holds p, q, φ or d: each ends
//! with an additive integer share of d in exactly `rsa_share::split_exponent`'s form.
//!
//! Rounds (each party sends, then waits for every peer's message of the round):
//! 1. `SieveDeal`, `SieveReshare` ×(n−2) (pairwise): multiplicative sieve shares over Z_M
//!    become additive candidate shares pᵢ, qᵢ for a batch of pairs (sieve.rs, §1.4, §1.2).
//! 2. `Product` (pairwise) then `Open` (broadcast): N = pq for the batch by BGW over a prime
//!    P > 2^(2K+2⌈log₂n⌉+1) behind the `Multiplier` trait (bgw.rs, §1.3); public trial
//!    division of every N to 2^16 (primes.rs, §1.4).
//! 3. `Filter` (broadcast): one BF iteration with a small base on a chunk of survivors. The
//!    |N|-bit part of the exponent rotates among the parties by candidate and iteration, so
//!    every party raises K-bit exponents except when it is the carrier (biprime.rs).
//! 4. `Test`: the counted BF iterations (broadcast, k ≥ 64, bases hashed from the session and
//!    N) with, pairwise, the gcd(N, p+q−1) product over Z_N and the φ-mod-e masks (§1.5, §1.6).
//! 5. `Check` (broadcast): z = r·(p+q−1) mod N and the masked φ mod e; accept iff
//!    gcd(z, N) = 1 and ψ ≠ 0. A rejected candidate goes back to 3, an empty batch to 1.
//! 6. `Trial`: partials x^(2dᵢ) of the floor shares (broadcast, `rsa_partial` itself) fix the
//!    off-by-r correction; pairwise zero-sum deltas of |N| + 160 bits re-randomise every share.
//!
//! Customer mode (`KeygenParams::customer`, docs/THREAT-MODEL.md §1): the last party is the
//! customer, and the protocol must stay private when every cell colludes. Every product with
//! a customer secret (the sieve's a_C·A, N's cross terms, the gcd's r·ψ cross terms) is a
//! Paillier MtA under the customer's fresh key, one per cell (hybrid.rs); products among the
//! cells stay BGW among the cells, kept as additive shares; the customer's rounds are in
//! party/hybrid.rs. The BF test, φ mod e and the floor shares are unchanged. At the end the
//! customer deals Δ = d_customer − c to the cells and keeps only c (`Party::new_customer`).
//!
//! Deviations from the papers, on purpose:
//! - The sieve's multiplicative-to-additive conversion uses BGW products over Z_M (Shamir over
//!   a ring whose primes are all ≥ n) instead of MtA: honest majority suffices here, as for
//!   N. In customer mode the cells' part is still BGW and the customer's factor joins by MtA.
//! - M uses primes ℓ with n ≤ ℓ (not from 3) so that Lagrange denominators are invertible.
//! - The filter iteration uses the least g with (g/N) = +1 and is not counted; the k counted
//!   iterations use hash-derived uniform bases (ePrint 2024/2072: ≤ 1/4 error each with the
//!   gcd check, so k = 64 gives 2^-128).
//! - The BF values are g^(sᵢ) with sᵢ = (pᵢ + qᵢ − 6·[i = 0])/4 and, for one rotating
//!   "carrier" party, g^((N − 5)/4 − s_c): the notes' test with the public part of party 0's
//!   exponent moved around (algebra and leakage argument in biprime.rs).
//! - Elements of Z_M, Z_P and Z_N travel as their Montgomery representations (a public
//!   bijection: zmod.rs), which saves a conversion at each end.
//! - The final deltas use |N| + 160 bits (SHARE_HIDING_BITS, ≥ the issue's |N| + 128) so the
//!   generated shares have the same size distribution as `split_exponent`'s.
//! - Messages of a wrong session, sender, destination, round or phase, and duplicates, are
//!   refused with an error but do not abort the session (a relay may replay); a malformed body
//!   or a failed invariant aborts it.
//!
//! Security caveat (§1, §5.2 item 9): in cells-only mode BGW resists only a minority of
//! colluding parties; customer mode resists all cells (semi-honest, THREAT-MODEL.md).

mod bgw;
mod biprime;
mod dexp;
mod hybrid;
mod msg;
mod party;
mod primes;
pub mod relayed;
pub mod rng;
mod sieve;
mod zmod;

pub use bgw::{Bgw, MulStep, Multiplier};
pub use dexp::E as PUBLIC_EXPONENT;
pub use msg::{Dest, MESSAGE_VERSION, Message, Phase, SESSION_ID_LEN};
pub use party::{Party, Stats, Step};
pub use primes::TRIAL_DIVISION_BOUND;
pub use rng::{KeygenRng, OsRng};

#[cfg(feature = "test-seeded")]
pub use rng::SeededRng;

use crate::rsa_share::RsaShare;

/// Most parties supported (Lagrange products stay within i64).
pub const MAX_PARTIES: usize = 16;
/// Fewest counted biprimality iterations accepted: 4^-64 = 2^-128 (ePrint 2024/2072).
pub const MIN_ITERATIONS: usize = 64;

/// Errors of key generation. None carries a secret.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KeygenError {
    #[error("invalid parameters: {0}")]
    Params(&'static str),
    #[error("message for another session")]
    WrongSession,
    #[error("message from unknown party {0}")]
    UnknownSender(u16),
    #[error("message not addressed to this party")]
    NotForMe,
    #[error("message for round {got}, expected round {expected}")]
    WrongRound { expected: u32, got: u32 },
    #[error("message of an unexpected phase or kind")]
    WrongPhase,
    #[error("duplicate message from party {0}")]
    Duplicate(u16),
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A peer running another keygen protocol version: named, so the operator knows which side
    /// to upgrade.
    #[error(
        "keygen message version {0} from a peer; this party speaks version {ours} (run the same \
         keyfrag-server release on every cell)",
        ours = MESSAGE_VERSION
    )]
    UnsupportedVersion(u8),
    #[error("protocol failure: {0}")]
    Failed(&'static str),
    #[error("session not running")]
    NotRunning,
    #[error("operating system randomness unavailable")]
    Random,
    #[error(transparent)]
    Core(#[from] crate::Error),
}

pub type Result<T> = std::result::Result<T, KeygenError>;

/// Public parameters every party of a session must agree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeygenParams {
    /// Fresh random id binding every message to this session.
    pub session: [u8; SESSION_ID_LEN],
    /// |N|: even, 512..=8192 (the module decides which sizes a token allows).
    pub modulus_bits: usize,
    /// Candidate pairs per BGW batch: more means fewer rounds, more traffic past the hit.
    pub batch: usize,
    /// Candidates per filter round.
    pub filter_chunk: usize,
    /// Counted biprimality iterations (≥ MIN_ITERATIONS).
    pub iterations: usize,
    /// Customer mode: the last party (id n − 1) is the customer, and every product with its
    /// secrets is a Paillier MtA under its key (docs/THREAT-MODEL.md).
    pub customer_mode: bool,
    /// Customer mode: |N| of the customer's Paillier key (≥ |N| + 1024 and ≥ 2048).
    pub paillier_bits: usize,
}

impl KeygenParams {
    pub fn new(session: [u8; SESSION_ID_LEN], modulus_bits: usize) -> KeygenParams {
        KeygenParams {
            session,
            modulus_bits,
            batch: 1024,
            filter_chunk: 32,
            iterations: MIN_ITERATIONS,
            customer_mode: false,
            paillier_bits: min_paillier_bits(modulus_bits),
        }
    }

    /// The same parameters in customer mode (n − 1 cells and the customer as party n − 1).
    pub fn customer(session: [u8; SESSION_ID_LEN], modulus_bits: usize) -> KeygenParams {
        KeygenParams {
            customer_mode: true,
            ..KeygenParams::new(session, modulus_bits)
        }
    }

    /// The parameters of a generation request (|N|, mode): a function of the public request
    /// only, so every party — cells and customer — derives the same ones. Batches: the
    /// default at 2048+ bits in cells-only mode, where a batch costs milliseconds; 512 in
    /// customer mode, where a pair costs tens of milliseconds and a hit early in a batch
    /// still pays for the whole batch (half a batch wasted on average, against a dozen more
    /// relay rounds per extra batch); 256 at 1024 bits (test suites).
    pub fn for_request(
        session: [u8; SESSION_ID_LEN],
        modulus_bits: usize,
        customer: bool,
    ) -> KeygenParams {
        let mut params = if customer {
            KeygenParams {
                batch: 512,
                ..KeygenParams::customer(session, modulus_bits)
            }
        } else {
            KeygenParams::new(session, modulus_bits)
        };
        if modulus_bits <= 1024 {
            params.batch = 256;
        }
        params
    }

    /// Cells among the `parties`.
    pub fn cells(&self, parties: usize) -> usize {
        if self.customer_mode {
            parties - 1
        } else {
            parties
        }
    }

    fn validate(&self, parties: usize) -> Result<()> {
        if !(3..=MAX_PARTIES).contains(&parties) {
            return Err(KeygenError::Params("3 to 16 parties are needed"));
        }
        if self.customer_mode {
            if parties < 4 {
                return Err(KeygenError::Params("customer mode needs 3 cells or more"));
            }
            if self.paillier_bits < min_paillier_bits(self.modulus_bits)
                || !self.paillier_bits.is_multiple_of(64)
                || self.paillier_bits > crate::paillier::MAX_BITS
            {
                return Err(KeygenError::Params(
                    "Paillier modulus must be a multiple of 64 bits, ≥ |N| + 1024 and ≥ 2048",
                ));
            }
        }
        if !self.modulus_bits.is_multiple_of(2) || !(512..=8192).contains(&self.modulus_bits) {
            return Err(KeygenError::Params("modulus bits must be even, 512..=8192"));
        }
        if self.batch == 0 || self.filter_chunk == 0 {
            return Err(KeygenError::Params(
                "batch and filter chunk must be positive",
            ));
        }
        if self.iterations < MIN_ITERATIONS {
            return Err(KeygenError::Params("at least 64 biprimality iterations"));
        }
        Ok(())
    }
}

/// The smallest customer Paillier key for an RSA modulus: |N| + 1024 bits (3072 for RSA-2048,
/// 4096 for RSA-3072), and 2048 at least. The MtA shapes (hybrid.rs) need only about
/// |N| + 133 bits; the margin follows the sizes.
pub fn min_paillier_bits(modulus_bits: usize) -> usize {
    (modulus_bits + 1024).max(crate::paillier::MIN_BITS)
}

/// A party's result: the public key and its share of d. Debug never prints the share.
#[derive(Clone, Debug)]
pub struct GeneratedShare {
    /// Big-endian N, exactly modulus_bits long.
    pub modulus: Vec<u8>,
    /// Big-endian e (65537).
    pub public_exponent: Vec<u8>,
    pub share: RsaShare,
}
