//! The customer-fragment file: the seed sealed twice, under a key derived from the user PIN and
//! under one derived from the recovery secret.
//!
//! Layout (format version 1, all integers big-endian):
//!
//! ```text
//! "KFCF" ‖ version (1) ‖ identity public key (32) ‖ slot count (1)
//! per slot: kind (1: PIN, 2: recovery) ‖ kdf (1: Argon2id v1.3, 2: HKDF-SHA256)
//!           ‖ m KiB (4) ‖ t (4) ‖ p (4) ‖ salt (16) ‖ nonce (12) ‖ ChaCha20-Poly1305(seed) (48)
//! ```
//!
//! Each slot's AAD is the file header and the slot's own parameters, so neither the identity
//! nor the KDF cost can be changed without the slot failing to open. The PIN slot's salt is its
//! own (the cells' PIN verifiers use theirs), so nothing stored anywhere lets a cell test PIN
//! guesses against this file. A backup holds the recovery slot only.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::recovery::RecoverySecret;
use super::seed::{CustomerSeed, SEED_BYTES, identity_fingerprint};
use crate::{Error, random};

const MAGIC: &[u8; 4] = b"KFCF";
pub const FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = 4 + 1 + 32 + 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const CT_LEN: usize = SEED_BYTES + 16;
const SLOT_PARAMS_LEN: usize = 1 + 1 + 12 + SALT_LEN + NONCE_LEN;
const SLOT_LEN: usize = SLOT_PARAMS_LEN + CT_LEN;

const KIND_PIN: u8 = 1;
const KIND_RECOVERY: u8 = 2;
const KDF_ARGON2ID: u8 = 1;
const KDF_HKDF_SHA256: u8 = 2;
const RECOVERY_INFO: &[u8] = b"keyfrag/customer-fragment/recovery/v1";

/// Upper bounds accepted from a file, so a tampered header cannot make a login allocate
/// gigabytes or spin for minutes.
const MAX_M_KIB: u32 = 4 * 1024 * 1024;
const MAX_T: u32 = 64;
const MAX_P: u32 = 16;

/// Argon2id cost for the PIN seal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about a quarter of a second on a server core, paid once per
    /// login. RFC 9106's second recommended option is this shape.
    fn default() -> Self {
        KdfParams {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

impl KdfParams {
    /// A cheap cost for tests only (the format and checks are the same).
    pub fn insecure_for_tests() -> Self {
        KdfParams {
            m_kib: 256,
            t: 1,
            p: 1,
        }
    }

    fn check(&self) -> Result<(), UnsealError> {
        if self.m_kib > MAX_M_KIB || self.t > MAX_T || self.p > MAX_P {
            return Err(UnsealError::Format("PIN key-derivation cost out of range"));
        }
        Params::new(self.m_kib, self.t, self.p, Some(32))
            .map(|_| ())
            .map_err(|_| UnsealError::Format("invalid PIN key-derivation parameters"))
    }
}

/// Why a fragment file did not open. Never says anything about the seed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsealError {
    /// The PIN slot did not open: a wrong PIN, or a file sealed under an older PIN (after the
    /// security officer reset it) — then restore it with the recovery secret.
    #[error("the customer fragment does not open with this PIN")]
    WrongPin,
    #[error("the customer fragment does not open with this recovery secret")]
    WrongRecovery,
    #[error("this is a backup (recovery seal only): restore it with the recovery secret first")]
    NoPinSlot,
    #[error("not a valid customer-fragment file: {0}")]
    Format(&'static str),
    #[error("operating system randomness unavailable")]
    Random,
}

#[derive(Clone, PartialEq, Eq)]
struct Slot {
    kind: u8,
    kdf: u8,
    params: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    ciphertext: [u8; CT_LEN],
}

impl Slot {
    fn params_bytes(&self) -> [u8; SLOT_PARAMS_LEN] {
        let mut b = [0u8; SLOT_PARAMS_LEN];
        b[0] = self.kind;
        b[1] = self.kdf;
        b[2..6].copy_from_slice(&self.params.m_kib.to_be_bytes());
        b[6..10].copy_from_slice(&self.params.t.to_be_bytes());
        b[10..14].copy_from_slice(&self.params.p.to_be_bytes());
        b[14..30].copy_from_slice(&self.salt);
        b[30..].copy_from_slice(&self.nonce);
        b
    }
}

/// A parsed (still sealed) fragment file.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedFragment {
    identity_public: [u8; 32],
    pin: Option<Slot>,
    recovery: Slot,
}

impl std::fmt::Debug for SealedFragment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedFragment")
            .field("fingerprint", &hex_prefix(&self.fingerprint()))
            .field("pin_seal", &self.pin.is_some())
            .finish()
    }
}

impl SealedFragment {
    /// Seals `seed` under `pin` (Argon2id with `params`) and under `recovery`.
    pub fn seal(
        seed: &CustomerSeed,
        pin: &[u8],
        recovery: &RecoverySecret,
        params: KdfParams,
    ) -> Result<Self, UnsealError> {
        let identity_public = seed.party_keys().identity_public();
        let recovery_slot = seal_slot(
            &identity_public,
            seed,
            KIND_RECOVERY,
            KDF_HKDF_SHA256,
            KdfParams {
                m_kib: 0,
                t: 0,
                p: 0,
            },
            recovery.expose(),
        )?;
        let mut out = SealedFragment {
            identity_public,
            pin: None,
            recovery: recovery_slot,
        };
        out.pin = Some(seal_slot(
            &identity_public,
            seed,
            KIND_PIN,
            KDF_ARGON2ID,
            params,
            pin,
        )?);
        Ok(out)
    }

    /// The same file with the PIN seal replaced (C_SetPIN, change-pin, restore): the recovery
    /// seal is kept as it is.
    pub fn with_pin(
        &self,
        seed: &CustomerSeed,
        new_pin: &[u8],
        params: KdfParams,
    ) -> Result<Self, UnsealError> {
        if seed.party_keys().identity_public() != self.identity_public {
            return Err(UnsealError::Format("the seed does not belong to this file"));
        }
        let mut out = self.clone();
        out.pin = Some(seal_slot(
            &self.identity_public,
            seed,
            KIND_PIN,
            KDF_ARGON2ID,
            params,
            new_pin,
        )?);
        Ok(out)
    }

    /// A backup: the recovery seal alone, which opens only with the recovery secret.
    pub fn backup(&self) -> Self {
        SealedFragment {
            identity_public: self.identity_public,
            pin: None,
            recovery: self.recovery.clone(),
        }
    }

    pub fn has_pin_seal(&self) -> bool {
        self.pin.is_some()
    }

    pub fn identity_public(&self) -> [u8; 32] {
        self.identity_public
    }

    /// SHA-256 of the customer's identity public key (public; names the seed).
    pub fn fingerprint(&self) -> [u8; 32] {
        identity_fingerprint(&self.identity_public)
    }

    pub fn open_with_pin(&self, pin: &[u8]) -> Result<CustomerSeed, UnsealError> {
        let slot = self.pin.as_ref().ok_or(UnsealError::NoPinSlot)?;
        self.open_slot(slot, pin, UnsealError::WrongPin)
    }

    pub fn open_with_recovery(
        &self,
        recovery: &RecoverySecret,
    ) -> Result<CustomerSeed, UnsealError> {
        self.open_slot(
            &self.recovery,
            recovery.expose(),
            UnsealError::WrongRecovery,
        )
    }

    fn open_slot(
        &self,
        slot: &Slot,
        secret: &[u8],
        wrong: UnsealError,
    ) -> Result<CustomerSeed, UnsealError> {
        let key = slot_key(slot, secret)?;
        let aad = slot_aad(&self.identity_public, slot);
        let plain = Zeroizing::new(
            ChaCha20Poly1305::new(&Key::from(*key))
                .decrypt(
                    &Nonce::from(slot.nonce),
                    Payload {
                        msg: &slot.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| wrong)?,
        );
        let mut bytes = [0u8; SEED_BYTES];
        bytes.copy_from_slice(&plain);
        let seed = CustomerSeed::from_bytes(bytes);
        // The AEAD already binds the identity; this catches a file sealed by a buggy writer.
        if seed.party_keys().identity_public() != self.identity_public {
            return Err(UnsealError::Format(
                "the sealed seed does not match the file's identity",
            ));
        }
        Ok(seed)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let slots: Vec<&Slot> = self.pin.iter().chain([&self.recovery]).collect();
        let mut out = header(&self.identity_public, slots.len() as u8).to_vec();
        for slot in slots {
            out.extend_from_slice(&slot.params_bytes());
            out.extend_from_slice(&slot.ciphertext);
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, UnsealError> {
        if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
            return Err(UnsealError::Format("not a customer-fragment file"));
        }
        if bytes[4] != FORMAT_VERSION {
            return Err(UnsealError::Format(
                "written by a newer keyfrag (unknown format version)",
            ));
        }
        let mut identity_public = [0u8; 32];
        identity_public.copy_from_slice(&bytes[5..37]);
        let count = bytes[37] as usize;
        if !(1..=2).contains(&count) || bytes.len() != HEADER_LEN + count * SLOT_LEN {
            return Err(UnsealError::Format("truncated or oversized"));
        }
        let mut pin = None;
        let mut recovery = None;
        for chunk in bytes[HEADER_LEN..].chunks_exact(SLOT_LEN) {
            let slot = parse_slot(chunk)?;
            let target = match (slot.kind, slot.kdf) {
                (KIND_PIN, KDF_ARGON2ID) => &mut pin,
                (KIND_RECOVERY, KDF_HKDF_SHA256) => &mut recovery,
                _ => return Err(UnsealError::Format("unknown seal kind")),
            };
            if target.replace(slot).is_some() {
                return Err(UnsealError::Format("a seal appears twice"));
            }
        }
        Ok(SealedFragment {
            identity_public,
            pin,
            recovery: recovery.ok_or(UnsealError::Format("no recovery seal"))?,
        })
    }
}

fn header(identity_public: &[u8; 32], slots: u8) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4] = FORMAT_VERSION;
    h[5..37].copy_from_slice(identity_public);
    h[37] = slots;
    h
}

/// The AAD: magic, version and identity (not the slot count, which a backup changes), then
/// the slot's own parameters.
fn slot_aad(identity_public: &[u8; 32], slot: &Slot) -> Vec<u8> {
    let mut aad = header(identity_public, 0)[..HEADER_LEN - 1].to_vec();
    aad.extend_from_slice(&slot.params_bytes());
    aad
}

fn parse_slot(b: &[u8]) -> Result<Slot, UnsealError> {
    let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let slot = Slot {
        kind: b[0],
        kdf: b[1],
        params: KdfParams {
            m_kib: u32_at(2),
            t: u32_at(6),
            p: u32_at(10),
        },
        salt: b[14..30].try_into().expect("16 bytes"),
        nonce: b[30..42].try_into().expect("12 bytes"),
        ciphertext: b[42..].try_into().expect("48 bytes"),
    };
    if slot.kdf == KDF_ARGON2ID {
        slot.params.check()?;
    }
    Ok(slot)
}

fn slot_key(slot: &Slot, secret: &[u8]) -> Result<Zeroizing<[u8; 32]>, UnsealError> {
    let mut key = Zeroizing::new([0u8; 32]);
    match slot.kdf {
        KDF_ARGON2ID => {
            slot.params.check()?;
            let params = Params::new(slot.params.m_kib, slot.params.t, slot.params.p, Some(32))
                .map_err(|_| UnsealError::Format("invalid PIN key-derivation parameters"))?;
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password_into(secret, &slot.salt, key.as_mut())
                .map_err(|_| UnsealError::Format("PIN key derivation failed"))?;
        }
        KDF_HKDF_SHA256 => {
            Hkdf::<Sha256>::new(Some(&slot.salt), secret)
                .expand(RECOVERY_INFO, key.as_mut())
                .map_err(|_| UnsealError::Format("recovery key derivation failed"))?;
        }
        _ => return Err(UnsealError::Format("unknown key derivation")),
    }
    Ok(key)
}

fn seal_slot(
    identity_public: &[u8; 32],
    seed: &CustomerSeed,
    kind: u8,
    kdf: u8,
    params: KdfParams,
    secret: &[u8],
) -> Result<Slot, UnsealError> {
    if kdf == KDF_ARGON2ID {
        params.check()?;
    }
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    random::fill(&mut salt).map_err(|_| UnsealError::Random)?;
    random::fill(&mut nonce).map_err(|_| UnsealError::Random)?;
    let mut slot = Slot {
        kind,
        kdf,
        params,
        salt,
        nonce,
        ciphertext: [0u8; CT_LEN],
    };
    let key = slot_key(&slot, secret)?;
    let aad = slot_aad(identity_public, &slot);
    let ct = ChaCha20Poly1305::new(&Key::from(*key))
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: seed.expose(),
                aad: &aad,
            },
        )
        .map_err(|_| UnsealError::Format("sealing failed"))?;
    slot.ciphertext.copy_from_slice(&ct);
    Ok(slot)
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(8).map(|x| format!("{x:02x}")).collect()
}

impl From<Error> for UnsealError {
    fn from(_: Error) -> Self {
        UnsealError::Random
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (CustomerSeed, RecoverySecret, SealedFragment) {
        let seed = CustomerSeed::generate().unwrap();
        let rec = RecoverySecret::generate().unwrap();
        let file =
            SealedFragment::seal(&seed, b"1234", &rec, KdfParams::insecure_for_tests()).unwrap();
        (seed, rec, file)
    }

    fn same(a: &CustomerSeed, b: &CustomerSeed) -> bool {
        a.expose() == b.expose()
    }

    #[test]
    fn opens_with_the_pin_and_with_the_recovery_secret() {
        let (seed, rec, file) = fixture();
        let bytes = file.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 2 * SLOT_LEN);
        let parsed = SealedFragment::from_bytes(&bytes).unwrap();
        assert!(same(&parsed.open_with_pin(b"1234").unwrap(), &seed));
        assert!(same(&parsed.open_with_recovery(&rec).unwrap(), &seed));
        assert_eq!(parsed.fingerprint(), seed.fingerprint());
    }

    #[test]
    fn a_wrong_pin_or_recovery_secret_does_not_open() {
        let (_, _, file) = fixture();
        assert_eq!(
            file.open_with_pin(b"1235").unwrap_err(),
            UnsealError::WrongPin
        );
        let other = RecoverySecret::generate().unwrap();
        assert_eq!(
            file.open_with_recovery(&other).unwrap_err(),
            UnsealError::WrongRecovery
        );
    }

    #[test]
    fn changing_the_pin_keeps_the_seed_and_the_recovery_seal() {
        let (seed, rec, file) = fixture();
        let changed = file
            .with_pin(&seed, b"new-pin", KdfParams::insecure_for_tests())
            .unwrap();
        assert_eq!(
            changed.open_with_pin(b"1234").unwrap_err(),
            UnsealError::WrongPin
        );
        assert!(same(&changed.open_with_pin(b"new-pin").unwrap(), &seed));
        assert!(same(&changed.open_with_recovery(&rec).unwrap(), &seed));
        let stranger = CustomerSeed::generate().unwrap();
        assert!(
            file.with_pin(&stranger, b"x", KdfParams::insecure_for_tests())
                .is_err()
        );
    }

    #[test]
    fn a_backup_opens_only_with_the_recovery_secret() {
        let (seed, rec, file) = fixture();
        let backup = SealedFragment::from_bytes(&file.backup().to_bytes()).unwrap();
        assert!(!backup.has_pin_seal());
        assert_eq!(
            backup.open_with_pin(b"1234").unwrap_err(),
            UnsealError::NoPinSlot
        );
        assert!(same(&backup.open_with_recovery(&rec).unwrap(), &seed));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let (_, rec, file) = fixture();
        let bytes = file.to_bytes();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let opened = SealedFragment::from_bytes(&bad).and_then(|f| {
                f.open_with_pin(b"1234")?;
                f.open_with_recovery(&rec)
            });
            assert!(opened.is_err(), "flipping byte {i} went unnoticed");
        }
        assert!(SealedFragment::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(SealedFragment::from_bytes(b"KFCF").is_err());
    }

    #[test]
    fn a_hostile_cost_is_refused_before_any_work() {
        let (_, _, file) = fixture();
        let mut bytes = file.to_bytes();
        // m KiB of the PIN slot (the first slot) set to u32::MAX.
        bytes[HEADER_LEN + 2..HEADER_LEN + 6].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            SealedFragment::from_bytes(&bytes),
            Err(UnsealError::Format(_))
        ));
    }

    #[test]
    fn debug_shows_only_public_facts() {
        let (_, _, file) = fixture();
        let shown = format!("{file:?}");
        assert!(shown.contains("fingerprint") && shown.contains("pin_seal: true"));
    }
}
