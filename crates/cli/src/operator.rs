//! The operator's token and access-key commands, over the cells' `/v1/admin` routes with the
//! operator keys of `admin.toml` (written by `keyfrag cluster create`):
//!
//! - `keyfrag token create --label L`: the token on every cell, or on none (a cell that fails
//!   makes the others undo their creation);
//! - `keyfrag access-key issue --token L [--name N]`: one fresh key per cell, written once to
//!   `access-keys/L/N/<cell>.key` (0600) beside admin.toml, its hash sent to the cell, and the
//!   token's entry in `keyfrag.toml` (beside admin.toml) pointed at them;
//! - `keyfrag access-key revoke` and `list`;
//! - `keyfrag cell rotate-master-key`: every share re-sealed under a new master key per cell.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use keyfrag_client::admin::{ADMIN_FILE, AdminClient, AdminFile};
use keyfrag_client::{CellConfig, Config, TokenConfig};
use keyfrag_proto::admin::{
    AccessKeyList, AccessKeyRequest, Changed, CreateTokenRequest, RevokeRequest, RotateResponse,
    TokenRequest,
};
use keyfrag_proto::token::Pin;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// `--cluster` names admin.toml or the directory holding it.
pub fn admin_path(cluster: &Path) -> PathBuf {
    if cluster.is_dir() {
        cluster.join(ADMIN_FILE)
    } else {
        cluster.to_path_buf()
    }
}

fn connect(admin: &Path) -> Result<(AdminFile, Vec<AdminClient>), String> {
    let file = AdminFile::load(admin).map_err(|e| e.message)?;
    let clients = file.clients().map_err(|e| e.message)?;
    Ok((file, clients))
}

pub fn token_create(admin: &Path, label: &str, so_pin: &str) -> Result<String, String> {
    let (_, clients) = connect(admin)?;
    let mut created = Vec::new();
    let mut failure = None;
    for c in &clients {
        let req = CreateTokenRequest {
            token: label.to_owned(),
            so_pin: Pin(so_pin.to_owned()),
        };
        match c.post_json::<_, Changed>("tokens", &req) {
            Ok(Changed { changed: true }) => created.push(c),
            Ok(_) => {}
            Err(e) => {
                failure = Some(e.message);
                break;
            }
        }
    }
    let Some(failure) = failure else {
        let names: Vec<&str> = clients.iter().map(AdminClient::name).collect();
        return Ok(if created.is_empty() {
            format!(
                "token {label:?} already exists on {} (unchanged)\n",
                names.join(", ")
            )
        } else {
            format!("token {label:?} created on {}\n", names.join(", "))
        });
    };
    Err(format!("{failure}; {}", undo_tokens(&created, label)))
}

/// Compensation: remove the token again where this run created it.
fn undo_tokens(created: &[&AdminClient], label: &str) -> String {
    if created.is_empty() {
        return "nothing was created".into();
    }
    let mut left = Vec::new();
    for c in created {
        let req = TokenRequest {
            token: label.to_owned(),
        };
        if c.post_json::<_, Changed>("tokens/remove", &req).is_err() {
            left.push(c.name());
        }
    }
    if left.is_empty() {
        let names: Vec<&str> = created.iter().map(|c| c.name()).collect();
        format!("the token was removed again from {}", names.join(", "))
    } else {
        format!(
            "the token could not be removed again from {} (rerun the same command once every \
             cell answers: it completes the creation)",
            left.join(", ")
        )
    }
}

pub fn access_key_issue(admin: &Path, token: &str, name: Option<&str>) -> Result<String, String> {
    let (file, clients) = connect(admin)?;
    let name = match name {
        Some(n) => n.to_owned(),
        None => format!("key-{}", hex::encode(random::<4>()?.as_ref())),
    };
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(format!("access key name {name:?} is not allowed"));
    }
    let base = admin.parent().unwrap_or(Path::new("."));
    let dir = base.join("access-keys").join(token).join(&name);
    // Reusing existing files makes a retried issue idempotent.
    let mut keys = Vec::new();
    for c in &clients {
        let path = dir.join(format!("{}.key", c.name()));
        let key = match fs::read_to_string(&path) {
            Ok(k) => Zeroizing::new(k.trim().to_owned()),
            Err(_) => Zeroizing::new(hex::encode(random::<32>()?.as_ref())),
        };
        keys.push((path, key));
    }
    let mut added = Vec::new();
    let mut failure = None;
    for (c, (_, key)) in clients.iter().zip(&keys) {
        let req = AccessKeyRequest {
            token: token.to_owned(),
            name: name.clone(),
            key_sha256: hex::encode(Sha256::digest(key.as_bytes())),
        };
        match c.post_json::<_, Changed>("access-keys", &req) {
            Ok(Changed { changed: true }) => added.push((c, req)),
            Ok(_) => {}
            Err(e) => {
                failure = Some(e.message);
                break;
            }
        }
    }
    if let Some(failure) = failure {
        let mut left = Vec::new();
        for (c, req) in &added {
            if c.post_json::<_, Changed>("access-keys/remove", req)
                .is_err()
            {
                left.push(c.name());
            }
        }
        let undo = if left.is_empty() {
            "no cell keeps the new key".to_string()
        } else {
            format!(
                "the key stays on {} until revoked (or rerun the same command)",
                left.join(", ")
            )
        };
        return Err(format!("{failure}; {undo}"));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (path, key) in &keys {
        if !path.exists() {
            write_secret(path, key)?;
        }
    }
    let config_path = base.join("keyfrag.toml");
    point_config_at(&config_path, &file, token, &keys)?;
    let mut out = format!(
        "access key {name:?} for token {token:?} issued on {} (the cells keep only its hash; \
         these files are the only copy):\n",
        clients
            .iter()
            .map(AdminClient::name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (path, _) in &keys {
        out.push_str(&format!("  {}\n", path.display()));
    }
    out.push_str(&format!(
        "module config: {} (token {token:?})\n",
        config_path.display()
    ));
    Ok(out)
}

/// Add or replace the token's entry in the module config beside admin.toml.
fn point_config_at(
    path: &Path,
    file: &AdminFile,
    token: &str,
    keys: &[(PathBuf, Zeroizing<String>)],
) -> Result<(), String> {
    let mut config = if path.exists() {
        Config::load(path).map_err(|e| e.message)?
    } else {
        Config { tokens: Vec::new() }
    };
    let cells = file
        .cells
        .iter()
        .zip(keys)
        .map(|(c, (key_path, _))| CellConfig {
            name: c.name.clone(),
            url: c.url.clone(),
            ca: c.ca.clone(),
            access_key_file: key_path.clone(),
        })
        .collect();
    match config.tokens.iter_mut().find(|t| t.label == token) {
        Some(t) => t.cells = cells,
        None => config.tokens.push(TokenConfig {
            label: token.to_owned(),
            allow_raw_rsa: false,
            allow_rsa_1024: false,
            timeout_ms: 2000,
            retries: 1,
            session_key_lease_secs: 600,
            customer_fragment: None,
            data_key_cache_secs: 0,
            cells,
        }),
    }
    let text = toml::to_string(&config).map_err(|e| format!("serialise config: {e}"))?;
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub fn access_key_revoke(admin: &Path, token: &str, name: &str) -> Result<String, String> {
    let (_, clients) = connect(admin)?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for c in &clients {
        let req = RevokeRequest {
            token: token.to_owned(),
            name: name.to_owned(),
        };
        match c.post_json::<_, Changed>("access-keys/revoke", &req) {
            Ok(_) => done.push(c.name()),
            Err(e) => failed.push(e.message),
        }
    }
    if failed.is_empty() {
        Ok(format!(
            "access key {name:?} of token {token:?} revoked on {}\n",
            done.join(", ")
        ))
    } else {
        Err(format!(
            "{}; revoked on [{}] — rerun once every cell answers",
            failed.join("; "),
            done.join(", ")
        ))
    }
}

/// Re-seal every share of each cell (or only `only`) under a new master key, one cell after
/// the other; a cell that fails stops the run (rerun: it resumes with the same new key).
pub fn rotate_master_keys(admin: &Path, only: Option<&str>) -> Result<String, String> {
    let (_, clients) = connect(admin)?;
    if let Some(name) = only
        && !clients.iter().any(|c| c.name() == name)
    {
        return Err(format!("no cell {name:?} in {}", admin.display()));
    }
    let mut out = String::new();
    for c in clients
        .iter()
        .filter(|c| only.is_none_or(|n| n == c.name()))
    {
        let done: RotateResponse = c
            .post_json("master-key/rotate", &())
            .map_err(|e| format!("{}; {out}rerun to resume", e.message))?;
        out.push_str(&format!(
            "{}: master key {} now seals every share ({} re-sealed)\n",
            c.name(),
            done.key_id,
            done.resealed
        ));
    }
    Ok(out)
}

/// One line per key name: created, last use (latest over the cells), and state.
pub fn access_key_list(admin: &Path, token: &str) -> Result<String, String> {
    let (_, clients) = connect(admin)?;
    #[derive(Default)]
    struct Row {
        created: u64,
        last_used: Option<u64>,
        revoked: usize,
        cells: usize,
    }
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let query = format!("access-keys?token={}", encode_query(token));
    for c in &clients {
        let list: AccessKeyList = c.get_json(&query).map_err(|e| e.message)?;
        for k in list.keys {
            let row = rows.entry(k.name).or_default();
            row.created = if row.cells == 0 {
                k.created_at
            } else {
                row.created.min(k.created_at)
            };
            row.last_used = row.last_used.max(k.last_used);
            row.revoked += usize::from(k.revoked_at.is_some());
            row.cells += 1;
        }
    }
    let mut out = format!(
        "{:<24} {:<20} {:<20} STATE\n",
        "NAME", "CREATED", "LAST USE"
    );
    for (name, r) in rows {
        let state = match (r.revoked, r.cells) {
            (0, n) if n == clients.len() => "active".to_string(),
            (0, n) => format!("active on {n} of {} cells", clients.len()),
            (v, n) if v == n && n == clients.len() => "revoked".to_string(),
            (v, _) => format!("revoked on {v} of {} cells", clients.len()),
        };
        out.push_str(&format!(
            "{:<24} {:<20} {:<20} {}\n",
            name,
            utc(r.created),
            r.last_used.map(utc).unwrap_or_else(|| "never".into()),
            state
        ));
    }
    Ok(out)
}

fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC (days to civil date: Howard Hinnant's algorithm).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, String> {
    let mut b = Zeroizing::new([0u8; N]);
    getrandom::fill(b.as_mut()).map_err(|e| format!("OS randomness: {e}"))?;
    Ok(b)
}

fn write_secret(path: &Path, text: &str) -> Result<(), String> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00");
        assert_eq!(super::utc(1_795_996_800 + 3661), "2026-11-30 01:01");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00");
    }
}
