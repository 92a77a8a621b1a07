//! `keyfrag doctor`: checks a module configuration against its cells and prints one line per
//! check — `ok`, `FAIL` with a fix, or `skip` with the reason — so an operator (or a support
//! ticket) sees at once what is wrong and what to do.
//!
//! Checks: the config is found and parses; per token, every cell is reached over TLS verified
//! against the CA pinned for it; the cells' software, wire and storage versions agree (and the
//! wire version is this build's); the cells hold the same token metadata (hash); with the
//! user PIN, each cell's partial is timed and a test signature is made and verified.
//!
//! The test key: a fresh RSA-2048 key made here, split, stored as a *session* key (a lease of
//! `TEST_KEY_LEASE_SECS`) and deleted at the end — so even a doctor killed half-way leaves
//! nothing behind once the lease runs out, and no existing key is ever used or touched.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyfrag_client::{ClientError, Cluster, Config, ErrorKind, TokenConfig, UserKind};
use keyfrag_core::hash::HashAlg;
use keyfrag_core::padding::pkcs1v15;
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::split_exponent;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use zeroize::Zeroizing;

/// Lease of the test key on the cells: long enough for the checks, short enough that a
/// doctor that died before deleting it leaves nothing for long.
pub const TEST_KEY_LEASE_SECS: u64 = 120;
const TEST_KEY_BITS: usize = 2048;

#[derive(Clone, Debug, Default)]
pub struct DoctorOptions {
    /// The module config; None: found as the module finds it ($KEYFRAG_CONF, then the
    /// user's and the system's default paths).
    pub config: Option<PathBuf>,
    /// A file holding the user PIN: enables the partial timing and the signature test.
    pub pin_file: Option<PathBuf>,
    /// Only this token (label); default every token of the config.
    pub token: Option<String>,
}

/// The printed report, line by line.
struct Report<'a, W: Write> {
    out: &'a mut W,
    failures: usize,
}

impl<W: Write> Report<'_, W> {
    fn ok(&mut self, check: &str, detail: impl std::fmt::Display) {
        let _ = writeln!(self.out, "ok   {check}: {detail}");
    }
    fn fail(&mut self, check: &str, why: impl std::fmt::Display, fix: impl std::fmt::Display) {
        self.failures += 1;
        let _ = writeln!(self.out, "FAIL {check}: {why}; fix: {fix}");
    }
    fn skip(&mut self, check: &str, why: impl std::fmt::Display) {
        let _ = writeln!(self.out, "skip {check}: {why}");
    }
}

/// Run every check, print the report; Ok(true) when nothing failed. Err only when the
/// report itself cannot be written.
pub fn run(options: &DoctorOptions, out: &mut impl Write) -> Result<bool, String> {
    let mut report = Report { out, failures: 0 };
    let loaded = match &options.config {
        Some(path) => Config::load(path).map(|c| (c, path.clone())),
        None => Config::discover(None),
    };
    let (config, path) = match loaded {
        Ok(found) => found,
        Err(e) => {
            report.fail(
                "config",
                &e.message,
                "correct the file (the message names it and the line), or point \
                 KEYFRAG_CONF at the right one",
            );
            return finish(report);
        }
    };
    report.ok(
        "config",
        format!(
            "{} parses ({} token(s))",
            path.display(),
            config.tokens.len()
        ),
    );
    let pin = match &options.pin_file {
        Some(file) => match read_pin(file) {
            Ok(pin) => Some(pin),
            Err(e) => {
                report.fail("pin-file", e, "give a readable file holding the user PIN");
                None
            }
        },
        None => None,
    };
    let mut matched = false;
    for token in &config.tokens {
        if options.token.as_ref().is_some_and(|l| *l != token.label) {
            continue;
        }
        matched = true;
        check_token(&mut report, token, pin.as_ref().map(|p| p.as_str()));
    }
    if !matched {
        report.fail(
            "token",
            format!(
                "no token labelled {:?} in {}",
                options.token.as_deref().unwrap_or(""),
                path.display()
            ),
            "use a label the config lists (keyfrag doctor without --token checks them all)",
        );
    }
    finish(report)
}

fn finish<W: Write>(report: Report<'_, W>) -> Result<bool, String> {
    let failures = report.failures;
    let line = if failures == 0 {
        "doctor: every check passed".to_string()
    } else {
        format!("doctor: {failures} check(s) failed")
    };
    writeln!(report.out, "{line}").map_err(|e| e.to_string())?;
    Ok(failures == 0)
}

fn read_pin(file: &Path) -> Result<Zeroizing<String>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?,
    );
    let pin = Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_string());
    if pin.is_empty() {
        return Err(format!("{}: empty", file.display()));
    }
    Ok(pin)
}

fn check_token<W: Write>(report: &mut Report<'_, W>, token: &TokenConfig, pin: Option<&str>) {
    let label = &token.label;
    let cluster = match Cluster::new(token) {
        Ok(c) => c,
        Err(e) => {
            report.fail(
                &format!("token {label}"),
                &e.message,
                "correct the token's config",
            );
            return;
        }
    };
    let infos = match cluster.cell_infos() {
        Ok(infos) => infos,
        Err(e) => {
            report.fail(
                &format!("token {label}: cell files"),
                &e.message,
                "make the CA and access-key files the config names readable",
            );
            return;
        }
    };
    let mut reachable = Vec::new();
    for (cell, info) in token.cells.iter().zip(&infos) {
        let check = format!("{label}/{} reachable", cell.name);
        match info {
            Ok(info) => {
                report.ok(
                    &check,
                    format!(
                        "{} answers as {:?}, TLS verified against {}",
                        cell.url,
                        info.cell,
                        cell.ca.display()
                    ),
                );
                reachable.push((cell.name.clone(), info.clone()));
            }
            Err(e) => {
                let (why, fix) = diagnose(e, cell);
                report.fail(&check, why, fix);
            }
        }
    }
    check_versions(report, label, &reachable);
    check_metadata(report, &cluster, token);
    if infos.iter().any(|i| i.is_err()) {
        report.skip(
            &format!("{label} partials"),
            "not every cell is reachable (fix that first)",
        );
        return;
    }
    match pin {
        Some(pin) => check_signature(report, &cluster, token, pin),
        None => report.skip(
            &format!("{label} partials"),
            "cells serve partials only to a logged-in user: give --pin-file to time them and \
             test a signature",
        ),
    }
}

/// Why a cell did not answer, and what to do, from the transport's message.
fn diagnose(e: &ClientError, cell: &keyfrag_client::CellConfig) -> (String, String) {
    let msg = e.message.to_ascii_lowercase();
    if msg.contains("certificate") || msg.contains("unknownissuer") || msg.contains("tls") {
        (
            format!(
                "the TLS certificate at {} is not signed by the CA pinned in {} ({})",
                cell.url,
                cell.ca.display(),
                e.message
            ),
            format!(
                "copy the CA of cell {} (its ca.pem) to {}, or correct the url if it points \
                 at another server",
                cell.name,
                cell.ca.display()
            ),
        )
    } else if e.kind == ErrorKind::Device
        && (msg.contains("unreachable") || msg.contains("connect"))
    {
        (
            format!("no answer from {} ({})", cell.url, e.message),
            format!(
                "start cell {} (keyfrag-server run --config …), or correct its url / open \
                 the firewall",
                cell.name
            ),
        )
    } else if msg.contains("access key") || msg.contains("unauthorized") {
        (
            e.message.clone(),
            format!(
                "put this token's access key for cell {} in {}",
                cell.name,
                cell.access_key_file.display()
            ),
        )
    } else {
        (
            e.message.clone(),
            format!("see cell {}'s log for this request", cell.name),
        )
    }
}

fn check_versions<W: Write>(
    report: &mut Report<'_, W>,
    label: &str,
    reachable: &[(String, keyfrag_proto::info::InfoResponse)],
) {
    let check = format!("{label} versions");
    let Some((_, first)) = reachable.first() else {
        report.skip(&check, "no cell reachable");
        return;
    };
    let same = reachable.iter().all(|(_, i)| {
        i.software == first.software
            && i.wire_version == first.wire_version
            && i.storage_version == first.storage_version
    });
    let list = || {
        reachable
            .iter()
            .map(|(n, i)| {
                format!(
                    "{n}: {} wire {} storage {}",
                    i.software, i.wire_version, i.storage_version
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !same {
        report.fail(
            &check,
            format!("the cells differ ({})", list()),
            "upgrade every cell to the same release (docs/OPERATIONS.md, upgrades)",
        );
    } else if first.wire_version != keyfrag_proto::WIRE_VERSION {
        report.fail(
            &check,
            format!(
                "the cells speak wire version {}, this client {}",
                first.wire_version,
                keyfrag_proto::WIRE_VERSION
            ),
            "install the keyfrag release matching the cells",
        );
    } else {
        report.ok(
            &check,
            format!(
                "{}, wire {}, storage {} on every reachable cell",
                first.software, first.wire_version, first.storage_version
            ),
        );
    }
}

fn check_metadata<W: Write>(report: &mut Report<'_, W>, cluster: &Cluster, token: &TokenConfig) {
    let check = format!("{} metadata", token.label);
    let statuses = match cluster.cell_token_statuses() {
        Ok(s) => s,
        Err(e) => {
            report.skip(&check, &e.message);
            return;
        }
    };
    let answered: Vec<_> = token
        .cells
        .iter()
        .zip(statuses)
        .filter_map(|(c, s)| s.ok().map(|s| (c.name.clone(), s)))
        .collect();
    let Some((_, first)) = answered.first() else {
        report.skip(&check, "no cell reachable");
        return;
    };
    let agree = answered.iter().all(|(_, s)| {
        s.metadata_hash == first.metadata_hash
            && s.initialized == first.initialized
            && s.label == first.label
    });
    if agree {
        report.ok(
            &check,
            format!(
                "hash {} on every reachable cell ({})",
                short(&first.metadata_hash),
                if first.initialized {
                    "initialised"
                } else {
                    "not initialised"
                }
            ),
        );
    } else {
        let list = answered
            .iter()
            .map(|(n, s)| format!("{n}: {}", short(&s.metadata_hash)))
            .collect::<Vec<_>>()
            .join(", ");
        report.fail(
            &check,
            format!("the cells hold different metadata ({list})"),
            "a metadata write is unfinished (open the token once through the module: it rolls \
             staged writes forward) or a cell was restored on its own (restore every cell from \
             one backup: keyfrag restore)",
        );
    }
}

fn short(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}

/// Log in, store a fresh test key, time each cell's partial, combine, verify with `rsa`,
/// delete the key.
fn check_signature<W: Write>(
    report: &mut Report<'_, W>,
    cluster: &Cluster,
    token: &TokenConfig,
    pin: &str,
) {
    let label = &token.label;
    let check = format!("{label} login");
    if let Err(e) = cluster.login(UserKind::User, pin) {
        let fix = match e.kind {
            ErrorKind::PinIncorrect | ErrorKind::PinLocked => {
                "give the user PIN (a locked PIN is reset by the security officer: C_InitPIN)"
            }
            ErrorKind::UserPinNotInitialized | ErrorKind::TokenNotInitialized => {
                "initialise the token and its user PIN first"
            }
            _ => "see the cells' logs",
        };
        report.fail(&check, &e.message, fix);
        return;
    }
    report.ok(&check, "the user PIN opens every cell");
    let result = sign_with_test_key(report, cluster, token);
    cluster.logout();
    match result {
        Ok(()) => report.ok(
            &format!("{label} signature"),
            "a test signature (PKCS#1 v1.5, SHA-256) combined from every cell verifies with the \
             rsa crate",
        ),
        Err((why, fix)) => report.fail(&format!("{label} signature"), why, fix),
    }
}

type Failure = (String, String);

fn sign_with_test_key<W: Write>(
    report: &mut Report<'_, W>,
    cluster: &Cluster,
    token: &TokenConfig,
) -> Result<(), Failure> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        (
            format!("{what}: {e}"),
            "report this as a bug with the output of keyfrag doctor".to_string(),
        )
    };
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, TEST_KEY_BITS)
        .map_err(|e| internal("test key generation", &e))?;
    let n = key.n().to_be_bytes_trimmed_vartime().into_vec();
    let e = key.e().to_be_bytes_trimmed_vartime().into_vec();
    let shares = {
        let d = Zeroizing::new(key.d().to_be_bytes_trimmed_vartime().into_vec());
        split_exponent(&d, TEST_KEY_BITS, cluster.cell_count())
            .map_err(|e| internal("splitting the test key", &e))?
    };
    drop(key);
    let uid = keyfrag_core::random::uid_hex().map_err(|e| internal("random", &e))?;
    cluster
        .put_rsa_key(&uid, &n, &e, shares, Some(TEST_KEY_LEASE_SECS))
        .map_err(|e| {
            (
                format!("storing the test key: {}", e.message),
                "see the cells' logs".to_string(),
            )
        })?;
    let outcome = time_and_sign(report, cluster, token, &uid, &n, &e);
    if let Err(e) = cluster.delete_key(&uid) {
        report.skip(
            &format!("{} test key", token.label),
            format!(
                "not deleted ({}); its lease ends within {TEST_KEY_LEASE_SECS} s",
                e.message
            ),
        );
    }
    outcome
}

fn time_and_sign<W: Write>(
    report: &mut Report<'_, W>,
    cluster: &Cluster,
    token: &TokenConfig,
    uid: &str,
    n: &[u8],
    e: &[u8],
) -> Result<(), Failure> {
    let public = RsaPublic::new(n, e).map_err(|e| (e.to_string(), "a bug".to_string()))?;
    let hash = HashAlg::Sha256.digest(b"keyfrag doctor test signature");
    let em = pkcs1v15::sign_pad(&HashAlg::Sha256.digest_info(&hash), public.size())
        .map_err(|e| (e.to_string(), "a bug".to_string()))?;
    let blinded = blind(&public, &em).map_err(|e| (e.to_string(), "a bug".to_string()))?;
    let timed = cluster
        .cell_partials_timed(uid, &blinded.input)
        .map_err(|e| (e.message, "see the cells' logs".to_string()))?;
    let mut outputs = Vec::with_capacity(timed.len());
    for (cell, (result, took)) in token.cells.iter().zip(timed) {
        let check = format!("{}/{} partial", token.label, cell.name);
        match result {
            Ok(p) => {
                report.ok(&check, format!("{}", Millis(took)));
                outputs.push(p.output);
            }
            Err(e) => report.fail(&check, &e.message, format!("see cell {}'s log", cell.name)),
        }
    }
    if outputs.len() != token.cells.len() {
        return Err((
            "not every cell gave its partial".into(),
            "fix the partial checks above".into(),
        ));
    }
    let sig = combine(&public, &blinded, &outputs).map_err(|e| {
        (
            format!("the combined signature does not verify ({e}): a cell computes wrong partials"),
            "compare the cells' versions and logs; restore the odd cell's store from the last \
             backup together with the others"
                .to_string(),
        )
    })?;
    let pk = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(n),
        rsa::BoxedUint::from_be_slice_vartime(e),
    )
    .map_err(|e| (e.to_string(), "a bug".to_string()))?;
    pk.verify(
        rsa::Pkcs1v15Sign::new::<rsa::sha2::Sha256>(),
        &hash,
        sig.expose(),
    )
    .map_err(|e| {
        (
            format!("rsa rejects the signature: {e}"),
            "report this as a bug".to_string(),
        )
    })
}

struct Millis(Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} ms", self.0.as_secs_f64() * 1000.0)
    }
}
