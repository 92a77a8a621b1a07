//! PIN verifiers: Argon2id PHC strings, each with its own random salt, so a cell's database
//! reveals nothing that would let it be checked against another cell's.
//!
//! Hashing is deliberately slow; callers run these functions on the blocking pool.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use keyfrag_proto::ErrorCode;
use keyfrag_proto::token::Pin;

use crate::error::ApiError;

/// Failed tries after which a PIN locks (reset by a success; the SO re-initialises the user's).
pub const MAX_PIN_FAILURES: u32 = 10;
pub const PIN_MIN_CHARS: usize = 4;
pub const PIN_MAX_CHARS: usize = 64;

const ARGON2_T: u32 = 2;
const ARGON2_P: u32 = 1;

pub fn check_len(pin: &Pin) -> Result<(), ApiError> {
    let n = pin.0.chars().count();
    if (PIN_MIN_CHARS..=PIN_MAX_CHARS).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::PinLenRange,
            format!("a PIN must have {PIN_MIN_CHARS} to {PIN_MAX_CHARS} characters"),
        ))
    }
}

/// A new verifier for `pin` with a fresh salt.
pub fn make_verifier(pin: &Pin, m_kib: u32) -> Result<String, String> {
    let params =
        Params::new(m_kib, ARGON2_T, ARGON2_P, None).map_err(|e| format!("argon2 params: {e}"))?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("randomness: {e}"))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_with_salt(pin.0.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2: {e}"))
}

/// Whether `pin` matches `verifier`. The parameters come from the verifier itself; the final
/// comparison inside `password-hash` is constant time.
pub fn verify(pin: &Pin, verifier: &str) -> Result<bool, String> {
    let parsed = PasswordHash::new(verifier).map_err(|e| format!("stored verifier: {e}"))?;
    match Argon2::default().verify_password(pin.0.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(format!("argon2: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_are_salted_and_verify() {
        let pin = Pin("1234".into());
        let a = make_verifier(&pin, 64).unwrap();
        let b = make_verifier(&pin, 64).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify(&pin, &a).unwrap());
        assert!(!verify(&Pin("1235".into()), &a).unwrap());
    }

    #[test]
    fn length_rules() {
        assert!(check_len(&Pin("123".into())).is_err());
        assert!(check_len(&Pin("1234".into())).is_ok());
        assert!(check_len(&Pin("é".repeat(64))).is_ok());
        assert!(check_len(&Pin("x".repeat(65))).is_err());
    }
}
