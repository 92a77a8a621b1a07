//! What a cell seals for one epoch of a PRF key: its share kᵢ and the key's list of
//! commitments at that epoch (empty until the client fixes it). Sealed with the master key
//! exactly as an RSA share (`sealing`, same AAD of token, uid, epoch and format), so the
//! list cannot be swapped between keys or epochs either; the kind column tells the two apart.

use keyfrag_core::dprf::{ELEMENT_LEN, Element, PrfShare, SCALAR_LEN};
use keyfrag_core::rsa_share::RsaShare;
use keyfrag_core::secret::SecretBytes;
use zeroize::Zeroizing;

use crate::sealing::MasterKey;

pub struct PrfRecord {
    pub share: PrfShare,
    /// In the order the client fixed; empty before.
    pub commitments: Vec<Element>,
}

impl PrfRecord {
    /// This cell's position in the list, if the list holds its commitment exactly once.
    pub fn index(&self) -> Option<usize> {
        let own = self.share.commitment()?;
        let mut hits = self
            .commitments
            .iter()
            .enumerate()
            .filter(|(_, k)| **k == own);
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    pub fn seal(
        &self,
        key: &MasterKey,
        token: &str,
        uid: &str,
        epoch: u64,
    ) -> Result<Vec<u8>, String> {
        let mut plain = Vec::with_capacity(SCALAR_LEN + ELEMENT_LEN * self.commitments.len());
        plain.extend_from_slice(&self.share.to_bytes()[..]);
        for k in &self.commitments {
            plain.extend_from_slice(&k.to_bytes());
        }
        // The RSA layout's sign byte is always 0 here; the rest is ours.
        let wrapped = RsaShare {
            negative: false,
            magnitude: SecretBytes::new(plain),
        };
        key.seal_share(token, uid, epoch, &wrapped)
    }

    pub fn open(
        key: &MasterKey,
        token: &str,
        uid: &str,
        epoch: u64,
        format: u32,
        sealed: &[u8],
    ) -> Result<PrfRecord, String> {
        let wrapped = key.open_share(token, uid, epoch, format, sealed)?;
        let plain = Zeroizing::new(wrapped.magnitude.expose().to_vec());
        if wrapped.negative
            || plain.len() < SCALAR_LEN
            || !(plain.len() - SCALAR_LEN).is_multiple_of(ELEMENT_LEN)
        {
            return Err("sealed PRF share has a bad layout".into());
        }
        let share = PrfShare::from_bytes(&plain[..SCALAR_LEN])
            .map_err(|_| "sealed PRF share is not a scalar".to_string())?;
        let commitments = plain[SCALAR_LEN..]
            .chunks(ELEMENT_LEN)
            .map(Element::from_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "sealed PRF commitments do not decode".to_string())?;
        Ok(PrfRecord { share, commitments })
    }
}
