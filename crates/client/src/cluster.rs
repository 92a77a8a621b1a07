//! One token's cells: every call fans out to all cells in parallel over pooled connections.

use keyfrag_core::rsa_share::RsaShare;
use keyfrag_proto::keys::KeySummary;
use keyfrag_proto::objects::ObjectRecord;
use keyfrag_proto::token::{TokenStatus, UserKind};

use crate::config::TokenConfig;
use crate::error::Result;

/// A token's cells. Cheap to share (`Arc`); all methods are blocking and thread-safe.
/// Creating one does no network I/O. Login state is token-wide and held here.
pub struct Cluster {}

impl Cluster {
    pub fn new(token: &TokenConfig) -> Result<Cluster> {
        let _ = token;
        todo!()
    }

    pub fn cell_count(&self) -> usize {
        todo!()
    }

    /// The token state: every cell must agree on initialised/label/metadata hash (else
    /// `Device`, with a log line naming the odd cell); PIN flags are the union of the cells'.
    pub fn token_status(&self) -> Result<TokenStatus> {
        todo!()
    }

    /// C_InitToken: checks the SO PIN on every cell first; wipes only when every cell is
    /// reachable and accepted it.
    pub fn init_token(&self, so_pin: &str, label: &str) -> Result<()> {
        let _ = (so_pin, label);
        todo!()
    }

    /// C_Login: proves the PIN to every cell and keeps their login tokens. If some cells
    /// accept and another refuses, the accepted logins are revoked.
    pub fn login(&self, user: UserKind, pin: &str) -> Result<()> {
        let _ = (user, pin);
        todo!()
    }

    /// C_Logout: revokes the login on every cell (best effort) and forgets it locally.
    pub fn logout(&self) {
        todo!()
    }

    /// C_InitPIN (SO logged in).
    pub fn init_pin(&self, new_pin: &str) -> Result<()> {
        let _ = new_pin;
        todo!()
    }

    /// C_SetPIN (user or SO logged in, or not logged in for the user PIN).
    pub fn set_pin(&self, old_pin: &str, new_pin: &str) -> Result<()> {
        let _ = (old_pin, new_pin);
        todo!()
    }

    /// Token objects, accepted only when every cell returns the same metadata hash and the
    /// hash matches the objects received. Returns (hash, objects).
    pub fn load_objects(&self) -> Result<(String, Vec<ObjectRecord>)> {
        todo!()
    }

    /// Two-phase write of token objects (puts replace by id). Returns the new metadata hash.
    pub fn write_objects(&self, puts: Vec<ObjectRecord>, deletes: Vec<String>) -> Result<String> {
        let _ = (puts, deletes);
        todo!()
    }

    /// Store one share per cell (shares.len() == cell_count()). All-or-nothing: if any cell
    /// fails, the share is deleted from the cells that stored it.
    pub fn put_rsa_key(
        &self,
        uid: &str,
        modulus: &[u8],
        public_exponent: &[u8],
        shares: Vec<RsaShare>,
        lease_secs: Option<u64>,
    ) -> Result<()> {
        let _ = (uid, modulus, public_exponent, shares, lease_secs);
        todo!()
    }

    pub fn delete_key(&self, uid: &str) -> Result<()> {
        let _ = uid;
        todo!()
    }

    /// Every cell's x'^(2dᵢ) on the blinded input, in cell order (requires a user login).
    pub fn rsa_partials(&self, uid: &str, blinded_input: &[u8]) -> Result<Vec<Vec<u8>>> {
        let _ = (uid, blinded_input);
        todo!()
    }

    pub fn renew_leases(&self, uids: &[String], lease_secs: u64) -> Result<()> {
        let _ = (uids, lease_secs);
        todo!()
    }

    /// The keys the cells hold (from the first cell; epochs per cell agree when healthy).
    pub fn list_keys(&self) -> Result<Vec<KeySummary>> {
        todo!()
    }
}
