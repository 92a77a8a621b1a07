//! Party identities: the secret key pairs a party holds, the public card its peers pin, and the
//! roster of cards a party accepts messages from (its cluster file, parsed).

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use hpke::{Deserializable, Kem as _, Serializable};
use sha2::{Digest, Sha256};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::codec::{Reader, check_id, put_short_str};
use super::{Kem, RelayError, RelayResult};

/// Format version of a card's canonical encoding (and so of its fingerprint).
pub const CARD_VERSION: u8 = 1;

/// HKDF salt for deriving a party's key pairs from its seed. The customer's seed also keys the
/// share PRF (DESIGN "Customer fragment"), so this label keeps the two uses independent.
const SEED_SALT: &[u8] = b"keyfrag/party-keys/v1";

/// A party's long-term secrets: an X25519 key that peers seal to, an Ed25519 key it signs with.
///
/// Both inner keys zeroize themselves on drop (x25519-dalek's `StaticSecret`, ed25519-dalek's
/// `SigningKey`), so dropping `PartyKeys` wipes them; every intermediate buffer of the
/// derivation is wiped too.
pub struct PartyKeys {
    sealing_secret: <Kem as hpke::Kem>::PrivateKey,
    sealing_public: [u8; 32],
    identity: SigningKey,
}

impl ZeroizeOnDrop for PartyKeys {}

impl PartyKeys {
    /// Deterministic derivation, so a cell (or the customer) keeps one 32-byte secret file:
    /// HKDF-SHA256(salt = "keyfrag/party-keys/v1", ikm = seed), one labelled expansion per key.
    /// The sealing pair then follows RFC 9180 DeriveKeyPair.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(SEED_SALT), seed);
        let mut sealing_ikm = Zeroizing::new([0u8; 32]);
        let mut identity_sk = Zeroizing::new([0u8; 32]);
        hk.expand(b"sealing: X25519 for HPKE", sealing_ikm.as_mut())
            .expect("32 bytes is within HKDF-SHA256's output limit");
        hk.expand(b"identity: Ed25519", identity_sk.as_mut())
            .expect("32 bytes is within HKDF-SHA256's output limit");
        let (sealing_secret, sealing_pk) = Kem::derive_keypair(sealing_ikm.as_ref());
        let mut sealing_public = [0u8; 32];
        sealing_public.copy_from_slice(&sealing_pk.to_bytes());
        PartyKeys {
            sealing_secret,
            sealing_public,
            identity: SigningKey::from_bytes(&identity_sk),
        }
    }

    /// Fresh keys from OS randomness (a party that never needs to re-derive them).
    pub fn generate() -> RelayResult<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        crate::random::fill(seed.as_mut()).map_err(|_| RelayError::Random)?;
        Ok(Self::from_seed(&seed))
    }

    /// The public card peers pin for this party under `id`.
    pub fn card(&self, id: &str) -> RelayResult<PartyCard> {
        PartyCard::new(
            id,
            self.sealing_public,
            self.identity.verifying_key().to_bytes(),
        )
    }

    pub fn sealing_public(&self) -> [u8; 32] {
        self.sealing_public
    }

    pub fn identity_public(&self) -> [u8; 32] {
        self.identity.verifying_key().to_bytes()
    }

    pub(crate) fn sealing_secret(&self) -> &<Kem as hpke::Kem>::PrivateKey {
        &self.sealing_secret
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.identity.sign(msg).to_bytes()
    }
}

impl std::fmt::Debug for PartyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartyKeys([redacted])")
    }
}

/// What a party publishes and its peers pin: id, sealing key, identity key.
#[derive(Clone, PartialEq, Eq)]
pub struct PartyCard {
    id: String,
    sealing: [u8; 32],
    identity: VerifyingKey,
}

impl PartyCard {
    /// Validates what can be validated without a secret: the id fits the wire format and the
    /// identity key is a canonical, non-small-order Ed25519 point. (A low-order sealing key is
    /// caught by HPKE itself: sealing to it fails, RFC 9180 §7.1.4.)
    pub fn new(id: &str, sealing_public: [u8; 32], identity_public: [u8; 32]) -> RelayResult<Self> {
        check_id(id, false)
            .map_err(|_| RelayError::InvalidKey("party id must be 1 to 255 bytes"))?;
        let identity = VerifyingKey::from_bytes(&identity_public)
            .map_err(|_| RelayError::InvalidKey("identity key is not an Ed25519 point"))?;
        if identity.is_weak() {
            return Err(RelayError::InvalidKey("identity key has small order"));
        }
        if sealing_public == [0u8; 32] {
            return Err(RelayError::InvalidKey("sealing key is zero"));
        }
        Ok(PartyCard {
            id: id.to_owned(),
            sealing: sealing_public,
            identity,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn sealing_public(&self) -> [u8; 32] {
        self.sealing
    }

    pub fn identity_public(&self) -> [u8; 32] {
        self.identity.to_bytes()
    }

    /// Canonical encoding: version ‖ len(id) ‖ id ‖ sealing key ‖ identity key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.id.len() + 64);
        out.push(CARD_VERSION);
        put_short_str(&mut out, &self.id);
        out.extend_from_slice(&self.sealing);
        out.extend_from_slice(self.identity.as_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> RelayResult<Self> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != CARD_VERSION {
            return Err(RelayError::UnsupportedVersion(version));
        }
        let id = r.short_str(false)?;
        let sealing = r.array::<32>()?;
        let identity = r.array::<32>()?;
        r.finish()?;
        PartyCard::new(&id, sealing, identity)
    }

    /// SHA-256 of the canonical encoding, lowercase hex: what operators compare out of band
    /// before pinning a peer.
    pub fn fingerprint(&self) -> String {
        Sha256::digest(self.to_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub(crate) fn sealing_key(&self) -> RelayResult<<Kem as hpke::Kem>::PublicKey> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(&self.sealing)
            .map_err(|_| RelayError::InvalidKey("sealing key"))
    }

    /// Strict verification: rejects non-canonical and malleated signatures, so a relay cannot
    /// produce a second valid encoding of a message.
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> RelayResult<()> {
        self.identity
            .verify_strict(msg, &Signature::from_bytes(sig))
            .map_err(|_| RelayError::BadSignature(self.id.clone()))
    }
}

impl std::fmt::Debug for PartyCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartyCard")
            .field("id", &self.id)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

/// The peers a party accepts messages from, by id. A party refuses anything from a sender not
/// listed here, however well signed.
#[derive(Clone, Debug, Default)]
pub struct Roster {
    cards: BTreeMap<String, PartyCard>,
}

impl Roster {
    pub fn new() -> Self {
        Roster::default()
    }

    pub fn from_cards(cards: impl IntoIterator<Item = PartyCard>) -> RelayResult<Self> {
        let mut roster = Roster::new();
        for card in cards {
            roster.add(card)?;
        }
        Ok(roster)
    }

    /// Refuses a second card under the same id, and a card reusing another card's key: one
    /// key pair behind two ids would let one party count as two in an honest-majority protocol.
    pub fn add(&mut self, card: PartyCard) -> RelayResult<()> {
        if self.cards.contains_key(&card.id) {
            return Err(RelayError::DuplicateParty(card.id));
        }
        if let Some(other) = self.cards.values().find(|c| {
            c.sealing == card.sealing || c.identity.as_bytes() == card.identity.as_bytes()
        }) {
            return Err(RelayError::DuplicateKey(other.id.clone()));
        }
        self.cards.insert(card.id.clone(), card);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&PartyCard> {
        self.cards.get(id)
    }

    /// Ids in ascending order (the canonical order of a round's broadcasts).
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.cards.keys().map(String::as_str)
    }

    pub fn cards(&self) -> impl Iterator<Item = &PartyCard> {
        self.cards.values()
    }

    pub fn len(&self) -> usize {
        self.cards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cards.is_empty()
    }
}
