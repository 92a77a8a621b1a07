//! Token state, PINs and login: `GET /v1/token`, `POST /v1/token/init`, `POST /v1/login`,
//! `POST /v1/logout`, `POST /v1/pin/init`, `POST /v1/pin/set`.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// `GET /v1/token`: the token as this cell sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenStatus {
    pub initialized: bool,
    /// Label given at C_InitToken (unpadded), empty before.
    pub label: String,
    pub user_pin_initialized: bool,
    pub user_pin_count_low: bool,
    pub user_pin_final_try: bool,
    pub user_pin_locked: bool,
    pub so_pin_count_low: bool,
    pub so_pin_final_try: bool,
    pub so_pin_locked: bool,
    /// `objects::metadata_hash` of the committed objects.
    pub metadata_hash: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    User,
    So,
}

/// A PIN as it travels to a cell (TLS only); redacted in Debug, zeroized on drop.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct Pin(pub String);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitPhase {
    /// Verify the SO PIN (or accept a first one) without changing anything.
    Check,
    /// Wipe every object and fragment of the token and set the label.
    Apply,
}

/// `POST /v1/token/init`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InitTokenRequest {
    pub phase: InitPhase,
    pub so_pin: Pin,
    pub label: String,
}

/// `POST /v1/login`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginRequest {
    pub user: UserKind,
    pub pin: Pin,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Opaque bearer value for `x-keyfrag-login`; revoked by `POST /v1/logout`.
    pub login_token: String,
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginResponse([redacted])")
    }
}

/// `POST /v1/pin/init` (SO logged in): set the user PIN.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InitPinRequest {
    pub new_pin: Pin,
}

/// `POST /v1/pin/set` (user or SO logged in): change the logged-in user's PIN.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetPinRequest {
    pub old_pin: Pin,
    pub new_pin: Pin,
}

/// Empty success body.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ack {}
