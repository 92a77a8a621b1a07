//! The operator's side of the cells' `/v1/admin` routes: `admin.toml` (written by `keyfrag
//! cluster create`, one `[[cell]]` per cell) and one `AdminClient` per cell, with pooled HTTPS
//! pinned to the cell's own CA like the module's connections.
//!
//! ```toml
//! [[cell]]
//! name = "cell-a"
//! url = "https://cell-a.example:7443"
//! ca = "ca/cell-a.crt"                   # the cell's tls-ca.crt (from its card)
//! operator_key_file = "operator/cell-a.key"
//! fingerprint = "…"                     # the card fingerprint the operator accepted
//! ```
//! Relative paths are resolved against the directory of the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyfrag_core::customer::{CUSTOMER_PARTY_ID, CustomerSeed};
use keyfrag_proto::admin::CustomerCard;
use keyfrag_proto::{ErrorBody, ErrorCode, REQUEST_ID_HEADER};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{ClientError, ErrorKind, Result};
use crate::runtime::Runtime;

pub const ADMIN_FILE: &str = "admin.toml";
/// Admin calls can do real work on the cell (a backup, re-sealing every share).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    #[serde(rename = "cell", default)]
    pub cells: Vec<AdminCell>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminCell {
    pub name: String,
    pub url: String,
    pub ca: PathBuf,
    pub operator_key_file: PathBuf,
    pub fingerprint: String,
}

impl AdminFile {
    /// Read `admin.toml` (paths made absolute); errors name the file.
    pub fn load(path: &Path) -> Result<AdminFile> {
        let bad = |m: String| ClientError::new(ErrorKind::Config, m);
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        let mut file: AdminFile = toml::from_str(&text)
            .map_err(|e| bad(format!("{}: {}", path.display(), e.message())))?;
        if file.cells.is_empty() {
            return Err(bad(format!("{}: no [[cell]]", path.display())));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for c in &mut file.cells {
            for p in [&mut c.ca, &mut c.operator_key_file] {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        Ok(file)
    }

    /// One client per cell, in file order.
    pub fn clients(&self) -> Result<Vec<AdminClient>> {
        self.cells.iter().map(AdminClient::new).collect()
    }
}

/// The operator's connection to one cell. Blocking calls on a runtime of its own.
pub struct AdminClient {
    name: String,
    base: String,
    key: Zeroizing<String>,
    http: reqwest::Client,
    runtime: Runtime,
}

impl AdminClient {
    pub fn new(cell: &AdminCell) -> Result<AdminClient> {
        let key = std::fs::read_to_string(&cell.operator_key_file).map_err(|e| {
            ClientError::new(
                ErrorKind::Config,
                format!(
                    "cell {}: cannot read operator key file {}: {e}",
                    cell.name,
                    cell.operator_key_file.display()
                ),
            )
        })?;
        let key = Zeroizing::new(key.trim().to_string());
        let tls = crate::tls::client_config(&cell.ca)?;
        let runtime = Runtime::new(false)?;
        let http = runtime.block_on(async {
            reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .timeout(ADMIN_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .no_proxy()
                .build()
                .map_err(|e| {
                    ClientError::new(
                        ErrorKind::Config,
                        format!("cell {}: HTTP client setup: {e}", cell.name),
                    )
                })
        })?;
        Ok(AdminClient {
            name: cell.name.clone(),
            base: cell.url.trim_end_matches('/').to_string(),
            key,
            http,
            runtime,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `GET /v1/admin/{path}`.
    pub fn get_json<R: DeserializeOwned + Send>(&self, path: &str) -> Result<R> {
        self.send(reqwest::Method::GET, path, None::<&()>)
    }

    /// `POST /v1/admin/{path}` with a JSON body.
    pub fn post_json<B: Serialize + Sync, R: DeserializeOwned + Send>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R> {
        self.send(reqwest::Method::POST, path, Some(body))
    }

    /// `DELETE /v1/admin/{path}`.
    pub fn delete_json<R: DeserializeOwned + Send>(&self, path: &str) -> Result<R> {
        self.send(reqwest::Method::DELETE, path, None::<&()>)
    }

    fn send<B: Serialize + Sync, R: DeserializeOwned + Send>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R> {
        let request_id = keyfrag_core::random::uid_hex().unwrap_or_default();
        let url = format!("{}/v1/admin/{}", self.base, path.trim_start_matches('/'));
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.key.as_str())
            .header(REQUEST_ID_HEADER, &request_id);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.runtime.block_on(async {
            let unreachable = |e: reqwest::Error| {
                ClientError::new(
                    ErrorKind::Device,
                    format!("cell {} unreachable (admin/{path}): {e}", self.name),
                )
            };
            let resp = req.send().await.map_err(unreachable)?;
            crate::wire::check(&self.name, resp.headers())?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(unreachable)?;
            if status.is_success() {
                return serde_json::from_slice(&bytes).map_err(|e| {
                    ClientError::new(
                        ErrorKind::Device,
                        format!(
                            "cell {} sent a malformed answer to admin/{path}: {e}",
                            self.name
                        ),
                    )
                });
            }
            Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => ClientError::new(
                    match body.code {
                        ErrorCode::Unauthorized
                        | ErrorCode::Internal
                        | ErrorCode::VersionUnsupported => ErrorKind::Device,
                        _ => ErrorKind::Refused,
                    },
                    format!("cell {}: {} (admin/{path})", self.name, body.message),
                ),
                Err(_) => ClientError::new(
                    ErrorKind::Device,
                    format!("cell {} answered HTTP {status} to admin/{path}", self.name),
                ),
            })
        })
    }
}

/// The customer's relay card as the cells pin it: the seed's party keys under
/// CUSTOMER_PARTY_ID, and the card's fingerprint.
pub fn customer_card(seed: &CustomerSeed) -> Result<CustomerCard> {
    let card = seed
        .party_keys()
        .card(CUSTOMER_PARTY_ID)
        .map_err(|e| ClientError::new(ErrorKind::Refused, format!("customer card: {e}")))?;
    Ok(CustomerCard {
        card: hex::encode(card.to_bytes()),
        fingerprint: card.fingerprint(),
    })
}

/// Pin the customer's card on token `token` of every cell, so the cells accept the customer
/// as a party of the token's generations (and refuse generation without it from then on).
/// A pin cannot be taken back by the operator, so this is not all-or-nothing; it is
/// idempotent instead (the same card again changes nothing; another card is refused by the
/// cell), and the outcome is reported per cell, in `clients` order: run it again once a
/// failing cell is back.
pub fn pin_customer_card(
    clients: &[AdminClient],
    token: &str,
    card: &CustomerCard,
) -> Vec<(String, Result<()>)> {
    let path = format!("tokens/{}/customer-card", path_segment(token));
    clients
        .iter()
        .map(|c| {
            let pinned = c
                .post_json::<_, serde::de::IgnoredAny>(&path, card)
                .map(drop);
            (c.name().to_owned(), pinned)
        })
        .collect()
}

/// A token label as one URL path segment (labels are free text up to 32 bytes).
fn path_segment(label: &str) -> String {
    label
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_one_path_segment() {
        assert_eq!(path_segment("keyfrag-dev"), "keyfrag-dev");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn the_customer_card_is_the_seeds_party_card() {
        let seed = CustomerSeed::from_bytes([9; 32]);
        let card = customer_card(&seed).unwrap();
        let parsed =
            keyfrag_core::relay::PartyCard::from_bytes(&hex::decode(&card.card).unwrap()).unwrap();
        assert_eq!(parsed.id(), CUSTOMER_PARTY_ID);
        assert_eq!(
            parsed.identity_public(),
            seed.party_keys().identity_public()
        );
        assert_eq!(card.fingerprint, parsed.fingerprint());
    }
}
