//! The operator's routes under `/v1/admin` (bearer: the cell's operator key): tokens and
//! their access keys. Access keys travel only as SHA-256 hex; the cell never sees a key.

use serde::{Deserialize, Serialize};

use crate::token::Pin;

/// `POST /v1/admin/tokens`: create the token (its label is its id) with this SO PIN.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub token: String,
    pub so_pin: Pin,
}

/// `POST /v1/admin/tokens/remove`: undo a creation (refused once the token has keys, objects
/// or access keys).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
}

/// Whether the call changed anything (false: it was already so).
#[derive(Debug, Serialize, Deserialize)]
pub struct Changed {
    pub changed: bool,
}

/// `POST /v1/admin/access-keys` (issue) and `/v1/admin/access-keys/remove` (undo an issue).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyRequest {
    pub token: String,
    pub name: String,
    /// Hex SHA-256 of the access key string.
    pub key_sha256: String,
}

/// `POST /v1/admin/access-keys/revoke`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub token: String,
    pub name: String,
}

/// `GET /v1/admin/access-keys?token=T`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessKeyList {
    pub keys: Vec<AccessKeyEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessKeyEntry {
    pub name: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds, to the minute.
    pub last_used: Option<u64>,
    pub revoked_at: Option<u64>,
}

/// `POST /v1/admin/master-key/rotate`: every share re-sealed under a new master key.
#[derive(Debug, Serialize, Deserialize)]
pub struct RotateResponse {
    /// The new master key's id (hex; not secret).
    pub key_id: String,
    pub resealed: usize,
}

/// `POST /v1/admin/tokens/{label}/customer-card` (body) and its `GET` (answer): the customer's
/// relay card pinned on a token. The cell recomputes the fingerprint from the card and refuses a
/// mismatch; pinning the same card again is a no-op, another card is 409.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerCard {
    /// Hex of `PartyCard::to_bytes()`.
    pub card: String,
    /// The card's fingerprint as `PartyCard::fingerprint` prints it.
    pub fingerprint: String,
}
