//! `keyfrag keys list`: one line per key, from the cells' key list and the token metadata, and
//! the size of the key pool (`crate::pool`) per key size.

use std::collections::HashMap;
use std::path::Path;

use keyfrag_client::{Cluster, Config, KeySummary, ObjectRecord};

/// PKCS#11 attribute numbers this listing reads from object metadata.
const CKA_CLASS: u64 = 0x0000;
const CKA_LABEL: u64 = 0x0003;
const CKA_KEY_TYPE: u64 = 0x0100;
const CKA_ID: u64 = 0x0102;
const CKA_VALUE_LEN: u64 = 0x0161;
const CKO_PRIVATE_KEY: u64 = 3;
const CKO_SECRET_KEY: u64 = 4;
const CKK_GENERIC_SECRET: u64 = 0x10;
const CKK_AES: u64 = 0x1f;

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
        if let (Some(uid), Some(CKO_PRIVATE_KEY | CKO_SECRET_KEY)) = (&o.key_uid, class) {
            by_uid.insert(uid.clone(), o);
        }
    }
    let mut out = String::from(
        "UID                              LABEL                CKA_ID           TYPE  BITS  EPOCH\n",
    );
    let mut unfinished = false;
    let mut pooled = Vec::new();
    for (i, k) in by_cell[0].iter().enumerate() {
        let cells: Vec<KeySummary> = by_cell.iter().map(|c| c[i].clone()).collect();
        // A key pooled on every cell is no application's key yet: counted below, not
        // listed. One pooled on some cells only (a claim stopped half-way) is listed.
        if cells.iter().all(|c| c.pooled) {
            pooled.push(keyfrag_proto::keys::PoolEntry {
                uid: k.uid.clone(),
                bits: k.bits,
                modulus: Vec::new(),
                public_exponent: Vec::new(),
            });
            continue;
        }
        let half_claimed = cells.iter().any(|c| c.pooled);
        let epoch = epoch_text(&cells);
        unfinished |= epoch.ends_with('*');
        let obj = by_uid.get(&k.uid);
        let label = obj
            .and_then(|o| o.attr(CKA_LABEL))
            .map(|l| String::from_utf8_lossy(l).to_string())
            .unwrap_or_else(|| {
                if half_claimed {
                    "(half-claimed pool key)".into()
                } else {
                    "(session key)".into()
                }
            });
        let id = obj
            .and_then(|o| o.attr(CKA_ID))
            .map(hex::encode)
            .unwrap_or_else(|| "-".into());
        let (kind, bits) = kind_and_bits(k, obj.copied());
        out.push_str(&format!(
            "{:<32} {:<20} {:<16} {:<5} {:<5} {}\n",
            k.uid, label, id, kind, bits, epoch
        ));
    }
    out.push_str(&format!("pool: {}\n", pool_sizes(&pooled)));
    if unfinished {
        out.push_str(
            "* a refresh is unfinished (epochs per cell); `keyfrag refresh --key UID` finishes it\n",
        );
    }
    Ok(out)
}

/// Keys in the pool per size, e.g. "2 x RSA-1024, 1 x RSA-2048" ("empty" without any).
pub fn pool_sizes(entries: &[keyfrag_proto::keys::PoolEntry]) -> String {
    let mut by_bits: std::collections::BTreeMap<u32, usize> = Default::default();
    for e in entries {
        *by_bits.entry(e.bits).or_default() += 1;
    }
    if by_bits.is_empty() {
        return "empty".into();
    }
    by_bits
        .iter()
        .map(|(bits, n)| format!("{n} x RSA-{bits}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The TYPE and BITS columns. A PRF key (kind "prf") is AES or HMAC by its object's
/// CKA_KEY_TYPE and as long as its CKA_VALUE_LEN; without an object (a session key) "PRF"
/// and "-". RSA keys: the cells' kind and modulus size.
fn kind_and_bits(k: &KeySummary, obj: Option<&ObjectRecord>) -> (String, String) {
    if k.kind != "prf" {
        return (k.kind.to_uppercase(), k.bits.to_string());
    }
    let kind = match obj.and_then(|o| o.attr(CKA_KEY_TYPE)).map(le_u64) {
        Some(CKK_AES) => "AES",
        Some(CKK_GENERIC_SECRET) => "HMAC",
        _ => "PRF",
    };
    let bits = obj
        .and_then(|o| o.attr(CKA_VALUE_LEN))
        .map(|v| (le_u64(v) * 8).to_string())
        .unwrap_or_else(|| "-".into());
    (kind.into(), bits)
}

/// Attribute values are stored as the module wrote them: CK_ULONG in native (little) endian.
fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyfrag_client::Attr;

    fn summary(kind: &str, bits: u32) -> KeySummary {
        KeySummary {
            uid: "00".repeat(16),
            kind: kind.into(),
            bits,
            epoch: 1,
            lease_remaining_secs: None,
            epoch_session: None,
            previous_epoch: None,
            pending: None,
            pooled: false,
        }
    }

    fn object(key_type: u64, value_len: u64) -> ObjectRecord {
        let attr = |kind, v: u64| Attr {
            kind,
            value: v.to_le_bytes().to_vec(),
        };
        ObjectRecord {
            id: "11".repeat(16),
            key_uid: Some("00".repeat(16)),
            attrs: vec![
                attr(CKA_CLASS, CKO_SECRET_KEY),
                attr(CKA_KEY_TYPE, key_type),
                attr(CKA_VALUE_LEN, value_len),
            ],
        }
    }

    #[test]
    fn prf_keys_show_their_object_type_and_length() {
        let prf = summary("prf", 0);
        let aes = object(CKK_AES, 32);
        assert_eq!(
            kind_and_bits(&prf, Some(&aes)),
            ("AES".into(), "256".into())
        );
        let hmac = object(CKK_GENERIC_SECRET, 64);
        assert_eq!(
            kind_and_bits(&prf, Some(&hmac)),
            ("HMAC".into(), "512".into())
        );
        assert_eq!(kind_and_bits(&prf, None), ("PRF".into(), "-".into()));
        assert_eq!(
            kind_and_bits(&summary("rsa", 2048), None),
            ("RSA".into(), "2048".into())
        );
    }
}
