//! `keyfrag cluster create --card A --card B ... --out DIR`: the operator accepts every cell's
//! card (comparing its fingerprint with what the cell's console printed) and gets, in DIR:
//!
//! - `cluster.toml`: the peers every cell accepts (install it as each cell's `cluster.toml`);
//! - `ca/<cell>.crt`: each cell's TLS CA, the pin for the module and the admin client;
//! - `admin.toml`: the cells and their operator keys, for `keyfrag token` and `access-key`;
//! - `operator/<cell>.key` (0600): copied from `operator.key` next to each card, when there;
//! - `keyfrag.toml.example`: the module's token config for these cells, to fill in.
//!
//! Nothing is written unless every card loads, every fingerprint is confirmed and the names
//! and URLs are distinct. Rerunning with the same cards changes nothing; a different set of
//! cards for an existing DIR is refused.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use keyfrag_client::admin::{ADMIN_FILE, AdminCell, AdminFile};
use keyfrag_server::card::{CellCard, same_hex};
use keyfrag_server::init::OPERATOR_KEY_FILE;
use keyfrag_server::relay_identity::ClusterFile;

pub const CLUSTER_FILE: &str = "cluster.toml";

/// How the operator confirms the cards' fingerprints.
pub enum Confirm<'a> {
    /// One fingerprint per card, in card order (scripts).
    Given(&'a [String]),
    /// Shown one by one; the operator answers each on `input`, prompts go to `prompts`.
    Ask {
        input: &'a mut dyn BufRead,
        prompts: &'a mut dyn Write,
    },
}

pub struct Created {
    pub out: PathBuf,
    pub cells: Vec<String>,
    /// False when DIR already held this very cluster.
    pub changed: bool,
    /// Cards without an `operator.key` beside them: the operator must place those keys.
    pub missing_operator_keys: Vec<PathBuf>,
}

pub fn create(cards: &[PathBuf], confirm: Confirm<'_>, out: &Path) -> Result<Created, String> {
    if cards.len() < 2 {
        return Err("a cluster needs at least 2 cells (--card per cell)".into());
    }
    let loaded = cards
        .iter()
        .map(|p| CellCard::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    distinct(loaded.iter().map(|c| c.name.as_str()), "name")?;
    distinct(loaded.iter().map(|c| c.url.as_str()), "url")?;
    confirm_all(&loaded, cards, confirm)?;

    let party_cards = loaded
        .iter()
        .map(CellCard::party_card)
        .collect::<Result<Vec<_>, _>>()?;
    let cluster_toml = ClusterFile::from_cards(&party_cards).to_toml();
    let admin = AdminFile {
        cells: loaded
            .iter()
            .map(|c| AdminCell {
                name: c.name.clone(),
                url: c.url.clone(),
                ca: PathBuf::from("ca").join(format!("{}.crt", c.name)),
                operator_key_file: PathBuf::from("operator").join(format!("{}.key", c.name)),
                fingerprint: c.fingerprint.clone(),
            })
            .collect(),
    };
    let admin_toml = format!(
        "# The cells of this cluster and their operator keys (keyfrag cluster create).\n{}",
        toml::to_string(&admin).map_err(|e| e.to_string())?
    );

    // An existing cluster in DIR must be this one: then only missing pieces are added.
    let cluster_path = out.join(CLUSTER_FILE);
    let admin_path = out.join(ADMIN_FILE);
    for (path, want) in [(&cluster_path, &cluster_toml), (&admin_path, &admin_toml)] {
        if let Ok(have) = fs::read_to_string(path)
            && have != *want
        {
            return Err(format!(
                "{} holds another cluster; refusing to overwrite it (use another --out)",
                path.display()
            ));
        }
    }
    // Operator keys found beside the cards, checked before anything is written.
    let mut keys = Vec::new();
    let mut missing = Vec::new();
    for (card, path) in loaded.iter().zip(cards) {
        let beside = path
            .parent()
            .unwrap_or(Path::new("."))
            .join(OPERATOR_KEY_FILE);
        let dest = out.join("operator").join(format!("{}.key", card.name));
        match fs::read_to_string(&beside) {
            Ok(key) => {
                if let Ok(have) = fs::read_to_string(&dest)
                    && have.trim() != key.trim()
                {
                    return Err(format!(
                        "{} differs from {}; refusing to overwrite an operator key",
                        dest.display(),
                        beside.display()
                    ));
                }
                keys.push((dest, zeroize::Zeroizing::new(key)));
            }
            Err(_) if dest.exists() => {}
            Err(_) => missing.push(dest),
        }
    }

    let mut changed = false;
    for sub in ["", "ca", "operator"] {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(out.join(sub))
            .map_err(|e| format!("cannot create {}: {e}", out.join(sub).display()))?;
    }
    for card in &loaded {
        let ca = out.join("ca").join(format!("{}.crt", card.name));
        changed |= write_if_changed(&ca, &card.tls_ca, 0o644)?;
    }
    for (dest, key) in &keys {
        changed |= write_if_changed(dest, key, 0o600)?;
    }
    changed |= write_if_changed(
        &out.join("keyfrag.toml.example"),
        &example(out, &loaded),
        0o644,
    )?;
    changed |= write_if_changed(&cluster_path, &cluster_toml, 0o644)?;
    changed |= write_if_changed(&admin_path, &admin_toml, 0o644)?;
    Ok(Created {
        out: out.to_path_buf(),
        cells: loaded.iter().map(|c| c.name.clone()).collect(),
        changed,
        missing_operator_keys: missing,
    })
}

fn confirm_all(cards: &[CellCard], paths: &[PathBuf], confirm: Confirm<'_>) -> Result<(), String> {
    match confirm {
        Confirm::Given(prints) => {
            if prints.len() != cards.len() {
                return Err(format!(
                    "{} fingerprints given for {} cards (one per --card, in order)",
                    prints.len(),
                    cards.len()
                ));
            }
            for ((card, path), given) in cards.iter().zip(paths).zip(prints) {
                if !same_hex(given, &card.fingerprint) {
                    return Err(format!(
                        "card {} (cell {:?}): fingerprint {} does not match the one given ({}); \
                         nothing was written",
                        path.display(),
                        card.name,
                        card.fingerprint,
                        given.trim()
                    ));
                }
            }
            Ok(())
        }
        Confirm::Ask { input, prompts } => {
            for (card, path) in cards.iter().zip(paths) {
                let w = |e: std::io::Error| e.to_string();
                writeln!(prompts, "\n{}:\n{}", path.display(), card.display()).map_err(w)?;
                write!(
                    prompts,
                    "Does this fingerprint match what cell {:?} printed? Type yes to accept: ",
                    card.name
                )
                .map_err(w)?;
                prompts.flush().map_err(w)?;
                let mut line = String::new();
                input.read_line(&mut line).map_err(w)?;
                if line.trim() != "yes" {
                    return Err(format!(
                        "card of cell {:?} not accepted; nothing was written",
                        card.name
                    ));
                }
            }
            Ok(())
        }
    }
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>, what: &str) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for v in values {
        if !seen.insert(v) {
            return Err(format!("two cards have the same {what} {v:?}"));
        }
    }
    Ok(())
}

fn example(out: &Path, cards: &[CellCard]) -> String {
    let mut text = String::from(
        "# The module's config for a token on these cells: `keyfrag token create` makes the \
         token,\n# `keyfrag access-key issue` the access key files. Copy to keyfrag.toml.\n\
         [[token]]\nlabel = \"CHANGE-ME\"\n",
    );
    for c in cards {
        text.push_str(&format!(
            "\n[[token.cell]]\nname = {:?}\nurl = {:?}\nca = {:?}\naccess_key_file = {:?}\n",
            c.name,
            c.url,
            out.join("ca").join(format!("{}.crt", c.name)),
            out.join("access-keys")
                .join("CHANGE-ME")
                .join(format!("{}.key", c.name)),
        ));
    }
    text
}

/// Write `text` unless the file already holds it; true when written.
fn write_if_changed(path: &Path, text: &str, mode: u32) -> Result<bool, String> {
    if fs::read_to_string(path).is_ok_and(|have| have == text) {
        return Ok(false);
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(true)
}
