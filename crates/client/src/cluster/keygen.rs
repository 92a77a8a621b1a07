//! RSA generation by the cells (DESIGN.md "RSA generation", "Sealed relay"). The client is
//! only the relay: it reads each envelope's cleartext header to route it and carries the
//! bytes unchanged; it never sees a share, and it cannot alter, replay or reorder a message
//! without the receiving cell refusing it (and aborting the session).
//!
//! Rounds: start on every cell, then step every cell with the envelopes addressed to it
//! until all report the same public key, then commit (each cell checks that every party saw
//! the same broadcasts, then stores its share). Anything else — an error, a cancel, a cell
//! down — aborts the session everywhere and deletes the key uid if any commit was attempted,
//! so no share is left behind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use keyfrag_core::relay::Envelope;
use keyfrag_proto::keygen::{
    KeygenBody, KeygenCommitRequest, KeygenDone, KeygenStartRequest, encode_batch,
};

use super::{Cluster, Transport, all_ok, check_agreement, delete};
use crate::cell::{Body, Cell};
use crate::error::{ClientError, ErrorKind, Result};

/// Supported sizes; 1024 only where the token sets `allow_rsa_1024`.
const SIZES: [u32; 3] = [2048, 3072, 4096];
/// Floor of the per-request timeout of start/step/commit: a round can compute for seconds.
const MIN_STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the relay is when a test hook sees a cell's inbox.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct RelayPoint {
    /// 1 for the first step after start.
    pub round_trip: usize,
    /// The receiving cell's index.
    pub cell: usize,
}

fn device(message: String) -> ClientError {
    ClientError::new(ErrorKind::Device, message)
}

/// Anything a cell refuses mid-generation is a device failure to the caller (the key could
/// not be generated); the message still names the cell and the reason.
fn as_device(e: ClientError) -> ClientError {
    match e.kind {
        ErrorKind::Device | ErrorKind::Cancelled => e,
        _ => device(e.message),
    }
}

fn check_cancel(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Acquire) {
        Err(ClientError::new(
            ErrorKind::Cancelled,
            "key generation cancelled",
        ))
    } else {
        Ok(())
    }
}

/// Counters for the log line (and benchmarks).
#[derive(Default)]
struct Traffic {
    round_trips: usize,
    bytes_up: usize,
    bytes_down: usize,
}

struct Run<'a> {
    t: &'a Transport,
    names: Vec<String>,
    session: String,
    uid: &'a str,
    /// For start, step and commit.
    timeout: Duration,
    /// For abort (no compute behind it): the token's ordinary timeout.
    abort_timeout: Duration,
    commit_attempted: bool,
    traffic: Traffic,
}

impl Cluster {
    /// Generate an RSA key by fragments (Boneh–Franklin among the cells; the module only
    /// relays sealed messages) and store each cell's share under `uid`, with a lease for
    /// session keys. Returns (modulus, public exponent). `cancel` is polled between rounds:
    /// once set, the generation is aborted on every cell and `Cancelled` is returned. Any
    /// failure aborts the session everywhere and leaves no share stored.
    pub fn generate_rsa_key(
        &self,
        uid: &str,
        bits: u32,
        lease_secs: Option<u64>,
        cancel: &AtomicBool,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        self.generate_rsa_key_with_relay_hook(uid, bits, lease_secs, cancel, &|_, _| {})
    }

    /// `generate_rsa_key` with a hook that sees (and may change) every cell's inbox before it
    /// is sent: tests use it to tamper with, replay or drop envelopes, or to stop a cell.
    #[doc(hidden)]
    pub fn generate_rsa_key_with_relay_hook(
        &self,
        uid: &str,
        bits: u32,
        lease_secs: Option<u64>,
        cancel: &AtomicBool,
        hook: &dyn Fn(RelayPoint, &mut Vec<Vec<u8>>),
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        if !(SIZES.contains(&bits) || (bits == 1024 && self.token.allow_rsa_1024)) {
            return Err(ClientError::new(
                ErrorKind::Refused,
                format!(
                    "RSA key size {bits} is not supported by token {}",
                    self.token.label
                ),
            ));
        }
        check_cancel(cancel)?;
        let t = self.transport()?;
        let session = keyfrag_core::random::uid_hex().map_err(|e| device(e.to_string()))?;
        let mut run = Run {
            t: &t,
            names: self.cell_names(),
            session,
            uid,
            timeout: Duration::from_millis(self.token.timeout_ms).max(MIN_STEP_TIMEOUT),
            abort_timeout: Duration::from_millis(self.token.timeout_ms),
            commit_attempted: false,
            traffic: Traffic::default(),
        };
        let started = Instant::now();
        let start = KeygenStartRequest {
            session: run.session.clone(),
            key_uid: uid.to_owned(),
            bits,
            allow_1024: self.token.allow_rsa_1024,
            parties: run.names.clone(),
            lease_secs,
        };
        match t.runtime.block_on_here(run.drive(&start, cancel, hook)) {
            Ok(key) => {
                tracing::info!(
                    key = uid,
                    bits,
                    round_trips = run.traffic.round_trips,
                    bytes_up = run.traffic.bytes_up,
                    bytes_down = run.traffic.bytes_down,
                    ms = started.elapsed().as_millis() as u64,
                    "RSA key generated by the cells"
                );
                Ok(key)
            }
            Err(e) => {
                tracing::warn!(key = uid, bits, "key generation failed: {}", e.message);
                t.runtime.block_on(run.clean_up());
                Err(e)
            }
        }
    }
}

impl Run<'_> {
    fn path(&self, action: &str) -> String {
        format!("keygen/{}/{action}", self.session)
    }

    /// One request to every cell in parallel, each with its own body; answers in cell order.
    async fn fan_out(&mut self, path: &str, bodies: Vec<Body>) -> Result<Vec<Vec<u8>>> {
        let timeout = self.timeout;
        let all = join_all(
            self.t
                .cells
                .iter()
                .zip(bodies)
                .map(|(c, b)| c.post_binary(path, b, timeout)),
        )
        .await;
        let all = all_ok(all).map_err(as_device)?;
        self.traffic.bytes_down += all.iter().map(Vec::len).sum::<usize>();
        Ok(all)
    }

    fn parse(&self, answers: Vec<Vec<u8>>) -> Result<Vec<KeygenBody>> {
        answers
            .iter()
            .zip(&self.names)
            .map(|(a, name)| {
                KeygenBody::from_bytes(a)
                    .map_err(|e| device(format!("cell {name} sent a bad keygen answer: {e}")))
            })
            .collect()
    }

    async fn drive(
        &mut self,
        start: &KeygenStartRequest,
        cancel: &AtomicBool,
        hook: &dyn Fn(RelayPoint, &mut Vec<Vec<u8>>),
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let json = serde_json::to_vec(start).map_err(|e| device(e.to_string()))?;
        let bodies = self
            .names
            .iter()
            .map(|_| Body::Json(json.clone()))
            .collect();
        let answers = self.fan_out("keygen/start", bodies).await?;
        let mut bodies = self.parse(answers)?;
        let step = self.path("step");
        let dones = loop {
            let batches = match split(bodies, &self.names)? {
                Progress::Batches(b) => b,
                Progress::Done(d) => break d,
            };
            check_cancel(cancel)?;
            let mut inboxes = route(&self.names, &self.session, batches)?;
            self.traffic.round_trips += 1;
            for (cell, inbox) in inboxes.iter_mut().enumerate() {
                let at = RelayPoint {
                    round_trip: self.traffic.round_trips,
                    cell,
                };
                hook(at, inbox);
            }
            let requests: Vec<Body> = inboxes
                .iter()
                .map(|inbox| Body::Binary(encode_batch(inbox)))
                .collect();
            self.traffic.bytes_up += requests
                .iter()
                .map(|b| match b {
                    Body::Binary(b) | Body::Json(b) => b.len(),
                })
                .sum::<usize>();
            let answers = self.fan_out(&step, requests).await?;
            bodies = self.parse(answers)?;
        };
        let key = |d: &KeygenDone| (d.modulus.clone(), d.public_exponent.clone());
        check_agreement(self.t, &dones, key, "generated public key")?;
        // The last point where nothing has been stored anywhere.
        check_cancel(cancel)?;
        let commit = KeygenCommitRequest {
            transcript_hashes: dones
                .iter()
                .map(|d| hex::encode(d.transcript_hash))
                .collect(),
        };
        let json = serde_json::to_vec(&commit).map_err(|e| device(e.to_string()))?;
        self.commit_attempted = true;
        let bodies = self
            .names
            .iter()
            .map(|_| Body::Json(json.clone()))
            .collect();
        self.fan_out(&self.path("commit"), bodies).await?;
        Ok(key(&dones[0]))
    }

    /// After a failure: abort the session on every cell, and if any cell may have stored its
    /// share, delete the key uid everywhere. Best effort; what fails is logged.
    async fn clean_up(&mut self) {
        let abort = self.path("abort");
        let timeout = self.abort_timeout;
        let aborted = join_all(
            self.t
                .cells
                .iter()
                .map(|c| c.post_binary(&abort, Body::Json(b"{}".to_vec()), timeout)),
        )
        .await;
        for e in aborted.into_iter().filter_map(|r| r.err()) {
            tracing::warn!("abort of a key generation not confirmed: {}", e.message);
        }
        if self.commit_attempted {
            let path = format!("keys/{}", self.uid);
            let deleted = join_all(self.t.cells.iter().map(|c: &Cell| {
                c.call::<keyfrag_proto::token::Ack, keyfrag_proto::token::Ack>(delete(&path))
            }))
            .await;
            for e in deleted.into_iter().filter_map(|r| r.err()) {
                tracing::error!(
                    key = self.uid,
                    "a generated share may remain on a cell (delete failed): {}",
                    e.message
                );
            }
        }
    }
}

enum Progress {
    Batches(Vec<Vec<Vec<u8>>>),
    Done(Vec<KeygenDone>),
}

/// Every cell must be at the same point: all sent a next round, or all finished.
fn split(bodies: Vec<KeygenBody>, names: &[String]) -> Result<Progress> {
    let finished: Vec<&str> = bodies
        .iter()
        .zip(names)
        .filter(|(b, _)| matches!(b, KeygenBody::Done(_)))
        .map(|(_, n)| n.as_str())
        .collect();
    if finished.is_empty() {
        return Ok(Progress::Batches(
            bodies
                .into_iter()
                .map(|b| match b {
                    KeygenBody::Batch(envs) => envs,
                    KeygenBody::Done(_) => Vec::new(),
                })
                .collect(),
        ));
    }
    if finished.len() < names.len() {
        return Err(device(format!(
            "cells out of step: only {} finished the key generation",
            finished.join(", ")
        )));
    }
    Ok(Progress::Done(
        bodies
            .into_iter()
            .filter_map(|b| match b {
                KeygenBody::Done(d) => Some(d),
                KeygenBody::Batch(_) => None,
            })
            .collect(),
    ))
}

/// Deliver every envelope to its receiver by its cleartext header (a broadcast to every
/// other cell). The header is checked only for routing; the cells authenticate everything.
fn route(names: &[String], session: &str, batches: Vec<Vec<Vec<u8>>>) -> Result<Vec<Vec<Vec<u8>>>> {
    let mut inboxes = vec![Vec::new(); names.len()];
    for (from, batch) in batches.into_iter().enumerate() {
        let name = &names[from];
        if batch.is_empty() {
            return Err(device(format!(
                "cell {name} sent no messages for the next round"
            )));
        }
        for bytes in batch {
            let env = Envelope::from_bytes(&bytes)
                .map_err(|e| device(format!("cell {name} sent an unreadable envelope: {e}")))?;
            let h = env.header();
            if h.sender != *name || h.session_id != session {
                return Err(device(format!(
                    "cell {name} sent an envelope of another sender or session"
                )));
            }
            if h.receiver.is_empty() {
                for (j, inbox) in inboxes.iter_mut().enumerate() {
                    if j != from {
                        inbox.push(bytes.clone());
                    }
                }
            } else {
                let j = names
                    .iter()
                    .position(|n| *n == h.receiver)
                    .filter(|&j| j != from)
                    .ok_or_else(|| {
                        device(format!("cell {name} addressed an envelope to a non-peer"))
                    })?;
                inboxes[j].push(bytes);
            }
        }
    }
    Ok(inboxes)
}
