//! `keyfrag keys list`: one line per key, from the cells' key list and the token metadata.

use std::collections::HashMap;
use std::path::Path;

use keyfrag_client::{Cluster, Config, KeySummary};

/// PKCS#11 attribute numbers this listing reads from object metadata.
const CKA_CLASS: u64 = 0x0000;
const CKA_LABEL: u64 = 0x0003;
const CKA_KEY_TYPE: u64 = 0x0100;
const CKA_ID: u64 = 0x0102;
const CKO_PRIVATE_KEY: u64 = 3;

/// A client for the token labelled `token` (default: the first) of the configuration at
/// `config`, or else found as the module finds it ($KEYFRAG_CONF first). Uses the access
/// keys; no PIN.
pub fn token_cluster(config: Option<&Path>, token: Option<&str>) -> Result<Cluster, String> {
    let (config, path) = match config {
        Some(p) => (Config::load(p).map_err(|e| e.message)?, p.to_path_buf()),
        None => Config::discover(None).map_err(|e| e.message)?,
    };
    let token_cfg = match token {
        Some(label) => config
            .tokens
            .iter()
            .find(|t| t.label == label)
            .ok_or_else(|| format!("no token {label:?} in {}", path.display()))?,
        None => &config.tokens[0],
    };
    Cluster::new(token_cfg).map_err(|e| e.message)
}

/// The EPOCH column: the epoch when every cell agrees and no refresh is unfinished, else
/// each cell's committed epoch and a `*` (the next `keyfrag refresh` of the key finishes it).
fn epoch_text(cells: &[KeySummary]) -> String {
    let first = cells[0].epoch;
    let settled = cells
        .iter()
        .all(|k| k.epoch == first && k.pending.is_none() && k.previous_epoch.is_none());
    if settled {
        first.to_string()
    } else {
        let epochs: Vec<String> = cells.iter().map(|k| k.epoch.to_string()).collect();
        format!("{}*", epochs.join("/"))
    }
}

pub fn list(token: Option<&str>) -> Result<String, String> {
    let cluster = token_cluster(None, token)?;
    let by_cell = cluster.list_keys_by_cell().map_err(|e| e.message)?;
    let (_, objects) = cluster.load_objects().map_err(|e| e.message)?;
    let mut by_uid = HashMap::new();
    for o in &objects {
        let class = o.attr(CKA_CLASS).map(le_u64);
        if let (Some(uid), Some(CKO_PRIVATE_KEY)) = (&o.key_uid, class) {
            by_uid.insert(uid.clone(), o);
        }
    }
    let mut out = String::from(
        "UID                              LABEL                CKA_ID           TYPE  BITS  EPOCH\n",
    );
    let mut unfinished = false;
    for (i, k) in by_cell[0].iter().enumerate() {
        let cells: Vec<KeySummary> = by_cell.iter().map(|c| c[i].clone()).collect();
        let epoch = epoch_text(&cells);
        unfinished |= epoch.ends_with('*');
        let obj = by_uid.get(&k.uid);
        let label = obj
            .and_then(|o| o.attr(CKA_LABEL))
            .map(|l| String::from_utf8_lossy(l).to_string())
            .unwrap_or_else(|| "(session key)".into());
        let id = obj
            .and_then(|o| o.attr(CKA_ID))
            .map(hex::encode)
            .unwrap_or_else(|| "-".into());
        let kind = obj
            .and_then(|o| o.attr(CKA_KEY_TYPE))
            .map(|_| k.kind.to_uppercase())
            .unwrap_or_else(|| k.kind.to_uppercase());
        out.push_str(&format!(
            "{:<32} {:<20} {:<16} {:<5} {:<5} {}\n",
            k.uid, label, id, kind, k.bits, epoch
        ));
    }
    if unfinished {
        out.push_str(
            "* a refresh is unfinished (epochs per cell); `keyfrag refresh --key UID` finishes it\n",
        );
    }
    Ok(out)
}

/// Attribute values are stored as the module wrote them: CK_ULONG in native (little) endian.
fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}
