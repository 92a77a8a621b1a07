//! Proactive refresh of PRF shares (issue 9 item 6, docs/DPRF.md "Refresh"), as pure
//! functions: the cells seal what `PrfDeal` produces to their peers and sign the `PrfCheck`
//! they compute, exactly as for RSA shares (`crate::refresh`, docs/REFRESH.md).
//!
//! From epoch e to e + 1, party i deals δ_{i,j} uniform mod ℓ for every peer j and keeps
//! δ_{i,i} = −Σ_{j≠i} δ_{i,j}; party j's pending share is k_j' = k_j + Σ_i δ_{i,j}. Every row
//! sums to zero mod ℓ, so Σ k_j' = Σ k_j: F is unchanged and so is every data key.
//!
//! The check: every party multiplies one public point P, hashed from the run, by its committed
//! and its pending share and reports its pending commitment K_j'. Σ old = k·P and
//! Σ pending = k'·P agree exactly when F_old and F_new agree on that hashed input, with or
//! without a customer share (constant across refreshes, so it needs no PIN); and
//! Σ K_j' = Σ K_j ties the new list of commitments to the old.

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::group::{ELEMENT_LEN, Element, hash_to_group, random_scalar, scalar_from_bytes};
use super::share::PrfShare;
use crate::secret::SecretBytes;
use crate::{Error, Result};

/// Format byte of an encoded `PrfCheck`.
pub const PRF_CHECK_FORMAT: u8 = 1;
const PRF_CHECK_LEN: usize = 1 + 3 * ELEMENT_LEN;
const CHECK_DOMAIN: &[u8] = b"keyfrag/prf-refresh/v1/check";

/// One party's deal: its own delta, kept until PREPARE, and one encoded delta (a canonical
/// 32-byte scalar) for each peer. Zeroized on drop; Debug prints nothing secret.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PrfDeal {
    own: Scalar,
    #[zeroize(skip)]
    peers: Vec<(usize, SecretBytes)>,
}

impl std::fmt::Debug for PrfDeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrfDeal")
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl PrfDeal {
    /// Party `me` of `parties` (≥ 2) deals, from OS randomness.
    pub fn new(me: usize, parties: usize) -> Result<PrfDeal> {
        if parties < 2 || me >= parties {
            return Err(Error::InvalidInput("refresh needs at least two parties"));
        }
        let mut own = Scalar::ZERO;
        let mut peers = Vec::with_capacity(parties - 1);
        for j in (0..parties).filter(|&j| j != me) {
            let mut delta = random_scalar()?;
            own -= delta;
            peers.push((j, SecretBytes::new(delta.to_bytes().to_vec())));
            delta.zeroize();
        }
        Ok(PrfDeal { own, peers })
    }

    /// The encoded delta for each peer, by party index.
    pub fn peers(&self) -> impl Iterator<Item = (usize, &SecretBytes)> {
        self.peers.iter().map(|(j, d)| (*j, d))
    }

    /// The pending share: `share` plus the own delta plus one delta from every peer.
    pub fn apply(&self, share: &PrfShare, received: &[&[u8]]) -> Result<PrfShare> {
        if received.len() != self.peers.len() {
            return Err(Error::InvalidInput("one delta from every peer is needed"));
        }
        let mut sum = share.0 + self.own;
        for body in received {
            let mut d = scalar_from_bytes(body)?;
            sum += d;
            d.zeroize();
        }
        let pending = PrfShare(sum);
        sum.zeroize();
        if pending.commitment().is_none() {
            // Odds 2^-252; a zero share would have no commitment to prove against.
            return Err(Error::InvalidInput("the pending share is zero"));
        }
        Ok(pending)
    }
}

/// The public point of one run, hashed from the key, the session and the epoch left: nobody
/// chooses it, so the check evaluations (which need no login) are no PRF oracle on chosen
/// inputs.
pub fn check_point(key_uid: &str, session: &str, from_epoch: u64) -> Result<Element> {
    let mut msg = Vec::with_capacity(CHECK_DOMAIN.len() + key_uid.len() + session.len() + 24);
    for field in [CHECK_DOMAIN, key_uid.as_bytes(), session.as_bytes()] {
        msg.extend_from_slice(&(field.len() as u32).to_be_bytes());
        msg.extend_from_slice(field);
    }
    msg.extend_from_slice(&from_epoch.to_be_bytes());
    hash_to_group(&msg)
}

/// One party's check in a run: kᵢ·P, kᵢ'·P and Kᵢ' = kᵢ'·G.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrfCheck {
    pub old: Element,
    pub pending: Element,
    pub commitment: Element,
}

impl PrfCheck {
    pub fn new(old: &PrfShare, pending: &PrfShare, point: &Element) -> Result<PrfCheck> {
        Ok(PrfCheck {
            old: Element::new(old.0 * point.0)?,
            pending: Element::new(pending.0 * point.0)?,
            commitment: pending
                .commitment()
                .ok_or(Error::InvalidInput("the pending share is zero"))?,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PRF_CHECK_LEN);
        out.push(PRF_CHECK_FORMAT);
        for e in [&self.old, &self.pending, &self.commitment] {
            out.extend_from_slice(&e.to_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<PrfCheck> {
        if bytes.len() != PRF_CHECK_LEN || bytes[0] != PRF_CHECK_FORMAT {
            return Err(Error::InvalidInput("malformed PRF refresh check"));
        }
        let e =
            |i: usize| Element::from_bytes(&bytes[1 + i * ELEMENT_LEN..1 + (i + 1) * ELEMENT_LEN]);
        Ok(PrfCheck {
            old: e(0)?,
            pending: e(1)?,
            commitment: e(2)?,
        })
    }
}

fn sum<'a>(it: impl Iterator<Item = &'a Element>) -> RistrettoPoint {
    it.map(|e| e.0).sum()
}

/// Whether a run's checks (one per party) keep the function: Σ old = Σ pending, i.e.
/// F_old and F_new agree on the run's hashed input.
pub fn same_function(checks: &[PrfCheck]) -> bool {
    sum(checks.iter().map(|c| &c.old)) == sum(checks.iter().map(|c| &c.pending))
}

/// `same_function`, and the pending commitments sum to the committed ones (`committed`, the
/// key's list at the epoch left): what a cell requires before COMMIT.
pub fn checks_match(checks: &[PrfCheck], committed: &[Element]) -> bool {
    same_function(checks) && sum(checks.iter().map(|c| &c.commitment)) == sum(committed.iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dprf::{Blinding, evaluate, evaluate_whole};

    fn run(shares: &[PrfShare]) -> Vec<PrfShare> {
        let n = shares.len();
        let deals: Vec<PrfDeal> = (0..n).map(|i| PrfDeal::new(i, n).unwrap()).collect();
        (0..n)
            .map(|j| {
                let received: Vec<&[u8]> = deals
                    .iter()
                    .filter_map(|d| d.peers().find(|(to, _)| *to == j).map(|(_, b)| b.expose()))
                    .collect();
                deals[j].apply(&shares[j], &received).unwrap()
            })
            .collect()
    }

    #[test]
    fn every_share_changes_and_the_function_does_not() {
        let shares: Vec<PrfShare> = (0..3).map(|_| PrfShare::random().unwrap()).collect();
        let new = run(&shares);
        for (a, b) in shares.iter().zip(&new) {
            assert_ne!(*a.to_bytes(), *b.to_bytes());
        }
        let k = PrfShare::sum(&shares);
        let k2 = PrfShare::sum(&new);
        assert_eq!(
            *evaluate_whole(&k, b"in").unwrap(),
            *evaluate_whole(&k2, b"in").unwrap()
        );
        // And through the oblivious path, share by share.
        let b = Blinding::new(b"in").unwrap();
        let z: Vec<Element> = new
            .iter()
            .map(|s| evaluate(s, b.blinded()).unwrap().0)
            .collect();
        assert_eq!(
            *b.finalize(&z, None).unwrap(),
            *evaluate_whole(&k, b"in").unwrap()
        );
    }

    #[test]
    fn checks_match_only_for_a_zero_sum_refresh() {
        let shares: Vec<PrfShare> = (0..3).map(|_| PrfShare::random().unwrap()).collect();
        let committed: Vec<Element> = shares.iter().map(|s| s.commitment().unwrap()).collect();
        let new = run(&shares);
        let p = check_point("uid", "session", 1).unwrap();
        let checks: Vec<PrfCheck> = shares
            .iter()
            .zip(&new)
            .map(|(o, n)| PrfCheck::new(o, n, &p).unwrap())
            .collect();
        assert!(checks_match(&checks, &committed));
        let round = checks
            .iter()
            .map(|c| PrfCheck::from_bytes(&c.to_bytes()).unwrap())
            .collect::<Vec<_>>();
        assert_eq!(round, checks);

        // One party that skipped a delta: its pending share is off, and both sums show it.
        let mut bad = checks.clone();
        let off = new[1].add(&PrfShare::random().unwrap());
        bad[1] = PrfCheck::new(&shares[1], &off, &p).unwrap();
        assert!(!checks_match(&bad, &committed));
        // Right evaluations but a commitment that is not the pending share's.
        let mut lying = checks.clone();
        lying[2].commitment = PrfShare::random().unwrap().commitment().unwrap();
        assert!(!checks_match(&lying, &committed));
        assert!(
            same_function(&lying),
            "only the commitments' sum catches it"
        );
        assert!(!same_function(&bad));
        assert!(PrfCheck::from_bytes(&checks[0].to_bytes()[1..]).is_err());
    }

    #[test]
    fn deals_refuse_bad_shapes() {
        assert!(PrfDeal::new(0, 1).is_err());
        assert!(PrfDeal::new(3, 3).is_err());
        let d = PrfDeal::new(0, 3).unwrap();
        let s = PrfShare::random().unwrap();
        assert!(d.apply(&s, &[&[1u8; 32][..]]).is_err(), "one delta short");
        assert!(
            d.apply(&s, &[&[0xffu8; 32][..], &[1u8; 32][..]]).is_err(),
            "non-canonical"
        );
        assert_ne!(
            check_point("u", "s", 1).unwrap(),
            check_point("u", "s", 2).unwrap()
        );
        assert!(format!("{d:?}").starts_with("PrfDeal"));
    }
}
