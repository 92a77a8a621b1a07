//! `keyfrag customer-fragment new|backup|restore|change-pin|show|pin`: the customer's file.
//!
//! The file holds the customer's 32-byte seed sealed under the user PIN and under a recovery
//! secret printed once by `new` (DESIGN "Customer fragment"). Only `pin` talks to the cells:
//! it pins the customer's relay card (derived from the seed) on a token of every cell, which
//! makes the customer a party of every generation on that token.

use std::path::Path;

use keyfrag_client::admin::{AdminFile, customer_card, pin_customer_card};
use keyfrag_client::customer_file;
use keyfrag_core::customer::{CustomerSeed, KdfParams, RecoverySecret, SealedFragment};

use crate::secret_input::SecretInput;

/// `new`: a fresh seed sealed under a PIN and a new recovery secret; returns what to show
/// (the recovery secret among it, once).
pub fn new(file: &Path, input: &mut SecretInput, params: KdfParams) -> Result<String, String> {
    if std::fs::symlink_metadata(file).is_ok() {
        return Err(format!(
            "{} already exists: refusing to overwrite a customer fragment",
            file.display()
        ));
    }
    let pin = input.read_new("user PIN", "user PIN")?;
    let seed = CustomerSeed::generate().map_err(|e| e.to_string())?;
    let recovery = RecoverySecret::generate().map_err(|e| e.to_string())?;
    let sealed = SealedFragment::seal(&seed, pin.as_bytes(), &recovery, params)
        .map_err(|e| e.to_string())?;
    customer_file::create(file, &sealed).map_err(|e| e.to_string())?;
    Ok(format!(
        "customer fragment written to {file}\n\
         fingerprint: {fp}\n\n\
         recovery secret (shown once; write it down and keep it apart from the file):\n\n    {rec}\n\n\
         name it in keyfrag.toml under the token:\n    customer_fragment = \"{file}\"\n",
        file = file.display(),
        fp = hex::encode(sealed.fingerprint()),
        rec = recovery.to_display().as_str(),
    ))
}

/// `backup`: checks the recovery secret against the file, then writes the recovery seal alone
/// to `out` (a backup never opens with the PIN, only with the recovery secret).
pub fn backup(file: &Path, out: &Path, input: &mut SecretInput) -> Result<String, String> {
    let sealed = customer_file::load(file).map_err(|e| e.to_string())?;
    let recovery = read_recovery(input)?;
    sealed
        .open_with_recovery(&recovery)
        .map_err(|e| e.to_string())?;
    customer_file::create(out, &sealed.backup()).map_err(|e| e.to_string())?;
    Ok(format!(
        "backup of {} (fingerprint {}) written to {}; it opens only with the recovery secret\n",
        file.display(),
        hex::encode(sealed.fingerprint()),
        out.display()
    ))
}

/// `restore`: from a backup (or any fragment file) and the recovery secret, writes `file`
/// sealed under a new PIN. Replaces an existing `file` only if it holds the same seed (a PIN
/// reset by the security officer) — never another customer's fragment.
pub fn restore(
    from: &Path,
    file: &Path,
    input: &mut SecretInput,
    params: KdfParams,
) -> Result<String, String> {
    let source = customer_file::load(from).map_err(|e| e.to_string())?;
    if let Ok(existing) = customer_file::load(file)
        && existing.fingerprint() != source.fingerprint()
    {
        return Err(format!(
            "{} holds another customer fragment (fingerprint {}): refusing to replace it",
            file.display(),
            hex::encode(existing.fingerprint())
        ));
    }
    let recovery = read_recovery(input)?;
    let seed = source
        .open_with_recovery(&recovery)
        .map_err(|e| e.to_string())?;
    let pin = input.read_new("new user PIN", "user PIN")?;
    let restored = source
        .with_pin(&seed, pin.as_bytes(), params)
        .map_err(|e| e.to_string())?;
    customer_file::store(file, &restored).map_err(|e| e.to_string())?;
    Ok(format!(
        "customer fragment restored to {} (fingerprint {})\n",
        file.display(),
        hex::encode(restored.fingerprint())
    ))
}

/// `change-pin`: re-seals under a new PIN (the recovery seal stays). The token's user PIN on
/// the cells is changed separately (C_SetPIN through the module changes both at once).
pub fn change_pin(
    file: &Path,
    input: &mut SecretInput,
    params: KdfParams,
) -> Result<String, String> {
    let sealed = customer_file::load(file).map_err(|e| e.to_string())?;
    let old = input.read("current user PIN", "user PIN")?;
    let seed = sealed
        .open_with_pin(old.as_bytes())
        .map_err(|e| e.to_string())?;
    let new = input.read_new("new user PIN", "user PIN")?;
    let changed = sealed
        .with_pin(&seed, new.as_bytes(), params)
        .map_err(|e| e.to_string())?;
    customer_file::store(file, &changed).map_err(|e| e.to_string())?;
    Ok(format!("PIN of {} changed\n", file.display()))
}

/// `show`: public facts only.
pub fn show(file: &Path) -> Result<String, String> {
    let sealed = customer_file::load(file).map_err(|e| e.to_string())?;
    Ok(format!(
        "file: {}\nfingerprint: {}\nidentity key: {}\nPIN seal: {}\n",
        file.display(),
        hex::encode(sealed.fingerprint()),
        hex::encode(sealed.identity_public()),
        if sealed.has_pin_seal() {
            "yes"
        } else {
            "no (a backup: restore it with the recovery secret)"
        }
    ))
}

/// `pin`: opens the file with the PIN (the card's sealing key derives from the seed), then
/// pins its card on token `token` of every cell in `admin` (admin.toml). Idempotent; the
/// outcome is per cell, and any failure makes the whole command fail, naming the cells to
/// run it again for.
pub fn pin(
    file: &Path,
    token: &str,
    admin: &Path,
    input: &mut SecretInput,
) -> Result<String, String> {
    let sealed = customer_file::load(file).map_err(|e| e.to_string())?;
    let user_pin = input.read("user PIN", "user PIN")?;
    let seed = sealed
        .open_with_pin(user_pin.as_bytes())
        .map_err(|e| e.to_string())?;
    pin_seed(&seed, token, admin).map(|report| {
        format!(
            "{report}customer fragment {} (fingerprint {})\n",
            file.display(),
            hex::encode(seed.fingerprint())
        )
    })
}

/// Pin `seed`'s card on every cell of `admin`; the report names the card's fingerprint.
pub fn pin_seed(seed: &CustomerSeed, token: &str, admin: &Path) -> Result<String, String> {
    let card = customer_card(seed).map_err(|e| e.message)?;
    let clients = AdminFile::load(admin)
        .and_then(|f| f.clients())
        .map_err(|e| e.message)?;
    let results = pin_customer_card(&clients, token, &card);
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(cell, r)| r.as_ref().err().map(|e| format!("{cell}: {}", e.message)))
        .collect();
    let cells: Vec<&str> = results.iter().map(|(cell, _)| cell.as_str()).collect();
    if !failed.is_empty() {
        let pinned: Vec<&str> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(cell, _)| cell.as_str())
            .collect();
        let others = if pinned.is_empty() {
            "no cell has it".to_owned()
        } else {
            format!("{} have it", pinned.join(", "))
        };
        return Err(format!(
            "customer card {} not pinned everywhere on token {token:?}: {}; {others}; run the \
             command again once these are fixed",
            card.fingerprint,
            failed.join("; ")
        ));
    }
    Ok(format!(
        "customer card {} pinned on token {token:?} of {}\n",
        card.fingerprint,
        cells.join(", ")
    ))
}

fn read_recovery(input: &mut SecretInput) -> Result<RecoverySecret, String> {
    let text = input.read("recovery secret", "recovery secret")?;
    RecoverySecret::parse(&text).map_err(|e| e.to_string())
}
