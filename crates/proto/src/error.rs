//! The error body every cell returns, with stable codes the client maps to CKR values.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    NotFound,
    Conflict,
    TooLarge,
    RateLimited,
    TokenNotInitialized,
    PinIncorrect,
    PinLocked,
    PinLenRange,
    UserPinNotInitialized,
    UserNotLoggedIn,
    KeyNotFound,
    EpochUnknown,
    VersionUnsupported,
    Internal,
    /// Refresh is paused on this cell while a backup runs (it resumes when the backup ends,
    /// or by itself after the pause's timeout): retry later.
    RefreshPaused,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// Human-readable; never contains secrets.
    pub message: String,
}
