//! One token's cells: every call fans out to all cells in parallel over pooled connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::join_all;
use keyfrag_core::rsa_share::RsaShare;
use keyfrag_proto::keys::{KeySummary, KeysResponse, LeaseRequest, PutRsaKeyRequest, RsaShareWire};
use keyfrag_proto::objects::{
    CommitResponse, ObjectRecord, ObjectsResponse, PendingResponse, StageRequest, TxRequest,
    TxStatus, TxStatusResponse,
};
use keyfrag_proto::token::{
    Ack, InitPhase, InitPinRequest, InitTokenRequest, LoginRequest, LoginResponse, Pin,
    SetPinRequest, TokenStatus, UserKind,
};
use reqwest::Method;
use zeroize::Zeroizing;

use crate::cell::{Call, Cell};
use crate::config::TokenConfig;
use crate::error::{ClientError, ErrorKind, Result};
use crate::runtime::Runtime;

mod keygen;
mod partials;
mod pool;
mod prf;
mod probe;
mod refresh;
pub use keygen::{KeygenOptions, KeygenReport, RelayPoint};
pub use partials::{MAX_EPOCH_ATTEMPTS, Partials};
pub use prf::PrfKeyInfo;
#[cfg(feature = "fault-injection")]
pub use refresh::FaultAction;
pub use refresh::{DEFAULT_PARALLEL, RefreshOutcome, RefreshPoint};

/// A token's cells. Cheap to share (`Arc`); all methods are blocking and thread-safe.
/// Creating one does no network I/O. Login state is token-wide and held here.
pub struct Cluster {
    token: TokenConfig,
    threads: bool,
    transport: Mutex<Option<Arc<Transport>>>,
    login: Mutex<Option<Login>>,
    /// The epoch to name for each key's partials: the last one every cell served.
    epochs: Mutex<HashMap<String, u64>>,
}

struct Transport {
    runtime: Runtime,
    cells: Vec<Cell>,
}

struct Login {
    user: UserKind,
    /// One login token per cell, in cell order.
    tokens: Vec<Zeroizing<String>>,
}

const NO_BODY: Option<&Ack> = None;

impl Cluster {
    pub fn new(token: &TokenConfig) -> Result<Cluster> {
        Cluster::with_threads(token, true)
    }

    /// `threads` false: the application forbade the library to create OS threads
    /// (CKF_LIBRARY_CANT_CREATE_OS_THREADS); I/O then runs on the calling thread.
    pub fn with_threads(token: &TokenConfig, threads: bool) -> Result<Cluster> {
        Ok(Cluster {
            token: token.clone(),
            threads,
            transport: Mutex::new(None),
            login: Mutex::new(None),
            epochs: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &TokenConfig {
        &self.token
    }

    pub fn cell_count(&self) -> usize {
        self.token.cells.len()
    }

    pub fn cell_names(&self) -> Vec<String> {
        self.token.cells.iter().map(|c| c.name.clone()).collect()
    }

    /// The transport of this process, built on first use and rebuilt after fork.
    fn transport(&self) -> Result<Arc<Transport>> {
        let mut slot = lock(&self.transport);
        if let Some(t) = slot.as_ref() {
            if t.runtime.belongs_to_this_process() {
                return Ok(t.clone());
            }
            // Forked child: the parent's runtime threads do not exist here.
            std::mem::forget(slot.take());
            std::mem::forget(lock(&self.login).take());
        }
        let runtime = Runtime::new(self.threads)?;
        let cells = self
            .token
            .cells
            .iter()
            .map(|c| Cell::new(c, &self.token))
            .collect::<Result<Vec<_>>>()?;
        let t = Arc::new(Transport { runtime, cells });
        *slot = Some(t.clone());
        Ok(t)
    }

    /// The token state: every cell must agree on initialised/label/metadata hash (else
    /// `Device`, with a log line naming the odd cell); PIN flags are the union of the cells'.
    pub fn token_status(&self) -> Result<TokenStatus> {
        let t = self.transport()?;
        let all = t.runtime.block_on(join_all(
            t.cells
                .iter()
                .map(|c| c.call::<Ack, TokenStatus>(get("token"))),
        ));
        let all = all_ok(all)?;
        let key = |s: &TokenStatus| (s.initialized, s.label.clone(), s.metadata_hash.clone());
        check_agreement(&t, &all, key, "token state")?;
        let mut merged = all[0].clone();
        for s in &all[1..] {
            merged.user_pin_initialized &= s.user_pin_initialized;
            merged.user_pin_count_low |= s.user_pin_count_low;
            merged.user_pin_final_try |= s.user_pin_final_try;
            merged.user_pin_locked |= s.user_pin_locked;
            merged.so_pin_count_low |= s.so_pin_count_low;
            merged.so_pin_final_try |= s.so_pin_final_try;
            merged.so_pin_locked |= s.so_pin_locked;
        }
        Ok(merged)
    }

    /// C_InitToken: checks the SO PIN on every cell first; wipes only when every cell is
    /// reachable and accepted it.
    pub fn init_token(&self, so_pin: &str, label: &str) -> Result<()> {
        let t = self.transport()?;
        for phase in [InitPhase::Check, InitPhase::Apply] {
            let body = InitTokenRequest {
                phase,
                so_pin: Pin(so_pin.to_string()),
                label: label.to_string(),
            };
            let all = t.runtime.block_on(join_all(
                t.cells
                    .iter()
                    .map(|c| c.call::<_, TokenStatus>(post("token/init", &body, None, true))),
            ));
            all_ok(all)?;
        }
        *lock(&self.login) = None;
        Ok(())
    }

    /// C_Login: proves the PIN to every cell and keeps their login tokens. If some cells
    /// accept and another refuses, the accepted logins are revoked.
    pub fn login(&self, user: UserKind, pin: &str) -> Result<()> {
        let t = self.transport()?;
        let body = LoginRequest {
            user,
            pin: Pin(pin.to_string()),
        };
        // Not idempotent: each attempt counts against the PIN retry counter.
        let all = t.runtime.block_on(join_all(
            t.cells
                .iter()
                .map(|c| c.call::<_, LoginResponse>(post("login", &body, None, false))),
        ));
        let accepted: Vec<Option<Zeroizing<String>>> = all
            .iter()
            .map(|r| {
                r.as_ref()
                    .ok()
                    .map(|l| Zeroizing::new(l.login_token.clone()))
            })
            .collect();
        match all_ok(all) {
            Ok(_) => {
                let tokens = accepted
                    .into_iter()
                    .map(|t| t.unwrap_or_default())
                    .collect();
                *lock(&self.login) = Some(Login { user, tokens });
                Ok(())
            }
            Err(e) => {
                self.revoke(&t, &accepted);
                Err(e)
            }
        }
    }

    fn revoke(&self, t: &Transport, tokens: &[Option<Zeroizing<String>>]) {
        let results = t
            .runtime
            .block_on(join_all(t.cells.iter().zip(tokens).filter_map(
                |(c, tok)| {
                    tok.as_ref()
                        .map(|tok| c.call::<Ack, Ack>(post_empty("logout", Some(tok.as_str()))))
                },
            )));
        for e in results.into_iter().filter_map(|r| r.err()) {
            tracing::warn!("logout not confirmed: {}", e.message);
        }
    }

    /// C_Logout: revokes the login on every cell (best effort) and forgets it locally.
    pub fn logout(&self) {
        let Some(login) = lock(&self.login).take() else {
            return;
        };
        if let Ok(t) = self.transport() {
            let tokens: Vec<_> = login.tokens.iter().map(|t| Some(t.clone())).collect();
            self.revoke(&t, &tokens);
        }
    }

    /// Who is logged in, as far as this process knows.
    pub fn logged_in(&self) -> Option<UserKind> {
        lock(&self.login).as_ref().map(|l| l.user)
    }

    fn login_tokens(&self, need: Option<UserKind>) -> Result<Vec<Zeroizing<String>>> {
        match lock(&self.login).as_ref() {
            Some(l) if need.is_none_or(|u| u == l.user) => Ok(l.tokens.clone()),
            _ => Err(ClientError::new(
                ErrorKind::UserNotLoggedIn,
                "the operation needs a login",
            )),
        }
    }

    /// C_InitPIN (SO logged in).
    pub fn init_pin(&self, new_pin: &str) -> Result<()> {
        let tokens = self.login_tokens(Some(UserKind::So))?;
        let t = self.transport()?;
        let body = InitPinRequest {
            new_pin: Pin(new_pin.to_string()),
        };
        let all =
            t.runtime
                .block_on(join_all(t.cells.iter().zip(&tokens).map(|(c, tok)| {
                    c.call::<_, Ack>(post("pin/init", &body, Some(tok.as_str()), true))
                })));
        all_ok(all).map(drop)
    }

    /// C_SetPIN for the logged-in user (or SO).
    pub fn set_pin(&self, old_pin: &str, new_pin: &str) -> Result<()> {
        let tokens = self.login_tokens(None)?;
        let t = self.transport()?;
        let body = SetPinRequest {
            old_pin: Pin(old_pin.to_string()),
            new_pin: Pin(new_pin.to_string()),
        };
        let all =
            t.runtime
                .block_on(join_all(t.cells.iter().zip(&tokens).map(|(c, tok)| {
                    c.call::<_, Ack>(post("pin/set", &body, Some(tok.as_str()), false))
                })));
        all_ok(all).map(drop)
    }

    /// Token objects, accepted only when every cell returns the same metadata hash and the
    /// same objects. Returns (hash, objects).
    pub fn load_objects(&self) -> Result<(String, Vec<ObjectRecord>)> {
        match self.load_objects_once() {
            // A crash or cut between the commits of a write leaves some cells behind: roll
            // such writes forward, then look again.
            Err(e) if e.kind == ErrorKind::Device && self.reconcile_objects()? > 0 => {
                self.load_objects_once()
            }
            other => other,
        }
    }

    /// Roll forward every metadata write that some cell committed while others only staged
    /// it (the writer stopped between commits: a crash, a cut, a cell down). A write no cell
    /// committed stays staged and invisible until every cell calls it abandoned; then it is
    /// aborted everywhere. Returns how many writes were rolled forward or aborted.
    pub fn reconcile_objects(&self) -> Result<usize> {
        let t = self.transport()?;
        let pending = t.runtime.block_on(join_all(
            t.cells
                .iter()
                .map(|c| c.call::<Ack, PendingResponse>(get("objects/pending"))),
        ));
        let txids: std::collections::BTreeSet<String> = all_ok(pending)?
            .into_iter()
            .flat_map(|p| p.staged)
            .collect();
        let mut rolled = 0;
        for txid in txids {
            let tx = TxRequest { txid };
            let statuses =
                t.runtime.block_on(join_all(t.cells.iter().map(|c| {
                    c.call::<_, TxStatusResponse>(post("objects/status", &tx, None, true))
                })));
            let statuses = all_ok(statuses)?;
            if !statuses.iter().any(|s| s.status == TxStatus::Committed) {
                // Committed nowhere: invisible. Once every copy is abandoned (no cell commits
                // it any more), drop it so its objects can be written again.
                let abandoned = statuses
                    .iter()
                    .all(|s| s.status == TxStatus::Unknown || s.abandoned);
                if abandoned {
                    let aborted = t.runtime.block_on(join_all(
                        t.cells
                            .iter()
                            .map(|c| c.call::<_, Ack>(post("objects/abort", &tx, None, true))),
                    ));
                    all_ok(aborted)?;
                    tracing::warn!(txid = tx.txid, "aborted an abandoned metadata write");
                    rolled += 1;
                }
                continue;
            }
            let committed =
                t.runtime.block_on(join_all(t.cells.iter().map(|c| {
                    c.call::<_, CommitResponse>(post("objects/commit", &tx, None, true))
                })));
            all_ok(committed)?;
            tracing::warn!(
                txid = tx.txid,
                "rolled forward a metadata write that some cells had not committed"
            );
            rolled += 1;
        }
        Ok(rolled)
    }

    fn load_objects_once(&self) -> Result<(String, Vec<ObjectRecord>)> {
        let t = self.transport()?;
        let all = t.runtime.block_on(join_all(
            t.cells
                .iter()
                .map(|c| c.call::<Ack, ObjectsResponse>(get("objects"))),
        ));
        let mut all = all_ok(all)?;
        for r in &mut all {
            r.objects.sort_by(|a, b| a.id.cmp(&b.id));
        }
        check_agreement(
            &t,
            &all,
            |r| (r.metadata_hash.clone(), r.objects.clone()),
            "token objects",
        )?;
        let first = all.swap_remove(0);
        Ok((first.metadata_hash, first.objects))
    }

    /// Two-phase write of token objects (puts replace by id). Returns the new metadata hash.
    /// Stage fails anywhere → abort everywhere, nothing changed. Once any cell committed,
    /// the write rolls forward: commits are retried on the others.
    pub fn write_objects(&self, puts: Vec<ObjectRecord>, deletes: Vec<String>) -> Result<String> {
        match self.write_objects_once(puts.clone(), deletes.clone()) {
            // A cell still holds an older write to one of these objects (its writer stopped
            // between commits): roll that forward, or drop it if abandoned, and try again.
            Err(e) if e.kind == ErrorKind::Refused && self.reconcile_objects()? > 0 => {
                self.write_objects_once(puts, deletes)
            }
            other => other,
        }
    }

    fn write_objects_once(&self, puts: Vec<ObjectRecord>, deletes: Vec<String>) -> Result<String> {
        let t = self.transport()?;
        let txid = keyfrag_core::random::uid_hex().map_err(device)?;
        let stage = StageRequest {
            txid: txid.clone(),
            puts,
            deletes,
        };
        let staged = t.runtime.block_on(join_all(
            t.cells
                .iter()
                .map(|c| c.call::<_, Ack>(post("objects/stage", &stage, None, true))),
        ));
        let tx = TxRequest { txid };
        if let Err(e) = all_ok(staged) {
            let aborted = t.runtime.block_on(join_all(
                t.cells
                    .iter()
                    .map(|c| c.call::<_, Ack>(post("objects/abort", &tx, None, true))),
            ));
            for a in aborted.into_iter().filter_map(|r| r.err()) {
                tracing::warn!("abort of a staged write not confirmed: {}", a.message);
            }
            return Err(e);
        }
        let mut last_err = None;
        for _ in 0..3 {
            let committed =
                t.runtime.block_on(join_all(t.cells.iter().map(|c| {
                    c.call::<_, CommitResponse>(post("objects/commit", &tx, None, true))
                })));
            match all_ok(committed) {
                Ok(all) if all.iter().all(|r| r.metadata_hash == all[0].metadata_hash) => {
                    return Ok(all[0].metadata_hash.clone());
                }
                // This write is committed everywhere, but the cells' views differ: another
                // writer is between its commits, or some cell missed an older commit. Roll
                // the latter forward and report the view all cells share now.
                Ok(_) => {
                    self.reconcile_objects()?;
                    return self.load_objects_once().map(|(hash, _)| hash);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| device_msg("commit failed")))
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
        if shares.len() != self.cell_count() {
            return Err(ClientError::new(
                ErrorKind::Refused,
                format!("{} shares for {} cells", shares.len(), self.cell_count()),
            ));
        }
        let t = self.transport()?;
        let bodies: Vec<PutRsaKeyRequest> = shares
            .iter()
            .map(|s| PutRsaKeyRequest {
                modulus: modulus.to_vec(),
                public_exponent: public_exponent.to_vec(),
                share: RsaShareWire {
                    negative: s.negative,
                    magnitude: s.magnitude.expose().to_vec(),
                },
                lease_secs,
            })
            .collect();
        drop(shares);
        let path = format!("keys/{uid}");
        let all = t
            .runtime
            .block_on(join_all(t.cells.iter().zip(&bodies).map(|(c, b)| {
                c.call::<_, Ack>(Call {
                    method: Method::PUT,
                    path: &path,
                    body: Some(b),
                    login: None,
                    idempotent: true,
                })
            })));
        drop(bodies);
        let stored: Vec<bool> = all.iter().map(|r| r.is_ok()).collect();
        if let Err(e) = all_ok(all) {
            let undo = t.runtime.block_on(join_all(
                t.cells
                    .iter()
                    .zip(&stored)
                    .filter(|(_, ok)| **ok)
                    .map(|(c, _)| c.call::<Ack, Ack>(delete(&path))),
            ));
            for u in undo.into_iter().filter_map(|r| r.err()) {
                tracing::warn!("could not remove a partly stored key: {}", u.message);
            }
            return Err(e);
        }
        Ok(())
    }

    pub fn delete_key(&self, uid: &str) -> Result<()> {
        let t = self.transport()?;
        let path = format!("keys/{uid}");
        let all = t.runtime.block_on(join_all(
            t.cells.iter().map(|c| c.call::<Ack, Ack>(delete(&path))),
        ));
        all_ok(all).map(drop)
    }

    pub fn renew_leases(&self, uids: &[String], lease_secs: u64) -> Result<()> {
        self.set_leases(uids, Some(lease_secs))
    }

    /// Turn session keys into token keys: the cells drop their leases (all cells, idempotent).
    pub fn make_permanent(&self, uids: &[String]) -> Result<()> {
        self.set_leases(uids, None)
    }

    fn set_leases(&self, uids: &[String], lease_secs: Option<u64>) -> Result<()> {
        let t = self.transport()?;
        let body = LeaseRequest {
            uids: uids.to_vec(),
            lease_secs,
        };
        let all = t.runtime.block_on(join_all(
            t.cells
                .iter()
                .map(|c| c.call::<_, Ack>(post("keys/lease", &body, None, true))),
        ));
        all_ok(all).map(drop)
    }

    /// The keys the cells hold, as the first cell reports them, after checking that every
    /// cell holds the same set of uids.
    pub fn list_keys(&self) -> Result<Vec<KeySummary>> {
        Ok(self.list_keys_by_cell()?.swap_remove(0))
    }

    /// Every cell's key list (each in uid order), after checking that every cell holds the
    /// same set of uids: entry i of each list is the same key.
    pub fn list_keys_by_cell(&self) -> Result<Vec<Vec<KeySummary>>> {
        let t = self.transport()?;
        let all = t.runtime.block_on(join_all(
            t.cells
                .iter()
                .map(|c| c.call::<Ack, KeysResponse>(get("keys"))),
        ));
        let mut all = all_ok(all)?;
        for r in &mut all {
            r.keys.sort_by(|a, b| a.uid.cmp(&b.uid));
        }
        check_agreement(
            &t,
            &all,
            |r| r.keys.iter().map(|k| k.uid.clone()).collect::<Vec<_>>(),
            "key set",
        )?;
        Ok(all.into_iter().map(|r| r.keys).collect())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let slot = self.transport.get_mut().map(Option::take).unwrap_or(None);
        if let Some(t) = slot
            && !t.runtime.belongs_to_this_process()
        {
            std::mem::forget(t);
        }
    }
}

fn get(path: &str) -> Call<'_, Ack> {
    Call {
        method: Method::GET,
        path,
        body: None,
        login: None,
        idempotent: true,
    }
}

fn delete(path: &str) -> Call<'_, Ack> {
    Call {
        method: Method::DELETE,
        path,
        body: None,
        login: None,
        idempotent: true,
    }
}

fn post<'a, B: serde::Serialize>(
    path: &'a str,
    body: &'a B,
    login: Option<&'a str>,
    idempotent: bool,
) -> Call<'a, B> {
    Call {
        method: Method::POST,
        path,
        body: Some(body),
        login,
        idempotent,
    }
}

fn post_empty<'a>(path: &'a str, login: Option<&'a str>) -> Call<'a, Ack> {
    Call {
        method: Method::POST,
        path,
        body: NO_BODY.or(Some(&Ack {})).filter(|_| false),
        login,
        idempotent: true,
    }
}

/// Every cell's answer, or the most telling error: an unreachable or failing cell first
/// (the operation cannot complete whatever the others said), else the first refusal.
fn all_ok<T>(results: Vec<Result<T>>) -> Result<Vec<T>> {
    let mut oks = Vec::with_capacity(results.len());
    let mut first_err: Option<ClientError> = None;
    for r in results {
        match r {
            Ok(v) => oks.push(v),
            Err(e) => {
                let replace = match &first_err {
                    None => true,
                    Some(prev) => e.kind == ErrorKind::Device && prev.kind != ErrorKind::Device,
                };
                if replace {
                    first_err = Some(e);
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(oks),
    }
}

/// All cells must report the same value; otherwise name the cells that differ from the
/// majority (a faulty or lying cell causes an error, never a substituted answer).
fn check_agreement<T, K: PartialEq>(
    t: &Transport,
    all: &[T],
    key: impl Fn(&T) -> K,
    what: &str,
) -> Result<()> {
    let keys: Vec<K> = all.iter().map(&key).collect();
    if keys.iter().all(|k| *k == keys[0]) {
        return Ok(());
    }
    let votes = |k: &K| keys.iter().filter(|o| *o == k).count();
    let majority = keys.iter().max_by_key(|k| votes(k)).expect("non-empty");
    let odd: Vec<&str> = keys
        .iter()
        .zip(&t.cells)
        .filter(|(k, _)| *k != majority)
        .map(|(_, c)| c.name.as_str())
        .collect();
    let msg = format!(
        "cells disagree on the {what}; refusing cell(s) {}",
        odd.join(", ")
    );
    tracing::error!("{msg}");
    Err(ClientError::new(ErrorKind::Device, msg))
}

fn device(e: keyfrag_core::Error) -> ClientError {
    ClientError::new(ErrorKind::Device, e.to_string())
}

fn device_msg(msg: &str) -> ClientError {
    ClientError::new(ErrorKind::Device, msg)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
