//! Why a relayed message was refused. Each refusal has its own variant so a cell can log and
//! count the cause (a replay is not a wrong epoch); no variant ever carries message content.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RelayError {
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    #[error("unsupported envelope format version {0}")]
    UnsupportedVersion(u8),
    #[error("invalid party key or card: {0}")]
    InvalidKey(&'static str),
    #[error("party id already in the roster: {0}")]
    DuplicateParty(String),
    #[error("party keys already in the roster under another id: {0}")]
    DuplicateKey(String),
    #[error("sender {0} is not in this party's roster")]
    UnknownSender(String),
    #[error("signature of sender {0} does not verify")]
    BadSignature(String),
    #[error("expected a sealed message, got a broadcast (or the reverse)")]
    WrongKind,
    #[error("message is addressed to {0}, not to this party")]
    WrongReceiver(String),
    #[error("message belongs to another protocol")]
    WrongProtocol,
    #[error("message belongs to another key")]
    WrongKey,
    #[error("message belongs to another session")]
    WrongSession,
    #[error("message is for epoch {got}, expected {expected}")]
    WrongEpoch { expected: u64, got: u64 },
    #[error("message is for round {got}, expected {expected}")]
    WrongRound { expected: u32, got: u32 },
    #[error("sealed message did not decrypt")]
    Decrypt,
    #[error("could not seal to the receiver's key")]
    Seal,
    #[error("message too large to relay")]
    TooLarge,
    #[error("replayed message: session round {round} from {sender} was already accepted")]
    Replay { round: u32, sender: String },
    #[error("round {got} is older than round {latest} already seen in this session")]
    RoundWentBack { latest: u32, got: u32 },
    #[error("transcript echoed by party {party} differs from ours")]
    TranscriptMismatch { party: String },
    #[error("operating system randomness unavailable")]
    Random,
}

pub type RelayResult<T> = std::result::Result<T, RelayError>;
