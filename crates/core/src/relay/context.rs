//! What a relayed message is bound to: protocol, key, session, epoch, round, sender, receiver.
//!
//! The header is encoded once, canonically, and that encoding is both the HPKE AAD of a sealed
//! message and the start of what the sender signs, so a relay that edits any field breaks the
//! signature and (for sealed messages) the AEAD tag.

use super::codec::{Reader, check_id, put_short_str};
use super::{ENVELOPE_VERSION, RelayError, RelayResult};

/// The protocol a message belongs to. Codes are part of the wire format: never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// Distributed RSA key generation (Boneh–Franklin with BGW), including its final refresh.
    RsaKeygen,
    /// Proactive refresh: zero-sum deltas into a pending epoch.
    Refresh,
    /// The customer party dealing Δ = d_customer − c to the cells (generation or import).
    CustomerDeal,
}

impl Protocol {
    pub fn code(self) -> u8 {
        match self {
            Protocol::RsaKeygen => 1,
            Protocol::Refresh => 2,
            Protocol::CustomerDeal => 3,
        }
    }

    pub fn from_code(code: u8) -> RelayResult<Self> {
        match code {
            1 => Ok(Protocol::RsaKeygen),
            2 => Ok(Protocol::Refresh),
            3 => Ok(Protocol::CustomerDeal),
            _ => Err(RelayError::Malformed("unknown protocol code")),
        }
    }

    /// The name in the HPKE info string, so keys derived for one protocol are useless in another.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::RsaKeygen => "rsa-keygen",
            Protocol::Refresh => "refresh",
            Protocol::CustomerDeal => "customer-deal",
        }
    }
}

/// Whether a message is sealed to one receiver or a signed public broadcast. Part of the
/// signed header, so a relay cannot present one as the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Sealed,
    Broadcast,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Sealed => 1,
            Kind::Broadcast => 2,
        }
    }

    fn from_code(code: u8) -> RelayResult<Self> {
        match code {
            1 => Ok(Kind::Sealed),
            2 => Ok(Kind::Broadcast),
            _ => Err(RelayError::Malformed("unknown message kind")),
        }
    }
}

/// Where a party is in a protocol run; the sender seals under it and the receiver opens only
/// what matches the context it expects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Context {
    pub protocol: Protocol,
    pub key_uid: String,
    pub session_id: String,
    /// Key epoch: a refresh delta for epoch e must not be accepted into epoch e + 1.
    pub epoch: u64,
    pub round: u32,
}

impl Context {
    pub fn new(
        protocol: Protocol,
        key_uid: &str,
        session_id: &str,
        epoch: u64,
        round: u32,
    ) -> Self {
        Context {
            protocol,
            key_uid: key_uid.to_owned(),
            session_id: session_id.to_owned(),
            epoch,
            round,
        }
    }

    /// The same context one round later (protocols step through rounds in order).
    pub fn next_round(&self) -> Self {
        Context {
            round: self.round.saturating_add(1),
            ..self.clone()
        }
    }
}

/// The signed, cleartext part of an envelope. Relays read it to route messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub protocol: Protocol,
    pub key_uid: String,
    pub session_id: String,
    pub epoch: u64,
    pub round: u32,
    pub sender: String,
    /// Empty for a broadcast.
    pub receiver: String,
}

impl Header {
    /// Validates every identifier here, so an `Envelope`'s header always encodes.
    pub(crate) fn new(
        kind: Kind,
        ctx: &Context,
        sender: &str,
        receiver: &str,
    ) -> RelayResult<Self> {
        check_id(&ctx.key_uid, false)?;
        check_id(&ctx.session_id, false)?;
        check_id(sender, false)?;
        check_id(receiver, kind == Kind::Broadcast)?;
        if (kind == Kind::Broadcast) != receiver.is_empty() {
            return Err(RelayError::Malformed(
                "receiver must be empty exactly for a broadcast",
            ));
        }
        Ok(Header {
            kind,
            protocol: ctx.protocol,
            key_uid: ctx.key_uid.clone(),
            session_id: ctx.session_id.clone(),
            epoch: ctx.epoch,
            round: ctx.round,
            sender: sender.to_owned(),
            receiver: receiver.to_owned(),
        })
    }

    /// Canonical encoding, starting with the format version (so the AAD binds it too).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(ENVELOPE_VERSION);
        out.push(self.kind.code());
        out.push(self.protocol.code());
        put_short_str(out, &self.key_uid);
        put_short_str(out, &self.session_id);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.round.to_be_bytes());
        put_short_str(out, &self.sender);
        put_short_str(out, &self.receiver);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> RelayResult<Self> {
        let version = r.u8()?;
        if version != ENVELOPE_VERSION {
            return Err(RelayError::UnsupportedVersion(version));
        }
        let kind = Kind::from_code(r.u8()?)?;
        let protocol = Protocol::from_code(r.u8()?)?;
        let key_uid = r.short_str(false)?;
        let session_id = r.short_str(false)?;
        let epoch = r.u64()?;
        let round = r.u32()?;
        let sender = r.short_str(false)?;
        let receiver = r.short_str(kind == Kind::Broadcast)?;
        if (kind == Kind::Broadcast) != receiver.is_empty() {
            return Err(RelayError::Malformed(
                "receiver must be empty exactly for a broadcast",
            ));
        }
        Ok(Header {
            kind,
            protocol,
            key_uid,
            session_id,
            epoch,
            round,
            sender,
            receiver,
        })
    }

    /// Every field against what the opening party expects, each mismatch its own error.
    pub(crate) fn check(&self, kind: Kind, expected: &Context, receiver: &str) -> RelayResult<()> {
        if self.kind != kind {
            return Err(RelayError::WrongKind);
        }
        if self.receiver != receiver {
            return Err(RelayError::WrongReceiver(self.receiver.clone()));
        }
        if self.protocol != expected.protocol {
            return Err(RelayError::WrongProtocol);
        }
        if self.key_uid != expected.key_uid {
            return Err(RelayError::WrongKey);
        }
        if self.session_id != expected.session_id {
            return Err(RelayError::WrongSession);
        }
        if self.epoch != expected.epoch {
            return Err(RelayError::WrongEpoch {
                expected: expected.epoch,
                got: self.epoch,
            });
        }
        if self.round != expected.round {
            return Err(RelayError::WrongRound {
                expected: expected.round,
                got: self.round,
            });
        }
        Ok(())
    }
}
