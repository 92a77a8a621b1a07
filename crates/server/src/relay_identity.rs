//! A cell's identity in the sealed relay (DESIGN.md "Sealed relay"): its party keys, derived
//! from a 32-byte seed file, and the roster of peers it accepts, read from its cluster file:
//!
//! ```toml
//! # Every party's public card, this cell's own included. Compare fingerprints out of band.
//! [[party]]
//! id = "cell-a"                 # the cell's name: the party id in every envelope
//! sealing_public = "…64 hex…"   # X25519, peers seal to it
//! identity_public = "…64 hex…"  # Ed25519, it signs with it
//! fingerprint = "…64 hex…"      # SHA-256 of the card (PartyCard::fingerprint)
//! ```
//! The fingerprint is redundant on purpose: a mistyped key then fails to load instead of
//! silently pinning the wrong peer.

use std::path::Path;
use std::sync::Arc;

use keyfrag_core::relay::{PartyCard, PartyKeys, Roster};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::ServerError;
use crate::sealing::check_private;

/// This cell's relay keys and the peers it accepts. Debug never prints the keys.
pub struct RelayIdentity {
    name: String,
    keys: Arc<PartyKeys>,
    roster: Roster,
}

impl std::fmt::Debug for RelayIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayIdentity")
            .field("name", &self.name)
            .field("peers", &self.roster.len())
            .finish_non_exhaustive()
    }
}

/// The cluster file's contents.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    #[serde(rename = "party", default)]
    pub parties: Vec<PartyEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyEntry {
    pub id: String,
    pub sealing_public: String,
    pub identity_public: String,
    pub fingerprint: String,
}

impl ClusterFile {
    pub fn from_cards<'a>(cards: impl IntoIterator<Item = &'a PartyCard>) -> Self {
        ClusterFile {
            parties: cards
                .into_iter()
                .map(|c| PartyEntry {
                    id: c.id().to_owned(),
                    sealing_public: hex::encode(c.sealing_public()),
                    identity_public: hex::encode(c.identity_public()),
                    fingerprint: c.fingerprint(),
                })
                .collect(),
        }
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# Peers this cell accepts in key generation (sealed relay). \
             Compare fingerprints out of band.\n{body}"
        )
    }

    /// The roster, after checking every key and fingerprint.
    pub fn roster(&self) -> Result<Roster, String> {
        let mut roster = Roster::new();
        for p in &self.parties {
            let key = |what: &str, text: &str| -> Result<[u8; 32], String> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut out)
                    .map_err(|_| format!("party {:?}: {what} must be 64 hex digits", p.id))?;
                Ok(out)
            };
            let card = PartyCard::new(
                &p.id,
                key("sealing_public", &p.sealing_public)?,
                key("identity_public", &p.identity_public)?,
            )
            .map_err(|e| format!("party {:?}: {e}", p.id))?;
            if !card
                .fingerprint()
                .eq_ignore_ascii_case(p.fingerprint.trim())
            {
                return Err(format!(
                    "party {:?}: fingerprint does not match its keys",
                    p.id
                ));
            }
            roster.add(card).map_err(|e| e.to_string())?;
        }
        Ok(roster)
    }
}

/// Parse a seed file: 64 hex digits.
pub fn parse_seed(text: &str) -> Option<Zeroizing<[u8; 32]>> {
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut()).ok()?;
    Some(seed)
}

impl RelayIdentity {
    /// Load the seed (refusing a file others could read, as for the master key) and the
    /// cluster file; this cell's own card must be listed, with the keys its seed derives.
    pub fn load(name: &str, seed_file: &Path, cluster_file: &Path) -> Result<Self, ServerError> {
        check_private(seed_file, "relay seed")?;
        let mut text = std::fs::read_to_string(seed_file)
            .map_err(|e| ServerError::file(seed_file, format!("cannot read relay seed: {e}")))?;
        let seed = parse_seed(&text);
        text.zeroize();
        let seed = seed.ok_or_else(|| {
            ServerError::file(seed_file, "relay seed file must hold exactly 64 hex digits")
        })?;
        let keys = PartyKeys::from_seed(&seed);

        let text = std::fs::read_to_string(cluster_file)
            .map_err(|e| ServerError::file(cluster_file, format!("cannot read: {e}")))?;
        let file: ClusterFile = toml::from_str(&text)
            .map_err(|e| ServerError::file(cluster_file, e.message().to_string()))?;
        let roster = file
            .roster()
            .map_err(|m| ServerError::file(cluster_file, m))?;
        let own = keys
            .card(name)
            .map_err(|e| ServerError::file(cluster_file, e.to_string()))?;
        match roster.get(name) {
            Some(card) if *card == own => {}
            Some(_) => {
                return Err(ServerError::file(
                    cluster_file,
                    format!("the card of {name:?} does not match this cell's relay seed"),
                ));
            }
            None => {
                return Err(ServerError::file(
                    cluster_file,
                    format!("this cell ({name:?}) is not listed"),
                ));
            }
        }
        Ok(RelayIdentity {
            name: name.to_owned(),
            keys: Arc::new(keys),
            roster,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn keys(&self) -> &PartyKeys {
        &self.keys
    }

    /// The keys, shared with a generation's `RelayedParty`.
    pub fn shared_keys(&self) -> Arc<PartyKeys> {
        self.keys.clone()
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// This cell's own card, as the cluster file lists it (load checked they agree).
    pub fn own_card(&self) -> Result<PartyCard, String> {
        self.roster
            .get(&self.name)
            .cloned()
            .ok_or_else(|| format!("{} is not in its own roster", self.name))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn load_checks_mode_seed_and_own_card() {
        let dir = tempfile::tempdir().unwrap();
        let (seed, cluster) = (dir.path().join("seed"), dir.path().join("cluster.toml"));
        let cards: Vec<PartyCard> = (0..3u8)
            .map(|i| {
                PartyKeys::from_seed(&[i; 32])
                    .card(&format!("cell-{i}"))
                    .unwrap()
            })
            .collect();
        write(&cluster, &ClusterFile::from_cards(&cards).to_toml(), 0o644);
        write(&seed, &hex::encode([1u8; 32]), 0o644);
        let e = RelayIdentity::load("cell-1", &seed, &cluster).unwrap_err();
        assert!(
            e.to_string().contains("relay seed file is accessible"),
            "{e}"
        );
        write(&seed, &hex::encode([1u8; 32]), 0o600);
        let id = RelayIdentity::load("cell-1", &seed, &cluster).unwrap();
        assert_eq!((id.name(), id.roster().len()), ("cell-1", 3));
        assert!(!format!("{id:?}").contains(&hex::encode([1u8; 32])));
        let e = RelayIdentity::load("cell-2", &seed, &cluster).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        let e = RelayIdentity::load("cell-9", &seed, &cluster).unwrap_err();
        assert!(e.to_string().contains("not listed"), "{e}");
        write(&seed, "abcd", 0o600);
        let e = RelayIdentity::load("cell-1", &seed, &cluster).unwrap_err();
        assert!(e.to_string().contains("64 hex digits"), "{e}");
    }

    #[test]
    fn cluster_file_round_trip_and_fingerprint_check() {
        let cards: Vec<PartyCard> = (0..3u8)
            .map(|i| {
                PartyKeys::from_seed(&[i; 32])
                    .card(&format!("cell-{i}"))
                    .unwrap()
            })
            .collect();
        let text = ClusterFile::from_cards(&cards).to_toml();
        let parsed: ClusterFile = toml::from_str(&text).unwrap();
        assert_eq!(parsed.roster().unwrap().len(), 3);
        let mut bad = parsed.clone();
        bad.parties[1].fingerprint = cards[0].fingerprint();
        assert!(bad.roster().unwrap_err().contains("fingerprint"));
        let mut dup = parsed;
        dup.parties[2].sealing_public = dup.parties[0].sealing_public.clone();
        assert!(dup.roster().is_err());
    }
}
