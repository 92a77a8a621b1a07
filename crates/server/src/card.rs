//! A cell's public card: what `keyfrag-server init` prints and writes as `card.toml`, and what
//! `keyfrag cluster create` takes from every cell.
//!
//! ```toml
//! name = "cell-a"
//! url = "https://cell-a.example:7443"
//! identity_public = "…64 hex…"        # Ed25519: the cell signs relay messages with it
//! sealing_public = "…64 hex…"         # X25519: peers seal relay messages to it
//! tls_ca = "-----BEGIN CERTIFICATE-----…"  # the CA the module pins for this cell
//! identity_fingerprint = "…"          # SHA-256 of the identity key
//! sealing_fingerprint = "…"           # SHA-256 of the sealing key
//! tls_fingerprint = "…"               # SHA-256 of the CA certificate (DER)
//! fingerprint = "…"                   # SHA-256 over all of the above: the one to compare
//! ```
//! The fingerprints are redundant on purpose: a card edited or damaged in transit fails to
//! load instead of pinning the wrong keys, and the operator compares one value (`fingerprint`)
//! with what the cell's own console printed.

use std::path::Path;

use keyfrag_core::relay::{PartyCard, PartyKeys};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain separation for the card fingerprint; bump with any change of what it covers.
const CARD_DOMAIN: &[u8] = b"keyfrag/cell-card/v1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellCard {
    pub name: String,
    pub url: String,
    pub identity_public: String,
    pub sealing_public: String,
    pub tls_ca: String,
    pub identity_fingerprint: String,
    pub sealing_fingerprint: String,
    pub tls_fingerprint: String,
    pub fingerprint: String,
}

impl CellCard {
    /// The card of a cell named `name` at `url`, with relay keys `keys` and TLS CA `tls_ca`
    /// (PEM, one certificate).
    pub fn new(name: &str, url: &str, keys: &PartyKeys, tls_ca: &str) -> Result<Self, String> {
        check_url(url)?;
        keys.card(name)
            .map_err(|e| format!("cell name {name:?}: {e}"))?;
        let ca_der = first_cert(tls_ca)?;
        let mut card = CellCard {
            name: name.to_owned(),
            url: url.to_owned(),
            identity_public: hex::encode(keys.identity_public()),
            sealing_public: hex::encode(keys.sealing_public()),
            tls_ca: tls_ca.trim_end().to_owned() + "\n",
            identity_fingerprint: sha256_hex(&keys.identity_public()),
            sealing_fingerprint: sha256_hex(&keys.sealing_public()),
            tls_fingerprint: sha256_hex(&ca_der),
            fingerprint: String::new(),
        };
        card.fingerprint = card.expected_fingerprint(&ca_der);
        Ok(card)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let card: CellCard = toml::from_str(text).map_err(|e| e.message().to_string())?;
        card.check()?;
        Ok(card)
    }

    /// Read and check a card file; every error names the file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read card {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("card {}: {e}", path.display()))
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# keyfrag cell card (public). Compare `fingerprint` with the cell's console out of \
             band before accepting it.\n{body}"
        )
    }

    /// Every key decodes and every fingerprint matches what it covers.
    pub fn check(&self) -> Result<PartyCard, String> {
        check_url(&self.url)?;
        let key = |what: &str, text: &str| -> Result<[u8; 32], String> {
            let mut out = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut out)
                .map_err(|_| format!("{what} must be 64 hex digits"))?;
            Ok(out)
        };
        let identity = key("identity_public", &self.identity_public)?;
        let sealing = key("sealing_public", &self.sealing_public)?;
        let party = PartyCard::new(&self.name, sealing, identity)
            .map_err(|e| format!("cell {:?}: {e}", self.name))?;
        let ca_der = first_cert(&self.tls_ca)?;
        let corrupted = |what: &str| {
            Err(format!(
                "card of {:?} is corrupted: {what} does not match",
                self.name
            ))
        };
        if !same_hex(&self.identity_fingerprint, &sha256_hex(&identity)) {
            return corrupted("identity_fingerprint");
        }
        if !same_hex(&self.sealing_fingerprint, &sha256_hex(&sealing)) {
            return corrupted("sealing_fingerprint");
        }
        if !same_hex(&self.tls_fingerprint, &sha256_hex(&ca_der)) {
            return corrupted("tls_fingerprint");
        }
        if !same_hex(&self.fingerprint, &self.expected_fingerprint(&ca_der)) {
            return corrupted("fingerprint");
        }
        Ok(party)
    }

    /// The relay card peers pin for this cell.
    pub fn party_card(&self) -> Result<PartyCard, String> {
        self.check()
    }

    /// SHA-256(domain ‖ each field, length-prefixed): the name and URL are covered too, so a
    /// card cannot be re-pointed at another host without the operator seeing a new value.
    fn expected_fingerprint(&self, ca_der: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(CARD_DOMAIN);
        for field in [
            self.name.as_bytes(),
            self.url.as_bytes(),
            self.identity_public.trim().to_ascii_lowercase().as_bytes(),
            self.sealing_public.trim().to_ascii_lowercase().as_bytes(),
            ca_der,
        ] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field);
        }
        hex::encode(h.finalize())
    }

    /// What `init` prints: one fact a line.
    pub fn display(&self) -> String {
        format!(
            "cell         {}\nurl          {}\nidentity     {}\nsealing      {}\ntls ca       {}\n\
             fingerprint  {}\n",
            self.name,
            self.url,
            self.identity_fingerprint,
            self.sealing_fingerprint,
            self.tls_fingerprint,
            self.fingerprint
        )
    }
}

/// Fingerprints as operators type them: case and `:` separators do not matter.
pub fn same_hex(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.trim()
            .chars()
            .filter(|c| *c != ':')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

fn check_url(url: &str) -> Result<(), String> {
    let ok = url.strip_prefix("https://").is_some_and(|rest| {
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        !rest.is_empty() && !rest.contains(|c: char| c == '/' || c.is_whitespace())
    });
    match ok {
        true => Ok(()),
        false => Err(format!(
            "url {url:?} must be https://HOST:PORT (the address clients and peers use)"
        )),
    }
}

/// The host part of an `https://HOST:PORT` URL (brackets of an IPv6 literal removed).
pub fn url_host(url: &str) -> Result<String, String> {
    check_url(url)?;
    let rest = url.trim_start_matches("https://").trim_end_matches('/');
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        rest.rsplit_once(':').map(|(h, _)| h).unwrap_or(rest)
    };
    if host.is_empty() {
        return Err(format!("url {url:?} has no host"));
    }
    Ok(host.to_owned())
}

fn first_cert(pem: &str) -> Result<Vec<u8>, String> {
    let cert = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or("tls_ca holds no PEM certificate")?
        .map_err(|e| format!("tls_ca: {e}"))?;
    Ok(cert.to_vec())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> CellCard {
        let certs = crate::tls::dev_certificates(&["127.0.0.1".into()]).unwrap();
        let keys = PartyKeys::from_seed(&[7; 32]);
        CellCard::new("cell-a", "https://127.0.0.1:7443", &keys, &certs.ca_pem).unwrap()
    }

    #[test]
    fn round_trips_and_detects_every_edited_field() {
        let c = card();
        assert_eq!(CellCard::parse(&c.to_toml()).unwrap(), c);
        let other = PartyKeys::from_seed(&[8; 32]);
        type Edit = Box<dyn Fn(&mut CellCard)>;
        let edits: Vec<Edit> = vec![
            Box::new(|c| c.name = "cell-b".into()),
            Box::new(|c| c.url = "https://evil:7443".into()),
            Box::new(move |c| c.identity_public = hex::encode(other.identity_public())),
            Box::new(|c| c.sealing_fingerprint = "00".repeat(32)),
            Box::new(|c| {
                c.tls_ca = crate::tls::dev_certificates(&["x".into()]).unwrap().ca_pem;
            }),
        ];
        for edit in edits {
            let mut bad = c.clone();
            edit(&mut bad);
            let e = CellCard::parse(&bad.to_toml()).unwrap_err();
            assert!(e.contains("corrupted"), "{e}");
        }
        let mut bad = c.clone();
        bad.sealing_public = "zz".into();
        let e = CellCard::parse(&bad.to_toml()).unwrap_err();
        assert!(e.contains("sealing_public"), "{e}");
    }

    #[test]
    fn fingerprints_compare_loosely_and_urls_strictly() {
        let c = card();
        let colons: String = c
            .fingerprint
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|p| std::str::from_utf8(p).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert!(same_hex(&colons, &c.fingerprint));
        assert!(!same_hex("", ""));
        assert_eq!(url_host("https://[::1]:7443").unwrap(), "::1");
        assert_eq!(
            url_host("https://cell.example:7443").unwrap(),
            "cell.example"
        );
        assert!(url_host("http://cell:1").is_err());
        assert!(url_host("https://").is_err());
    }
}
