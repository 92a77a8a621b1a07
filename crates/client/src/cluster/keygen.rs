//! RSA generation by the cells (DESIGN.md "RSA generation", "Sealed relay"), and in customer
//! mode with the customer as a party of its own (`customer.rs`). For the cells the client is
//! only the relay: it reads each envelope's cleartext header to route it and carries the
//! bytes unchanged; it never sees a cell's share, and it cannot alter, replay or reorder a
//! message without the receiving party refusing it (and aborting the session).
//!
//! Waves (`waves.rs`): start on every party, then deliver everything produced in one wave in
//! the next, stepping each party that has mail (cells over HTTP in parallel, the customer on a
//! thread of its own beside them), until every party reports the same public key; then commit
//! (each party checks that every party saw the same broadcasts; the cells store their shares).
//! Anything else — an error, a stall, a cancel, a cell down — aborts the session everywhere
//! and deletes the key uid if any commit was attempted, so no share is left behind.

mod customer;
mod waves;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use keyfrag_core::customer::{CUSTOMER_PARTY_ID, CustomerSeed};
use keyfrag_core::keygen::{KeygenParams, Stats};
use keyfrag_proto::keygen::{KeygenBody, KeygenCommitRequest, KeygenStartRequest, encode_batch};

use super::{Cluster, Transport, all_ok, check_agreement, delete};
use crate::cell::{Body, Cell};
use crate::error::{ClientError, ErrorKind, Result};
use customer::{Join, LocalCustomer};
use waves::{Finished, Output};

/// Supported sizes; 1024 only where the token sets `allow_rsa_1024`.
const SIZES: [u32; 3] = [2048, 3072, 4096];
/// Floor of the per-request timeout of start/step/commit: a round can compute for seconds.
const MIN_STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// How to generate (`Cluster::generate_rsa_key_with`).
#[derive(Clone, Copy, Default)]
pub struct KeygenOptions<'a> {
    /// Session keys: the cells' shares expire unless renewed.
    pub lease_secs: Option<u64>,
    /// The key goes into the token's pool instead of straight to use.
    pub pooled: bool,
    /// Customer mode: this seed's holder is a party (run here), and the cells' shares alone
    /// are useless; the token must have the seed's card pinned.
    pub customer: Option<&'a CustomerSeed>,
}

/// What a generation did, for logs and benchmarks.
#[derive(Clone, Debug)]
pub struct KeygenReport {
    pub modulus: Vec<u8>,
    pub public_exponent: Vec<u8>,
    pub elapsed: Duration,
    /// Waves after the start (each one HTTP round trip to the cells stepped in it).
    pub waves: usize,
    /// Bodies sent to the cells and received from them.
    pub bytes_up: usize,
    pub bytes_down: usize,
    /// Customer mode: the customer party's counters (candidate pairs, bytes, CPU time).
    pub customer: Option<Stats>,
}

/// Where the relay is when a test hook sees a party's inbox.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct RelayPoint {
    /// The wave: 1 for the first step after start.
    pub round_trip: usize,
    /// The receiving party's index: a cell, or (customer mode) the customer, last.
    pub cell: usize,
}

type Hook<'h> = &'h dyn Fn(RelayPoint, &mut Vec<Vec<u8>>);

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

/// Counters for the log line and the report.
#[derive(Default)]
struct Traffic {
    waves: usize,
    bytes_up: usize,
    bytes_down: usize,
}

struct Run<'a> {
    t: &'a Transport,
    /// The cells' names, then (customer mode) CUSTOMER_PARTY_ID.
    parties: Vec<String>,
    cells: usize,
    session: String,
    uid: &'a str,
    /// For start, step and commit.
    timeout: Duration,
    /// For abort (no compute behind it): the token's ordinary timeout.
    abort_timeout: Duration,
    /// The customer may compute on a thread of its own (not under
    /// CKF_LIBRARY_CANT_CREATE_OS_THREADS).
    threads: bool,
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
        let opts = KeygenOptions {
            lease_secs,
            ..KeygenOptions::default()
        };
        self.generate_rsa_key_with(uid, bits, &opts, cancel)
    }

    /// `generate_rsa_key` with options: into the pool, and customer mode (the seed's holder
    /// a party of the generation, run in this process; minutes at RSA-2048).
    pub fn generate_rsa_key_with(
        &self,
        uid: &str,
        bits: u32,
        opts: &KeygenOptions<'_>,
        cancel: &AtomicBool,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        self.generate_rsa_key_report(uid, bits, opts, cancel, &|_, _| {})
            .map(|r| (r.modulus, r.public_exponent))
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
        hook: Hook<'_>,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let opts = KeygenOptions {
            lease_secs,
            ..KeygenOptions::default()
        };
        self.generate_rsa_key_report(uid, bits, &opts, cancel, hook)
            .map(|r| (r.modulus, r.public_exponent))
    }

    /// The generation itself, with its report. `hook` sees every inbox before delivery
    /// (tests); pass `&|_, _| {}` otherwise.
    pub fn generate_rsa_key_report(
        &self,
        uid: &str,
        bits: u32,
        opts: &KeygenOptions<'_>,
        cancel: &AtomicBool,
        hook: Hook<'_>,
    ) -> Result<KeygenReport> {
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
        let mut session_bytes = [0u8; 16];
        keyfrag_core::random::fill(&mut session_bytes).map_err(|e| device(e.to_string()))?;
        let mut parties = self.cell_names();
        let cells = parties.len();
        if opts.customer.is_some() {
            parties.push(CUSTOMER_PARTY_ID.to_owned());
        }
        let mut run = Run {
            t: &t,
            parties,
            cells,
            session: hex::encode(session_bytes),
            uid,
            timeout: Duration::from_millis(self.token.timeout_ms).max(MIN_STEP_TIMEOUT),
            abort_timeout: Duration::from_millis(self.token.timeout_ms),
            threads: self.threads,
            commit_attempted: false,
            traffic: Traffic::default(),
        };
        let started = Instant::now();
        let start = KeygenStartRequest {
            session: run.session.clone(),
            key_uid: uid.to_owned(),
            bits,
            allow_1024: self.token.allow_rsa_1024,
            parties: run.parties.clone(),
            lease_secs: opts.lease_secs,
            customer: opts.customer.is_some(),
            pooled: opts.pooled,
        };
        let mut local = None;
        let result = (|| {
            if let Some(seed) = opts.customer {
                let cards = t.runtime.block_on(customer::relay_cards(&t))?;
                local = Some(LocalCustomer::new(Join {
                    seed,
                    uid,
                    bits,
                    params: KeygenParams::for_request(session_bytes, bits as usize, true),
                    session_hex: &run.session,
                    parties: run.parties.clone(),
                    cards,
                })?);
            }
            run.drive(&start, local.as_mut(), cancel, hook)
        })();
        let stats = local.as_ref().map(|c| c.stats().clone());
        drop(local);
        match result {
            Ok((modulus, public_exponent)) => {
                let report = KeygenReport {
                    modulus,
                    public_exponent,
                    elapsed: started.elapsed(),
                    waves: run.traffic.waves,
                    bytes_up: run.traffic.bytes_up,
                    bytes_down: run.traffic.bytes_down,
                    customer: stats,
                };
                report.log(uid, bits);
                Ok(report)
            }
            Err(e) => {
                tracing::warn!(key = uid, bits, "key generation failed: {}", e.message);
                t.runtime.block_on(run.clean_up());
                Err(e)
            }
        }
    }
}

impl KeygenReport {
    fn log(&self, uid: &str, bits: u32) {
        let ms = self.elapsed.as_millis() as u64;
        match &self.customer {
            None => tracing::info!(
                key = uid,
                bits,
                round_trips = self.waves,
                bytes_up = self.bytes_up,
                bytes_down = self.bytes_down,
                ms,
                "RSA key generated by the cells"
            ),
            Some(s) => tracing::info!(
                key = uid,
                bits,
                waves = self.waves,
                bytes_up = self.bytes_up,
                bytes_down = self.bytes_down,
                ms,
                pairs = s.pairs,
                batches = s.batches,
                rounds = s.rounds,
                customer_sieve_ms = s.sieve_ns / 1_000_000,
                customer_product_ms = s.product_ns / 1_000_000,
                customer_filter_ms = s.filter_ns / 1_000_000,
                customer_finish_ms = s.finish_ns / 1_000_000,
                customer_bytes_sent = s.pairwise_bytes_sent + s.broadcast_bytes_sent,
                "RSA key generated in customer mode (the customer a party)"
            ),
        }
    }
}

/// A wave's work for the customer: start, or a step with its inbox.
enum LocalJob {
    Start,
    Step(Vec<Vec<u8>>),
}

impl Run<'_> {
    fn path(&self, action: &str) -> String {
        format!("keygen/{}/{action}", self.session)
    }

    fn customer_mode(&self) -> bool {
        self.parties.len() > self.cells
    }

    /// One request to each cell that has a body, in parallel; answers by cell (None where no
    /// request was sent).
    async fn fan_out(
        &mut self,
        path: &str,
        bodies: Vec<Option<Body>>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let timeout = self.timeout;
        self.traffic.bytes_up += bodies
            .iter()
            .flatten()
            .map(|b| match b {
                Body::Binary(b) | Body::Json(b) => b.len(),
            })
            .sum::<usize>();
        let sent: Vec<usize> = (0..bodies.len()).filter(|&i| bodies[i].is_some()).collect();
        let all = join_all(
            self.t
                .cells
                .iter()
                .zip(bodies)
                .filter_map(|(c, b)| b.map(|b| c.post_binary(path, b, timeout))),
        )
        .await;
        let all = all_ok(all).map_err(as_device)?;
        self.traffic.bytes_down += all.iter().map(Vec::len).sum::<usize>();
        let mut out = vec![None; self.cells];
        for (i, a) in sent.into_iter().zip(all) {
            out[i] = Some(a);
        }
        Ok(out)
    }

    /// One wave: the cells' requests and the customer's own step at the same time (the
    /// customer on a scoped thread while this thread drives the connections; one after the
    /// other where the application forbids threads). Outputs by party.
    fn wave(
        &mut self,
        path: &str,
        bodies: Vec<Option<Body>>,
        customer: Option<(&mut LocalCustomer, LocalJob)>,
    ) -> Result<Vec<Option<Output>>> {
        let local = |(c, job): (&mut LocalCustomer, LocalJob)| match job {
            LocalJob::Start => c.start(),
            LocalJob::Step(inbox) => c.step(inbox),
        };
        let t = self.t;
        let (answers, own) = if self.threads {
            std::thread::scope(|s| {
                let handle = customer.map(|c| s.spawn(move || local(c)));
                let answers = t.runtime.block_on_here(self.fan_out(path, bodies));
                let own = handle.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                (answers, own)
            })
        } else {
            let own = customer.map(local);
            (t.runtime.block_on_here(self.fan_out(path, bodies)), own)
        };
        // A cell's refusal names the cell and comes first; the customer's own failure next.
        let answers = answers?;
        let own = own.transpose()?;
        let mut outputs = answers
            .into_iter()
            .zip(&self.parties)
            .map(|(a, name)| a.map(|a| parse(&a, name)).transpose())
            .collect::<Result<Vec<_>>>()?;
        if self.customer_mode() {
            outputs.push(own);
        }
        Ok(outputs)
    }

    fn drive(
        &mut self,
        start: &KeygenStartRequest,
        mut customer: Option<&mut LocalCustomer>,
        cancel: &AtomicBool,
        hook: Hook<'_>,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let strict = !self.customer_mode();
        let json = serde_json::to_vec(start).map_err(|e| device(e.to_string()))?;
        let bodies = (0..self.cells)
            .map(|_| Some(Body::Json(json.clone())))
            .collect();
        let job = customer.as_deref_mut().map(|c| (c, LocalJob::Start));
        let mut outputs = self.wave("keygen/start", bodies, job)?;
        let step = self.path("step");
        let mut finished: Vec<Option<Finished>> = vec![None; self.parties.len()];
        loop {
            if strict {
                waves::check_strict(&self.parties, &outputs)?;
            }
            let mut sends = Vec::new();
            for (i, o) in outputs.into_iter().enumerate() {
                match o {
                    Some(Output::Send(envs)) => sends.push((i, envs)),
                    Some(Output::Done(f)) => finished[i] = Some(f),
                    None => {}
                }
            }
            if finished.iter().all(Option::is_some) {
                break;
            }
            check_cancel(cancel)?;
            let mut inboxes = waves::route(&self.parties, &self.session, sends)?;
            self.traffic.waves += 1;
            for (i, inbox) in inboxes.iter_mut().enumerate() {
                if strict || !inbox.is_empty() {
                    let at = RelayPoint {
                        round_trip: self.traffic.waves,
                        cell: i,
                    };
                    hook(at, inbox);
                }
            }
            self.check_deliverable(&inboxes, &finished)?;
            let mut inboxes = inboxes.into_iter();
            let bodies: Vec<Option<Body>> = inboxes
                .by_ref()
                .take(self.cells)
                .map(|inbox| {
                    (strict || !inbox.is_empty()).then(|| Body::Binary(encode_batch(&inbox)))
                })
                .collect();
            let job = match (customer.as_deref_mut(), inboxes.next()) {
                (Some(c), Some(inbox)) if !inbox.is_empty() => Some((c, LocalJob::Step(inbox))),
                _ => None,
            };
            outputs = self.wave(&step, bodies, job)?;
        }
        let finished: Vec<Finished> = finished.into_iter().flatten().collect();
        self.commit(&finished, customer.as_deref(), cancel)
    }

    /// Before stepping: something must be in flight while a party is still running, and a
    /// party that finished must not be sent more.
    fn check_deliverable(
        &self,
        inboxes: &[Vec<Vec<u8>>],
        finished: &[Option<Finished>],
    ) -> Result<()> {
        if let Some(i) =
            (0..inboxes.len()).find(|&i| finished[i].is_some() && !inboxes[i].is_empty())
        {
            return Err(device(format!(
                "party {} finished the key generation but was sent more messages",
                self.parties[i]
            )));
        }
        if inboxes.iter().all(Vec::is_empty) {
            let waiting: Vec<&str> = (0..finished.len())
                .filter(|&i| finished[i].is_none())
                .map(|i| self.parties[i].as_str())
                .collect();
            return Err(device(format!(
                "key generation stalled in wave {}: nothing to deliver while {} have not \
                 finished",
                self.traffic.waves,
                waiting.join(", ")
            )));
        }
        Ok(())
    }

    /// Every party agrees on the key; the customer checks the echo itself; then the cells
    /// check it and store their shares.
    fn commit(
        &mut self,
        finished: &[Finished],
        customer: Option<&LocalCustomer>,
        cancel: &AtomicBool,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let key = |d: &Finished| (d.modulus.clone(), d.public_exponent.clone());
        check_agreement(self.t, &finished[..self.cells], key, "generated public key")?;
        if finished[self.cells..]
            .iter()
            .any(|f| key(f) != key(&finished[0]))
        {
            return Err(device(
                "the customer party computed another public key than the cells".into(),
            ));
        }
        let hashes: Vec<[u8; 32]> = finished.iter().map(|f| f.transcript_hash).collect();
        if let Some(c) = customer {
            c.check_echo(&hashes)?;
        }
        // The last point where nothing has been stored anywhere.
        check_cancel(cancel)?;
        let commit = KeygenCommitRequest {
            transcript_hashes: hashes.iter().map(hex::encode).collect(),
        };
        let json = serde_json::to_vec(&commit).map_err(|e| device(e.to_string()))?;
        self.commit_attempted = true;
        let bodies = (0..self.cells)
            .map(|_| Some(Body::Json(json.clone())))
            .collect();
        let path = self.path("commit");
        let t = self.t;
        t.runtime.block_on_here(self.fan_out(&path, bodies))?;
        Ok(key(&finished[0]))
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

/// A cell's answer to start or step.
fn parse(answer: &[u8], name: &str) -> Result<Output> {
    match KeygenBody::from_bytes(answer) {
        Ok(KeygenBody::Batch(envs)) => Ok(Output::Send(envs)),
        Ok(KeygenBody::Done(d)) => Ok(Output::Done(Finished {
            modulus: d.modulus,
            public_exponent: d.public_exponent,
            transcript_hash: d.transcript_hash,
        })),
        Err(e) => Err(device(format!("cell {name} sent a bad keygen answer: {e}"))),
    }
}
