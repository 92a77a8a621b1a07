//! Client errors, by kind: the module maps each kind to one CKR value.

use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Configuration missing or invalid (C_Initialize fails).
    Config,
    /// A cell is unreachable, timed out, answered garbage, or the cells disagree.
    Device,
    PinIncorrect,
    PinLocked,
    PinLenRange,
    UserPinNotInitialized,
    TokenNotInitialized,
    UserNotLoggedIn,
    KeyNotFound,
    /// A combined result failed verification (a cell returned a wrong partial).
    VerifyFailed,
    /// The request was refused as malformed or conflicting.
    Refused,
    /// The caller cancelled the operation (C_SessionCancel).
    Cancelled,
    /// The key's epoch moved under the operation (a refresh committed or finalized): nothing
    /// was combined; run the whole operation again (the cluster now knows the new epoch).
    EpochMoved,
    /// A backup holds refresh paused on a cell: nothing changed; refresh again later.
    RefreshPaused,
}

#[derive(Clone, Debug, Error)]
#[error("{message}")]
pub struct ClientError {
    pub kind: ErrorKind,
    /// Names the cell and the step; never contains secrets.
    pub message: String,
}

impl ClientError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ClientError {
            kind,
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;
