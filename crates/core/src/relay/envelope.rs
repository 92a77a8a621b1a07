//! Envelopes: sealed (HPKE to one receiver) or broadcast (public), always signed by the sender.
//!
//! Wire format, version 1 (big-endian integers, ids prefixed by a one-byte length):
//!
//! ```text
//! header    = version:u8 kind:u8 protocol:u8 key_uid session_id epoch:u64 round:u32
//!             sender receiver            (receiver empty exactly for a broadcast)
//! sealed    = header enc:[32] len:u32 ciphertext[len]   (ciphertext includes the 16-byte tag)
//! broadcast = header len:u32 payload[len]
//! envelope  = (sealed | broadcast) signature:[64]
//! ```
//!
//! The signature is Ed25519 over `SIG_DOMAIN ‖ everything before it`; the header is the HPKE
//! AAD; the HPKE info is `"keyfrag/relay/v1/" ‖ protocol name`. The order of checks in `open`
//! is: sender known → signature → every header field → decrypt, so nothing unauthenticated
//! reaches the KEM or the AEAD.

use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};

use super::codec::{Reader, put_long_bytes};
use super::context::{Context, Header, Kind, Protocol};
use super::party::{PartyCard, PartyKeys, Roster};
use super::{Aead, Kdf, Kem, RelayError, RelayResult};
use crate::secret::SecretBytes;

/// Domain separation for the sender's signature: no other keyfrag signature can be replayed
/// as an envelope, nor an envelope signature as anything else.
const SIG_DOMAIN: &[u8] = b"keyfrag/relay/v1/signature\0";
const INFO_PREFIX: &[u8] = b"keyfrag/relay/v1/";
/// Encapsulated key (X25519 public key) and AEAD tag sizes of the fixed suite.
const ENC_LEN: usize = 32;
const TAG_LEN: usize = 16;
const SIG_LEN: usize = 64;

#[derive(Clone, PartialEq, Eq)]
enum Body {
    Sealed {
        enc: [u8; ENC_LEN],
        ciphertext: Vec<u8>,
    },
    Broadcast {
        payload: Vec<u8>,
    },
}

/// One relayed message. The relay may read the header (to route it) and nothing else useful.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    header: Header,
    body: Body,
    signature: [u8; SIG_LEN],
}

impl Envelope {
    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn kind(&self) -> Kind {
        self.header.kind
    }

    /// A broadcast's payload, unauthenticated: for a relay that looks at public values it
    /// carries (the refresh client checks the cells' check partials before COMMIT). Parties
    /// never act on it: they use `verify_broadcast`. None for a sealed message.
    pub fn unverified_payload(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Broadcast { payload } => Some(payload),
            Body::Sealed { .. } => None,
        }
    }

    /// Everything the signature covers, without the domain prefix.
    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body_len() + 128);
        self.header.encode(&mut out);
        match &self.body {
            Body::Sealed { enc, ciphertext } => {
                out.extend_from_slice(enc);
                put_long_bytes(&mut out, ciphertext);
            }
            Body::Broadcast { payload } => put_long_bytes(&mut out, payload),
        }
        out
    }

    fn body_len(&self) -> usize {
        match &self.body {
            Body::Sealed { ciphertext, .. } => ENC_LEN + ciphertext.len(),
            Body::Broadcast { payload } => payload.len(),
        }
    }

    fn signed_message(&self) -> Vec<u8> {
        [SIG_DOMAIN, &self.unsigned_bytes()].concat()
    }

    /// The signed part (header and body, no signature): what a `Transcript` absorbs. Ed25519
    /// signatures are deterministic and verified strictly, but hashing only what was signed
    /// keeps the transcript independent of the signature bytes altogether.
    pub fn signed_content(&self) -> Vec<u8> {
        self.unsigned_bytes()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.unsigned_bytes();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Strict parsing: bounded reads, known version, kind and protocol, no trailing bytes.
    /// Parsing authenticates nothing; `open` / `verify_broadcast` do.
    pub fn from_bytes(bytes: &[u8]) -> RelayResult<Self> {
        let mut r = Reader::new(bytes);
        let header = Header::decode(&mut r)?;
        let body = match header.kind {
            Kind::Sealed => {
                let enc = r.array::<ENC_LEN>()?;
                let ciphertext = r.long_bytes()?;
                if ciphertext.len() < TAG_LEN {
                    return Err(RelayError::Malformed("ciphertext shorter than its tag"));
                }
                Body::Sealed {
                    enc,
                    ciphertext: ciphertext.to_vec(),
                }
            }
            Kind::Broadcast => Body::Broadcast {
                payload: r.long_bytes()?.to_vec(),
            },
        };
        let signature = r.array::<SIG_LEN>()?;
        r.finish()?;
        Ok(Envelope {
            header,
            body,
            signature,
        })
    }

    fn sign(header: Header, body: Body, sender: &PartyKeys) -> Self {
        let mut env = Envelope {
            header,
            body,
            signature: [0; SIG_LEN],
        };
        env.signature = sender.sign(&env.signed_message());
        env
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Lengths only: a broadcast payload is public but can be large, a ciphertext is noise.
        f.debug_struct("Envelope")
            .field("header", &self.header)
            .field("body_len", &self.body_len())
            .finish()
    }
}

fn hpke_info(protocol: Protocol) -> Vec<u8> {
    [INFO_PREFIX, protocol.name().as_bytes()].concat()
}

/// Seals `plaintext` to `receiver` under `ctx`, signed by `sender` (whose peers know it as
/// `sender_id`).
pub fn seal(
    sender: &PartyKeys,
    sender_id: &str,
    receiver: &PartyCard,
    ctx: &Context,
    plaintext: &[u8],
) -> RelayResult<Envelope> {
    if plaintext.len() > u32::MAX as usize - TAG_LEN {
        return Err(RelayError::TooLarge);
    }
    let header = Header::new(Kind::Sealed, ctx, sender_id, receiver.id())?;
    let mut aad = Vec::new();
    header.encode(&mut aad);
    let pk = receiver.sealing_key()?;
    // HPKE wants an infallible RNG; UnwrapErr panics only if the OS has no randomness at all.
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &pk,
        &hpke_info(ctx.protocol),
        plaintext,
        &aad,
        &mut UnwrapErr(SysRng),
    )
    .map_err(|_| RelayError::Seal)?;
    let mut enc_bytes = [0u8; ENC_LEN];
    enc_bytes.copy_from_slice(&enc.to_bytes());
    Ok(Envelope::sign(
        header,
        Body::Sealed {
            enc: enc_bytes,
            ciphertext,
        },
        sender,
    ))
}

/// A signed, unencrypted message for every party (public values: N points, test values, …).
pub fn broadcast(
    sender: &PartyKeys,
    sender_id: &str,
    ctx: &Context,
    payload: &[u8],
) -> RelayResult<Envelope> {
    if u32::try_from(payload.len()).is_err() {
        return Err(RelayError::TooLarge);
    }
    let header = Header::new(Kind::Broadcast, ctx, sender_id, "")?;
    Ok(Envelope::sign(
        header,
        Body::Broadcast {
            payload: payload.to_vec(),
        },
        sender,
    ))
}

/// The sender's card from the roster, after its signature over the envelope verified.
fn authenticate<'r>(roster: &'r Roster, env: &Envelope) -> RelayResult<&'r PartyCard> {
    let card = roster
        .get(&env.header.sender)
        .ok_or_else(|| RelayError::UnknownSender(env.header.sender.clone()))?;
    card.verify(&env.signed_message(), &env.signature)?;
    Ok(card)
}

/// Opens a sealed envelope addressed to `receiver_id`, expected under `expected`.
///
/// Call `ReplayGuard::admit` after this succeeds (not before: an unauthenticated envelope must
/// not be able to fill the guard and block the genuine one).
pub fn open(
    receiver: &PartyKeys,
    receiver_id: &str,
    roster: &Roster,
    env: &Envelope,
    expected: &Context,
) -> RelayResult<SecretBytes> {
    authenticate(roster, env)?;
    env.header.check(Kind::Sealed, expected, receiver_id)?;
    let Body::Sealed { enc, ciphertext } = &env.body else {
        return Err(RelayError::WrongKind);
    };
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc)
        .map_err(|_| RelayError::Malformed("encapsulated key"))?;
    let mut aad = Vec::new();
    env.header.encode(&mut aad);
    let plaintext = hpke::single_shot_open::<Aead, Kdf, Kem>(
        &OpModeR::Base,
        receiver.sealing_secret(),
        &enc,
        &hpke_info(expected.protocol),
        ciphertext,
        &aad,
    )
    .map_err(|_| RelayError::Decrypt)?;
    Ok(SecretBytes::new(plaintext))
}

/// Verifies a broadcast from a roster peer under `expected` and returns its public payload.
pub fn verify_broadcast<'e>(
    roster: &Roster,
    env: &'e Envelope,
    expected: &Context,
) -> RelayResult<&'e [u8]> {
    authenticate(roster, env)?;
    env.header.check(Kind::Broadcast, expected, "")?;
    env.unverified_payload().ok_or(RelayError::WrongKind)
}
