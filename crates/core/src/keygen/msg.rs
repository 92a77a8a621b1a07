//! Keygen messages and their compact binary encoding, so a relay can carry them as opaque
//! blobs. Pairwise bodies are confidential (the caller seals them, CRYPTO-NOTES §1.7);
//! broadcast bodies are public but still need authentication and non-equivocation.
//!
//! Layout (big-endian): version u8 ‖ session [16] ‖ sender u16 ‖ dest u8 (0 broadcast,
//! 1 pairwise) ‖ receiver u16 ‖ phase u8 ‖ round u32 ‖ body length u32 ‖ body.

use crate::secret::SecretBytes;

use super::{KeygenError, Result};

/// 2: elements travel as Montgomery representations (zmod.rs) and the BF values rotate roles.
/// 3: customer mode (phases 9–12, the customer's Paillier inputs in SieveDeal, Test and
/// Check bodies); cells-only sessions are unchanged apart from the version byte.
/// 4: the sieve modulus M leaves out the odd primes ≤ n, sieved publicly instead (sieve.rs);
/// parties of different versions would disagree on M and never find a prime.
pub const MESSAGE_VERSION: u8 = 4;
pub const SESSION_ID_LEN: usize = 16;
const HEADER_LEN: usize = 1 + SESSION_ID_LEN + 2 + 1 + 2 + 1 + 4 + 4;

/// Who a message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Every other party (public).
    Broadcast,
    /// One party (confidential).
    To(u16),
}

/// The step of the protocol a message belongs to (module docs of `keygen` list them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Shamir shares over Z_M of the multiplicative sieve shares (pairwise).
    SieveDeal = 1,
    /// Degree reduction of a sieve product (pairwise).
    SieveReshare = 2,
    /// A multiplier round for the N product (pairwise).
    Product = 3,
    /// Opening shares of the N products (broadcast).
    Open = 4,
    /// First, cheap biprimality iteration on a chunk of candidates (broadcast).
    Filter = 5,
    /// Full biprimality test (broadcast) with the gcd product and φ-mod-e masks (pairwise).
    Test = 6,
    /// Opening of the gcd product and the masked φ mod e (broadcast).
    Check = 7,
    /// Trial partials of the floor shares (broadcast) and refresh deltas (pairwise); in
    /// customer mode also the customer's pieces of Δ = d_customer − c (pairwise).
    Trial = 8,
    /// Customer mode: the cells' sieve MtA replies (pairwise to the customer) with the cells'
    /// BGW deal for N (pairwise among cells).
    SieveReply = 9,
    /// Customer mode: the customer's Enc(p_C), Enc(q_C) (broadcast).
    ProductInput = 10,
    /// Customer mode: the cells' N MtA replies (pairwise to the customer) and their
    /// opening shares of N (broadcast).
    ProductReply = 11,
    /// Customer mode: the customer's opening share of the gcd product (broadcast).
    CheckOpen = 12,
}

impl Phase {
    fn from_u8(b: u8) -> Result<Phase> {
        Ok(match b {
            1 => Phase::SieveDeal,
            2 => Phase::SieveReshare,
            3 => Phase::Product,
            4 => Phase::Open,
            5 => Phase::Filter,
            6 => Phase::Test,
            7 => Phase::Check,
            8 => Phase::Trial,
            9 => Phase::SieveReply,
            10 => Phase::ProductInput,
            11 => Phase::ProductReply,
            12 => Phase::CheckOpen,
            _ => return Err(KeygenError::Malformed("unknown phase")),
        })
    }
}

/// One protocol message. Debug never prints a pairwise body.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub session: [u8; SESSION_ID_LEN],
    pub sender: u16,
    pub dest: Dest,
    pub phase: Phase,
    /// Counts every round of the session from 0, across restarted batches.
    pub round: u32,
    pub body: SecretBytes,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("sender", &self.sender)
            .field("dest", &self.dest)
            .field("phase", &self.phase)
            .field("round", &self.round)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Message {
    /// Whether the body must be sealed to its receiver.
    pub fn is_confidential(&self) -> bool {
        matches!(self.dest, Dest::To(_))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        out.push(MESSAGE_VERSION);
        out.extend_from_slice(&self.session);
        out.extend_from_slice(&self.sender.to_be_bytes());
        let (tag, to) = match self.dest {
            Dest::Broadcast => (0u8, 0u16),
            Dest::To(j) => (1u8, j),
        };
        out.push(tag);
        out.extend_from_slice(&to.to_be_bytes());
        out.push(self.phase as u8);
        out.extend_from_slice(&self.round.to_be_bytes());
        out.extend_from_slice(&(self.body.len() as u32).to_be_bytes());
        out.extend_from_slice(self.body.expose());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Message> {
        if bytes.len() < HEADER_LEN {
            return Err(KeygenError::Malformed("message too short"));
        }
        if bytes[0] != MESSAGE_VERSION {
            return Err(KeygenError::UnsupportedVersion(bytes[0]));
        }
        let mut session = [0u8; SESSION_ID_LEN];
        session.copy_from_slice(&bytes[1..1 + SESSION_ID_LEN]);
        let mut r = Reader(&bytes[1 + SESSION_ID_LEN..]);
        let sender = u16::from_be_bytes(r.take(2)?.try_into().expect("2"));
        let tag = r.take(1)?[0];
        let to = u16::from_be_bytes(r.take(2)?.try_into().expect("2"));
        let dest = match (tag, to) {
            (0, 0) => Dest::Broadcast,
            (1, j) => Dest::To(j),
            _ => return Err(KeygenError::Malformed("bad destination")),
        };
        let phase = Phase::from_u8(r.take(1)?[0])?;
        let round = u32::from_be_bytes(r.take(4)?.try_into().expect("4"));
        let len = u32::from_be_bytes(r.take(4)?.try_into().expect("4")) as usize;
        let body = r.take(len)?;
        if !r.0.is_empty() {
            return Err(KeygenError::Malformed("trailing bytes"));
        }
        Ok(Message {
            session,
            sender,
            dest,
            phase,
            round,
            body: SecretBytes::new(body.to_vec()),
        })
    }
}

/// Sequential reads from a body; every read is length-checked.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(KeygenError::Malformed("body too short"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    pub(crate) fn finish(&self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(KeygenError::Malformed("body too long"))
        }
    }
}
