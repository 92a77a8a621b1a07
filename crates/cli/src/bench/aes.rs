//! `keyfrag bench --aes`: AES-256-GCM encryption (C_EncryptInit + C_Encrypt with a fresh IV,
//! one session) on 64-byte and 4 KiB messages, keyfrag next to a second module (SoftHSM) in
//! the same process and run. keyfrag is measured three ways: with the data key cache off
//! (every C_EncryptInit derives the data key from the cells' PRF: a miss), with it on (hits
//! after the first derivation), and with the per-message mechanism (one PRF evaluation per
//! message, never cached).
//!
//! The cache is a token option, so with `--dev-cluster` the configuration gets a second
//! `[[token]]` on the same cells, labelled `<label>-cached`, with `data_key_cache_secs` set;
//! without it, point `KEYFRAG_CONF` at a configuration with such a token yourself (the
//! cached rows are skipped when there is none).

use std::path::Path;
use std::time::{Duration, Instant};

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

use super::module::{Module, short};
use super::{BenchOptions, STOP, stats};

/// Message sizes measured (issue 9: 64 B and 4 KiB).
pub const SIZES: [usize; 2] = [64, 4096];
/// The label suffix of the cached twin token.
pub const CACHED_SUFFIX: &str = "-cached";
/// CKM_KEYFRAG_AES_GCM_MSG (include/keyfrag.h).
const CKM_KEYFRAG_AES_GCM_MSG: u64 = 0x8000_0000 | 0x4B46_0001;

/// Add the cached twin of the configuration's first token (same cells, same access keys).
pub fn add_cached_token(config: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let tokens = doc
        .get_mut("token")
        .and_then(|t| t.as_array_mut())
        .ok_or("the configuration has no [[token]]")?;
    let mut twin = tokens
        .first()
        .cloned()
        .ok_or("the configuration has no [[token]]")?;
    let t = twin.as_table_mut().ok_or("bad [[token]]")?;
    let label = t
        .get("label")
        .and_then(|l| l.as_str())
        .unwrap_or("keyfrag-dev");
    t.insert("label".into(), format!("{label}{CACHED_SUFFIX}").into());
    t.insert("data_key_cache_secs".into(), 3600.into());
    tokens.push(twin);
    let out = toml::to_string(&doc).map_err(|e| e.to_string())?;
    std::fs::write(config, out).map_err(|e| format!("{}: {e}", config.display()))
}

/// One row of the table.
struct Row {
    module: String,
    how: &'static str,
    size: usize,
    ops_per_sec: f64,
    latency: Option<stats::Latency>,
}

/// A logged-in session on the slot configured as `label` (keyfrag's slot description is the
/// configured label; the token label is the cells', the same for both twins).
fn session_on(m: &Module, label: &str, pin: &str) -> Result<Option<Session>, String> {
    for slot in m.ctx.get_slots_with_token().map_err(|e| short(&e))? {
        let si = m.ctx.get_slot_info(slot).map_err(|e| short(&e))?;
        if si.slot_description().trim_end() == format!("keyfrag {label}") {
            let s = m.ctx.open_rw_session(slot).map_err(|e| short(&e))?;
            s.login(UserType::User, Some(&AuthPin::new(pin.into())))
                .map_err(|e| short(&e))?;
            return Ok(Some(s));
        }
    }
    Ok(None)
}

fn aes_key(s: &Session) -> Result<ObjectHandle, String> {
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Token(false),
            Attribute::ValueLen(32.into()),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ],
    )
    .map_err(|e| format!("AES-256 key generation: {}", short(&e)))
}

/// Encrypt `size`-byte messages for `seconds` (after `warmup`), one at a time.
fn measure(
    s: &Session,
    key: ObjectHandle,
    per_message: bool,
    size: usize,
    seconds: f64,
    warmup: f64,
) -> Result<(f64, Option<stats::Latency>), String> {
    let msg = vec![0x5au8; size];
    let aad = [0u8; 0];
    let mut counter: u64 = 0;
    let mut one = || -> Result<(), String> {
        counter += 1;
        let mut iv = [0u8; 12];
        iv[4..].copy_from_slice(&counter.to_be_bytes());
        let out = if per_message {
            let ty = MechanismType::new_vendor_defined(CKM_KEYFRAG_AES_GCM_MSG as _)
                .map_err(|e| e.to_string())?;
            let m = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None));
            s.encrypt(&m, key, &msg)
        } else {
            let p = GcmParams::new(&mut iv, &aad, 128.into()).map_err(|e| e.to_string())?;
            s.encrypt(&Mechanism::AesGcm(p), key, &msg)
        };
        out.map(|_| ()).map_err(|e| short(&e))
    };
    let warm_until = Instant::now() + Duration::from_secs_f64(warmup);
    while Instant::now() < warm_until && !STOP.load(std::sync::atomic::Ordering::Relaxed) {
        one()?;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    while Instant::now() < end && !STOP.load(std::sync::atomic::Ordering::Relaxed) {
        let t = Instant::now();
        one()?;
        samples.push(t.elapsed().as_nanos() as u64);
    }
    let rate = samples.len() as f64 / start.elapsed().as_secs_f64();
    Ok((rate, stats::summarize(&mut samples)))
}

/// The AES run against opened modules.
pub fn run(opts: &BenchOptions) -> Result<(), String> {
    let label = opts
        .module
        .token_label
        .clone()
        .unwrap_or_else(|| "keyfrag-dev".into());
    let ours = Module::open(&opts.module.path, &opts.module.pin, Some(&label))?;
    let theirs = match &opts.compare {
        Some(c) => Some(Module::open(&c.path, &c.pin, c.token_label.as_deref())?),
        None => None,
    };
    let cached = session_on(&ours, &format!("{label}{CACHED_SUFFIX}"), &opts.module.pin)?;
    if cached.is_none() {
        eprintln!("bench: no token {label}{CACHED_SUFFIX}: cache-hit rows skipped");
    }
    let mut cases: Vec<(String, &'static str, &Session, bool)> =
        vec![(ours.info.name.clone(), "cache miss", &ours.admin, false)];
    if let Some(s) = &cached {
        cases.push((ours.info.name.clone(), "cache hit", s, false));
    }
    cases.push((ours.info.name.clone(), "per-message key", &ours.admin, true));
    if let Some(t) = &theirs {
        cases.push((t.info.name.clone(), "", &t.admin, false));
    }
    let mut rows = Vec::new();
    for (module, how, session, per_message) in cases {
        let key = aes_key(session)?;
        for size in SIZES {
            let (rate, latency) =
                measure(session, key, per_message, size, opts.seconds, opts.warmup)?;
            eprintln!("bench: {module} {how} AES-256-GCM {size} B: {rate:.1} op/s");
            rows.push(Row {
                module: module.clone(),
                how,
                size,
                ops_per_sec: rate,
                latency,
            });
        }
        let _ = session.destroy_object(key);
    }
    print!("{}", table(&rows));
    drop(cached);
    ours.close();
    if let Some(t) = theirs {
        t.close();
    }
    Ok(())
}

/// The results, with each keyfrag row's ratio to the comparison module at the same size.
fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "AES-256-GCM encrypt (C_EncryptInit + C_Encrypt), 1 session\n\
         module      mode              size      op/s       p50       p99   vs other\n",
    );
    let other = rows
        .iter()
        .rev()
        .find(|r| r.how.is_empty())
        .map(|r| r.module.clone());
    for r in rows {
        let base = rows
            .iter()
            .find(|b| Some(&b.module) == other.as_ref() && b.size == r.size)
            .map(|b| b.ops_per_sec);
        let ratio = match stats::ratio(Some(r.ops_per_sec), base) {
            Some(x) if !r.how.is_empty() => format!("{x:.2}×"),
            _ => String::new(),
        };
        let (p50, p99) = r
            .latency
            .as_ref()
            .map(|l| (format!("{:.1}µs", l.p50_us), format!("{:.1}µs", l.p99_us)))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<11} {:<17} {:>4} B {:>9.1} {:>9} {:>9} {:>10}\n",
            r.module, r.how, r.size, r.ops_per_sec, p50, p99, ratio
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_twin_token_is_added() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.toml");
        std::fs::write(
            &p,
            "[[token]]\nlabel = \"keyfrag-dev\"\ndata_key_cache_secs = 0\n\n[[token.cell]]\nname = \"a\"\n",
        )
        .unwrap();
        add_cached_token(&p).unwrap();
        let doc: toml::Table = std::fs::read_to_string(&p).unwrap().parse().unwrap();
        let t = doc["token"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1]["label"].as_str(), Some("keyfrag-dev-cached"));
        assert_eq!(t[1]["data_key_cache_secs"].as_integer(), Some(3600));
        assert_eq!(t[1]["cell"].as_array().unwrap().len(), 1);
        assert_eq!(t[0]["data_key_cache_secs"].as_integer(), Some(0));
    }

    #[test]
    fn table_shows_ratios_to_the_other_module() {
        let row = |module: &str, how, ops| Row {
            module: module.into(),
            how,
            size: 64,
            ops_per_sec: ops,
            latency: None,
        };
        let t = table(&[
            row("keyfrag", "cache hit", 50.0),
            row("softhsm2", "", 100.0),
        ]);
        assert!(t.contains("0.50×"), "{t}");
    }
}
