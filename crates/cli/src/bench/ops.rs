//! The measured operations, their inputs, a correctness check before timing, and the
//! runners: throughput over N sessions (one thread and one PKCS#11 session each, for a fixed
//! window after a warm-up) and the memory run.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::session::Session;
use rsa::sha2::{Digest, Sha256};
use rsa::traits::PublicKeyParts;
use serde::Serialize;

use super::STOP;
use super::module::{Key, Module, short};
use super::stats::{self, Latency};

/// The operations, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    SignPkcs,
    SignPss,
    DecryptOaep,
    VerifyPkcs,
    EncryptOaep,
    Digest,
}

pub const ALL_OPS: [Op; 6] = [
    Op::SignPkcs,
    Op::SignPss,
    Op::DecryptOaep,
    Op::VerifyPkcs,
    Op::EncryptOaep,
    Op::Digest,
];

impl Op {
    /// Stable identifier (JSON, `--ops`).
    pub fn id(self) -> &'static str {
        match self {
            Op::SignPkcs => "sign-pkcs",
            Op::SignPss => "sign-pss",
            Op::DecryptOaep => "decrypt-oaep",
            Op::VerifyPkcs => "verify-pkcs",
            Op::EncryptOaep => "encrypt-oaep",
            Op::Digest => "digest-sha256",
        }
    }

    /// The PKCS#11 mechanism, for people.
    pub fn mechanism(self) -> &'static str {
        match self {
            Op::SignPkcs => "CKM_SHA256_RSA_PKCS sign",
            Op::SignPss => "CKM_SHA256_RSA_PKCS_PSS sign",
            Op::DecryptOaep => "CKM_RSA_PKCS_OAEP decrypt",
            Op::VerifyPkcs => "CKM_SHA256_RSA_PKCS verify",
            Op::EncryptOaep => "CKM_RSA_PKCS_OAEP encrypt",
            Op::Digest => "CKM_SHA256 digest (1 KiB)",
        }
    }

    pub fn from_id(s: &str) -> Option<Op> {
        ALL_OPS.into_iter().find(|o| o.id() == s)
    }

    /// A private-key operation (the cells compute partials).
    pub fn private(self) -> bool {
        matches!(self, Op::SignPkcs | Op::SignPss | Op::DecryptOaep)
    }

    /// Needs an RSA key (everything but the digest).
    pub fn keyed(self) -> bool {
        self != Op::Digest
    }
}

fn pss() -> Mechanism<'static> {
    Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    })
}

/// The OAEP hash (and MGF1 hash): SHA-256 as measured, SHA-1 for modules that refuse
/// SHA-256 OAEP (SoftHSM 2.6 supports only SHA-1 OAEP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OaepHash {
    Sha256,
    Sha1,
}

fn oaep(hash: OaepHash) -> Mechanism<'static> {
    let (h, mgf) = match hash {
        OaepHash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        OaepHash::Sha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
    };
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(h, mgf, PkcsOaepSource::empty()))
}

/// Inputs of the operations on one key (or none, for the digest).
pub struct Fixtures {
    pub message: Vec<u8>,
    pub digest_input: Vec<u8>,
    pub plaintext: Vec<u8>,
    pub oaep: OaepHash,
    /// OAEP ciphertexts of `plaintext` made by the `rsa` crate; used round-robin.
    pub ciphertexts: Vec<Vec<u8>>,
    /// A CKM_SHA256_RSA_PKCS signature of `message` made by the module (checked).
    pub signature: Vec<u8>,
    /// Operations that failed their check on this module, and why: not measured.
    pub unavailable: Vec<(Op, String)>,
    /// Deviations from the stated method (e.g. SHA-1 OAEP), per operation.
    pub notes: Vec<(Op, String)>,
}

fn refuses_params(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::ArgumentsBad | RvError::MechanismParamInvalid | RvError::MechanismInvalid,
            _
        )
    )
}

fn ciphertexts(key: &Key, plaintext: &[u8], hash: OaepHash) -> Result<Vec<Vec<u8>>, String> {
    (0..16)
        .map(|_| match hash {
            OaepHash::Sha256 => key.rsa_public.oaep_encrypt::<Sha256>(plaintext),
            OaepHash::Sha1 => key.rsa_public.oaep_encrypt::<sha1::Sha1>(plaintext),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("OAEP-encrypt with the rsa crate: {e}"))
}

impl Fixtures {
    pub fn digest_only() -> Fixtures {
        Fixtures {
            message: Vec::new(),
            digest_input: digest_input(),
            plaintext: Vec::new(),
            oaep: OaepHash::Sha256,
            ciphertexts: Vec::new(),
            signature: Vec::new(),
            unavailable: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Why `op` is not measured on this module, if it is not.
    pub fn unavailable(&self, op: Op) -> Option<&str> {
        self.unavailable
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, why)| why.as_str())
    }

    pub fn note(&self, op: Op) -> Option<&str> {
        self.notes
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, n)| n.as_str())
    }

    /// Inputs for `key`, after checking that the module's sign, PSS sign, OAEP decrypt,
    /// verify, encrypt and digest give correct results with it. An operation that fails its
    /// check is listed as unavailable (and not measured on this module).
    pub fn for_key(module: &Module, key: &Key) -> Result<Fixtures, String> {
        let message = b"keyfrag bench: a 64-byte message signed again and again.........".to_vec();
        let plaintext = b"a 32-byte secret for the bench!!".to_vec();
        let mut fx = Fixtures {
            message,
            digest_input: digest_input(),
            ciphertexts: ciphertexts(key, &plaintext, OaepHash::Sha256)?,
            plaintext,
            oaep: OaepHash::Sha256,
            signature: Vec::new(),
            unavailable: Vec::new(),
            notes: Vec::new(),
        };
        let s = &module.admin;
        let bad = |op: Op, why: String| {
            eprintln!(
                "bench: {}: RSA-{} {} not measured: {why}",
                module.info.name,
                key.bits,
                op.mechanism()
            );
            (op, why)
        };
        let mut unavailable = Vec::new();
        match s.sign(&Mechanism::Sha256RsaPkcs, key.private, &fx.message) {
            Ok(sig) => match key.rsa_public.pkcs1v15_verify::<Sha256>(&fx.message, &sig) {
                Ok(()) => fx.signature = sig,
                Err(e) => unavailable.push(bad(Op::SignPkcs, format!("wrong signature ({e})"))),
            },
            Err(e) => unavailable.push(bad(Op::SignPkcs, short(&e))),
        }
        match s.sign(&pss(), key.private, &fx.message) {
            Ok(sig) => {
                if let Err(e) = key
                    .rsa_public
                    .pss_verify_prehash::<Sha256>(&Sha256::digest(&fx.message), &sig)
                {
                    unavailable.push(bad(Op::SignPss, format!("wrong signature ({e})")));
                }
            }
            Err(e) => unavailable.push(bad(Op::SignPss, short(&e))),
        }
        let mut decrypted = s.decrypt(&oaep(OaepHash::Sha256), key.private, &fx.ciphertexts[0]);
        if let Err(e) = &decrypted
            && refuses_params(e)
        {
            let sha1 = ciphertexts(key, &fx.plaintext, OaepHash::Sha1)?;
            if let Ok(p) = s.decrypt(&oaep(OaepHash::Sha1), key.private, &sha1[0]) {
                let why = format!(
                    "SHA-256 OAEP refused ({}); measured with SHA-1 OAEP and MGF1-SHA1",
                    short(e)
                );
                eprintln!("bench: {}: RSA-{} {why}", module.info.name, key.bits);
                fx.notes.push((Op::DecryptOaep, why.clone()));
                fx.notes.push((Op::EncryptOaep, why));
                fx.oaep = OaepHash::Sha1;
                fx.ciphertexts = sha1;
                decrypted = Ok(p);
            }
        }
        match decrypted {
            Ok(p) if p == fx.plaintext => {}
            Ok(_) => unavailable.push(bad(Op::DecryptOaep, "wrong plaintext".into())),
            Err(e) => unavailable.push(bad(Op::DecryptOaep, short(&e))),
        }
        if fx.signature.is_empty() {
            unavailable.push(bad(
                Op::VerifyPkcs,
                "no signature to verify (signing failed)".into(),
            ));
        } else if let Err(e) = s.verify(
            &Mechanism::Sha256RsaPkcs,
            key.public,
            &fx.message,
            &fx.signature,
        ) {
            unavailable.push(bad(Op::VerifyPkcs, short(&e)));
        }
        match s.encrypt(&oaep(fx.oaep), key.public, &fx.plaintext) {
            Ok(c) if c.len() == key.rsa_public.size() => {}
            Ok(c) => unavailable.push(bad(Op::EncryptOaep, format!("{}-byte ciphertext", c.len()))),
            Err(e) => unavailable.push(bad(Op::EncryptOaep, short(&e))),
        }
        fx.unavailable = unavailable;
        Ok(fx)
    }
}

fn digest_input() -> Vec<u8> {
    (0..1024u32).map(|i| (i * 7 + 3) as u8).collect()
}

pub fn check_digest(module: &Module, fx: &Fixtures) -> Result<(), String> {
    let d = module
        .admin
        .digest(&Mechanism::Sha256, &fx.digest_input)
        .map_err(|e| format!("{}: CKM_SHA256 digest: {}", module.info.name, short(&e)))?;
    if d != Sha256::digest(&fx.digest_input).as_slice() {
        return Err(format!("{}: CKM_SHA256 digest is wrong", module.info.name));
    }
    Ok(())
}

/// One operation on `session`; `i` picks the ciphertext.
fn run_once(
    op: Op,
    session: &Session,
    key: Option<&Key>,
    fx: &Fixtures,
    i: usize,
) -> Result<(), CkError> {
    let k = || key.expect("keyed operation without a key");
    match op {
        Op::SignPkcs => session
            .sign(&Mechanism::Sha256RsaPkcs, k().private, &fx.message)
            .map(drop),
        Op::SignPss => session.sign(&pss(), k().private, &fx.message).map(drop),
        Op::DecryptOaep => session
            .decrypt(
                &oaep(fx.oaep),
                k().private,
                &fx.ciphertexts[i % fx.ciphertexts.len()],
            )
            .map(drop),
        Op::VerifyPkcs => session.verify(
            &Mechanism::Sha256RsaPkcs,
            k().public,
            &fx.message,
            &fx.signature,
        ),
        Op::EncryptOaep => session
            .encrypt(&oaep(fx.oaep), k().public, &fx.plaintext)
            .map(drop),
        Op::Digest => session
            .digest(&Mechanism::Sha256, &fx.digest_input)
            .map(drop),
    }
}

/// A safety bound on one thread's loop (the window ends it long before, normally).
const MAX_OPS_PER_THREAD: u64 = 100_000_000;
/// A thread stops after this many failed operations.
const MAX_ERRORS_PER_THREAD: u64 = 10;

/// Throughput and latency at one session count.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub sessions: usize,
    /// Operations completed inside the measurement window.
    pub ops: u64,
    /// Length of the measurement window (after warm-up), in seconds.
    pub seconds: f64,
    pub ops_per_sec: f64,
    /// Latency of the operations completed inside the window.
    pub latency: Option<Latency>,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

struct ThreadResult {
    ops: u64,
    samples: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

fn open_sessions(module: &Module, n: usize) -> Result<Vec<Session>, String> {
    (0..n)
        .map(|_| {
            module
                .ctx
                .open_ro_session(module.slot)
                .map_err(|e| format!("{}: C_OpenSession: {e}", module.info.name))
        })
        .collect()
}

/// Run `op` on `sessions` concurrent sessions for `warmup` then `window`; count what
/// completes inside the window.
pub fn throughput(
    module: &Module,
    op: Op,
    key: Option<&Key>,
    fx: &Fixtures,
    sessions: usize,
    warmup: Duration,
    window: Duration,
) -> Result<Measurement, String> {
    let opened = open_sessions(module, sessions)?;
    let t0 = Instant::now();
    let warm_end = t0 + warmup;
    let end = warm_end + window;
    let results: Vec<ThreadResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = opened
            .into_iter()
            .enumerate()
            .map(|(t, session)| {
                scope.spawn(move || {
                    let mut r = ThreadResult {
                        ops: 0,
                        samples: Vec::with_capacity(4096),
                        errors: 0,
                        first_error: None,
                    };
                    let mut i = t;
                    let mut n = 0u64;
                    loop {
                        let start = Instant::now();
                        if start >= end || STOP.load(Ordering::Relaxed) || n >= MAX_OPS_PER_THREAD {
                            break;
                        }
                        let res = run_once(op, &session, key, fx, i);
                        let done = Instant::now();
                        i = i.wrapping_add(1);
                        n += 1;
                        match res {
                            Ok(()) => {
                                if done >= warm_end && done <= end {
                                    r.ops += 1;
                                    r.samples.push((done - start).as_nanos() as u64);
                                }
                            }
                            Err(e) => {
                                r.errors += 1;
                                r.first_error.get_or_insert_with(|| short(&e));
                                if r.errors >= MAX_ERRORS_PER_THREAD {
                                    break;
                                }
                            }
                        }
                    }
                    drop(session);
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    // Interrupted runs count only the part of the window that elapsed.
    let stopped = Instant::now().min(end);
    let seconds = stopped.saturating_duration_since(warm_end).as_secs_f64();
    let ops: u64 = results.iter().map(|r| r.ops).sum();
    let errors = results.iter().map(|r| r.errors).sum();
    let first_error = results.iter().find_map(|r| r.first_error.clone());
    let mut samples: Vec<u64> = results.into_iter().flat_map(|r| r.samples).collect();
    Ok(Measurement {
        sessions,
        ops,
        seconds,
        ops_per_sec: if seconds > 0.0 {
            ops as f64 / seconds
        } else {
            0.0
        },
        latency: stats::summarize(&mut samples),
        errors,
        first_error,
    })
}

/// Resident set size of this process (which has the module loaded), in bytes.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

/// Open file descriptors of this process (the module's sockets live here), or `None`.
pub fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

#[derive(Clone, Debug, Serialize)]
pub struct MemoryPoint {
    /// Operations done so far (after the warm-up).
    pub ops: u64,
    pub rss_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_fds: Option<u64>,
}

/// "Flat" means the resident size grows by at most this over the second half of the run
/// (the last two quarters). RSS moves in pages and allocator arenas grow in chunks of up to
/// ~1 MiB whatever the workload, so a smaller bound would judge noise; over the 50,000
/// operations of the second half of a 100,000-operation run, a leak of 21 bytes or more per
/// operation exceeds it.
pub const FLAT_BOUND_BYTES: i64 = 1024 * 1024;

/// Growth over the second half of the run (last point − the point at half), and whether
/// it is within [`FLAT_BOUND_BYTES`]; `None` with fewer than 3 points (an interrupted run).
pub fn second_half_growth(points: &[MemoryPoint]) -> Option<(i64, bool)> {
    if points.len() < 3 {
        return None;
    }
    let half = &points[points.len() / 2 - 1];
    let last = points.last()?;
    let growth = last.rss_bytes as i64 - half.rss_bytes as i64;
    Some((growth, growth <= FLAT_BOUND_BYTES))
}

#[derive(Clone, Debug, Serialize)]
pub struct MemoryReport {
    pub module: String,
    pub op: &'static str,
    pub bits: usize,
    pub sessions: usize,
    pub warmup_ops: u64,
    pub rss_before_bytes: u64,
    pub rss_after_warmup_bytes: u64,
    pub points: Vec<MemoryPoint>,
    /// Final RSS minus RSS after the warm-up.
    pub growth_bytes: i64,
    pub growth_bytes_per_op: f64,
    /// Last point minus the first (a leak grows steadily from quarter to quarter; one-off
    /// growth such as allocator arenas and connection pools settles early).
    pub growth_after_first_quarter_bytes: i64,
    /// Last point minus the point at half the operations: what "flat" is judged on.
    pub growth_second_half_bytes: Option<i64>,
    pub flat_bound_bytes: i64,
    /// PASS: second-half growth ≤ the bound and no errors.
    pub flat: Option<bool>,
    pub open_fds_before: Option<u64>,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub seconds: f64,
}

/// `per_session` operations on each of the sessions, one thread each; sessions come back.
fn run_counted(
    op: Op,
    sessions: Vec<Session>,
    key: &Key,
    fx: &Fixtures,
    per_session: u64,
) -> (Vec<Session>, u64, Option<String>) {
    let results: Vec<(Session, u64, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .into_iter()
            .enumerate()
            .map(|(t, session)| {
                scope.spawn(move || {
                    let (mut errors, mut first) = (0u64, None);
                    for i in 0..per_session {
                        if STOP.load(Ordering::Relaxed) {
                            break;
                        }
                        if let Err(e) = run_once(op, &session, Some(key), fx, t + i as usize) {
                            errors += 1;
                            first.get_or_insert_with(|| short(&e));
                            if errors >= MAX_ERRORS_PER_THREAD {
                                break;
                            }
                        }
                    }
                    (session, errors, first)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    let errors = results.iter().map(|r| r.1).sum();
    let first = results.iter().find_map(|r| r.2.clone());
    (results.into_iter().map(|r| r.0).collect(), errors, first)
}

/// `total` sign operations over `sessions` sessions, in four quarters after a warm-up of
/// 1% (at least 10 per session), with the process's RSS read before, after the warm-up and
/// after each quarter.
pub fn memory(
    module: &Module,
    key: &Key,
    fx: &Fixtures,
    total: u64,
    sessions: usize,
) -> Result<MemoryReport, String> {
    let op = Op::SignPkcs;
    let t0 = Instant::now();
    let rss_before = rss_bytes().ok_or("cannot read /proc/self/statm")?;
    let fds_before = open_fds();
    let mut opened = open_sessions(module, sessions)?;
    let warm_per_session = (total / 100 / sessions as u64).max(10);
    let (s, mut errors, mut first_error) = run_counted(op, opened, key, fx, warm_per_session);
    opened = s;
    let rss_warm = rss_bytes().ok_or("cannot read /proc/self/statm")?;
    let per_quarter = (total / 4).div_ceil(sessions as u64);
    let mut points = Vec::new();
    let mut done = 0;
    for _ in 0..4 {
        let (s, e, f) = run_counted(op, opened, key, fx, per_quarter);
        opened = s;
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
        done += per_quarter * sessions as u64;
        points.push(MemoryPoint {
            ops: done,
            rss_bytes: rss_bytes().unwrap_or(0),
            open_fds: open_fds(),
        });
        if STOP.load(Ordering::Relaxed) {
            break;
        }
    }
    drop(opened);
    let last = points.last().map(|p| p.rss_bytes).unwrap_or(rss_warm);
    let growth = last as i64 - rss_warm as i64;
    let second_half = second_half_growth(&points);
    Ok(MemoryReport {
        module: module.info.name.clone(),
        op: op.id(),
        bits: key.bits,
        sessions,
        warmup_ops: warm_per_session * sessions as u64,
        rss_before_bytes: rss_before,
        rss_after_warmup_bytes: rss_warm,
        growth_bytes: growth,
        growth_bytes_per_op: if done > 0 {
            growth as f64 / done as f64
        } else {
            0.0
        },
        growth_after_first_quarter_bytes: points
            .first()
            .map(|p| last as i64 - p.rss_bytes as i64)
            .unwrap_or(0),
        growth_second_half_bytes: second_half.map(|(g, _)| g),
        flat_bound_bytes: FLAT_BOUND_BYTES,
        flat: second_half.map(|(_, ok)| ok && errors == 0),
        open_fds_before: fds_before,
        points,
        errors,
        first_error,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(rss: &[u64]) -> Vec<MemoryPoint> {
        rss.iter()
            .enumerate()
            .map(|(i, &r)| MemoryPoint {
                ops: 25_000 * (i as u64 + 1),
                rss_bytes: r,
                open_fds: None,
            })
            .collect()
    }

    #[test]
    fn flat_is_judged_on_the_second_half() {
        const MIB: u64 = 1024 * 1024;
        // Early growth (arenas, pools) does not count; the last two quarters do.
        let settled = points(&[30 * MIB, 34 * MIB, 34 * MIB, 34 * MIB + 4096]);
        assert_eq!(second_half_growth(&settled), Some((4096, true)));
        let leaking = points(&[30 * MIB, 31 * MIB, 32 * MIB, 33 * MIB]);
        assert_eq!(second_half_growth(&leaking), Some((2 * MIB as i64, false)));
        let shrinking = points(&[30 * MIB, 31 * MIB, 30 * MIB, 29 * MIB]);
        assert_eq!(
            second_half_growth(&shrinking),
            Some((-2 * MIB as i64, true))
        );
        assert_eq!(second_half_growth(&points(&[1, 2])), None);
    }
}
