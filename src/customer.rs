//! The customer fragment inside the module (DESIGN "Customer fragment"): the token's
//! `customer_fragment` file is unsealed by the user PIN at C_Login, held only while the user
//! is logged in, and supplies, for every key created under it, the customer's share
//! c = PRF(seed, type ‖ key uid) — the share no cell ever sees, without which the cells'
//! partials combine to nothing.
//!
//! A key made under a customer fragment carries the seed's fingerprint in
//! CKA_KEYFRAG_CUSTOMER; the module uses the key only with the seed of that fingerprint.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki_sys::*;
use keyfrag_client::customer_file::{self, CustomerFileError};
use keyfrag_core::customer::{CustomerSeed, KdfParams, UnsealError};
use keyfrag_core::dprf::PrfShare;
use keyfrag_core::rsa_share::RsaShare;

use crate::error::{Result, err};
use crate::state::lock;

/// The customer-fragment state of one slot.
pub struct CustomerFragment {
    path: Option<PathBuf>,
    seed: Mutex<Option<CustomerSeed>>,
}

impl CustomerFragment {
    pub fn new(path: Option<&Path>) -> Self {
        CustomerFragment {
            path: path.map(Path::to_path_buf),
            seed: Mutex::new(None),
        }
    }

    /// Whether the token's keys are made with a customer share.
    pub fn configured(&self) -> bool {
        self.path.is_some()
    }

    /// After the cells accepted the user PIN: unseal the file with it. Failure does not fail
    /// the login (the cells accepted the PIN, and keys made without a customer share still
    /// work); it is logged with the fix, and every key that needs the seed then refuses.
    /// The file is only read here, never written.
    pub fn unlock(&self, pin: &str) {
        let Some(path) = &self.path else { return };
        let opened = customer_file::load(path).and_then(|sealed| {
            sealed
                .open_with_pin(pin.as_bytes())
                .map_err(|error| CustomerFileError::Format {
                    path: path.clone(),
                    error,
                })
        });
        match opened {
            Ok(seed) => *lock(&self.seed) = Some(seed),
            Err(e) => {
                *lock(&self.seed) = None;
                let hint = match &e {
                    CustomerFileError::Format {
                        error: UnsealError::WrongPin,
                        ..
                    } => {
                        ": the file is sealed under another PIN (after the security officer \
                         reset the user PIN, restore it: keyfrag customer-fragment restore)"
                    }
                    CustomerFileError::Format {
                        error: UnsealError::NoPinSlot,
                        ..
                    }
                    | CustomerFileError::Missing(_) => {
                        ": restore it from its backup with keyfrag customer-fragment restore"
                    }
                    _ => "",
                };
                tracing::error!(
                    "{e}{hint}; keys that need the customer fragment cannot be used in this login"
                );
            }
        }
    }

    /// Logout, the last session closed, C_InitToken: the seed is zeroized (on drop).
    pub fn forget(&self) {
        lock(&self.seed).take();
    }

    /// The fingerprint a new key records, or None on a token without a customer fragment.
    /// A configured fragment that is not unsealed refuses the creation: a key made without
    /// the customer's share would be usable by the cells alone.
    pub fn fingerprint_for_new_key(&self) -> Result<Option<[u8; 32]>> {
        if !self.configured() {
            return Ok(None);
        }
        match lock(&self.seed).as_ref() {
            Some(seed) => Ok(Some(seed.fingerprint())),
            None => Err(self.unavailable("create a key")),
        }
    }

    /// A copy of the seed for a generation in customer mode (the seed's holder is a party of
    /// it, for minutes), or None on a token without a customer fragment. A configured
    /// fragment that is not unsealed refuses, as for any new key. The copy is wiped when the
    /// caller drops it.
    pub fn seed_for_generation(&self) -> Result<Option<CustomerSeed>> {
        if !self.configured() {
            return Ok(None);
        }
        match lock(&self.seed).as_ref() {
            Some(seed) => Ok(Some(seed.clone())),
            None => Err(self.unavailable("generate a key")),
        }
    }

    /// The customer's share of an RSA key that recorded `fingerprint`.
    pub fn rsa_share(&self, fingerprint: &[u8], uid: &str, bits: usize) -> Result<RsaShare> {
        self.with_key_seed(fingerprint, uid, |seed| Ok(seed.rsa_share(uid, bits)?))
    }

    /// The customer's share of a PRF (secret) key that recorded `fingerprint`: it joins the
    /// cells' sum in every evaluation, so without the seed the key computes nothing usable.
    pub fn prf_share(&self, fingerprint: &[u8], uid: &str) -> Result<PrfShare> {
        self.with_key_seed(fingerprint, uid, |seed| Ok(seed.prf_share(uid)?))
    }

    /// Runs `f` on the unsealed seed if it is the one key `uid` recorded (`fingerprint`).
    fn with_key_seed<T>(
        &self,
        fingerprint: &[u8],
        uid: &str,
        f: impl FnOnce(&CustomerSeed) -> Result<T>,
    ) -> Result<T> {
        let guard = lock(&self.seed);
        let Some(seed) = guard.as_ref() else {
            return Err(self.unavailable("use a key"));
        };
        if seed.fingerprint()[..] != *fingerprint {
            tracing::error!(
                key = uid,
                "the key was made under another customer fragment than {}",
                self.path_text()
            );
            return Err(err(CKR_KEY_FUNCTION_NOT_PERMITTED));
        }
        f(seed)
    }

    /// C_SetPIN by the user: the file is re-sealed under the new PIN, written beside the old
    /// one and renamed over it only after the cells accepted the change (`change_cells`).
    /// A file that does not open with the old PIN stops the change before any cell is asked.
    pub fn change_pin(
        &self,
        old: &str,
        new: &str,
        change_cells: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let Some(path) = &self.path else {
            return change_cells();
        };
        let sealed = customer_file::load(path).map_err(|e| {
            tracing::error!("{e}; the PIN was not changed");
            err(CKR_DEVICE_ERROR)
        })?;
        let seed = match sealed.open_with_pin(old.as_bytes()) {
            Ok(seed) => seed,
            // The cells decide whether the old PIN is right (and count the failure).
            Err(UnsealError::WrongPin) => {
                change_cells()?;
                tracing::error!(
                    "the user PIN changed on the cells, but {} is sealed under another PIN: \
                     restore it with keyfrag customer-fragment restore",
                    path.display()
                );
                return Ok(());
            }
            Err(e) => {
                tracing::error!("customer fragment {}: {e}", path.display());
                return Err(err(CKR_DEVICE_ERROR));
            }
        };
        let resealed = sealed
            .with_pin(&seed, new.as_bytes(), KdfParams::default())
            .map_err(|e| {
                tracing::error!("customer fragment {}: {e}", path.display());
                err(CKR_DEVICE_ERROR)
            })?;
        change_cells()?;
        customer_file::store(path, &resealed).map_err(|e| {
            tracing::error!(
                "{e}: the cells have the new PIN but the file is still sealed under the old \
                 one; restore it with keyfrag customer-fragment restore"
            );
            err(CKR_DEVICE_ERROR)
        })
    }

    /// C_InitPIN by the security officer: the file cannot be re-sealed (the seed is not
    /// open), so the user must restore it with the recovery secret.
    pub fn note_pin_reset(&self) {
        if let Some(path) = &self.path {
            tracing::warn!(
                "the user PIN was reset: {} is still sealed under the old PIN; restore it with \
                 keyfrag customer-fragment restore before the next login",
                path.display()
            );
        }
    }

    fn unavailable(&self, what: &str) -> crate::error::CkError {
        tracing::error!(
            "cannot {what}: the customer fragment {} is not unsealed (log in with the user PIN; \
             see earlier errors if the login could not open it)",
            self.path_text()
        );
        // Not CKR_USER_NOT_LOGGED_IN: the user is logged in, and applications answer that
        // code by logging in again, which cannot help.
        err(CKR_DEVICE_ERROR)
    }

    fn path_text(&self) -> String {
        self.path
            .as_deref()
            .map_or_else(|| "(none)".into(), |p| p.display().to_string())
    }
}
