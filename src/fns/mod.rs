//! The PKCS#11 functions, one file per chapter of the specification. Each file holds the
//! inner functions (`fn … -> Result<()>`) and the `api_function!` lines that export them.

pub mod crypt;
pub mod digest;
pub mod general;
pub mod keygen;
mod keygen_pool;
pub mod login;
pub mod object;
mod op;
pub mod random;
pub mod secret;
pub mod secret_keygen;
pub mod session;
pub mod sign;
pub mod slot;
pub mod unsupported;
pub mod wrap;

use cryptoki_sys::*;

use crate::error::{CkError, Result};

/// What the last call of an operation did under the two-call rule.
pub(crate) enum Step {
    /// Length query or partial step: the operation stays active.
    Keep,
    /// The operation finished.
    Done,
}

/// Apply the termination rule (COMPAT item 5): a length query and CKR_BUFFER_TOO_SMALL keep
/// the operation active; success ends it, and so does every other error.
pub(crate) fn settle<T>(op: &mut Option<T>, r: Result<Step>) -> Result<()> {
    match r {
        Ok(Step::Keep) => Ok(()),
        Ok(Step::Done) => {
            *op = None;
            Ok(())
        }
        Err(e) if e.rv() == CKR_BUFFER_TOO_SMALL => Err(e),
        Err(e) => {
            *op = None;
            Err(e)
        }
    }
}

/// A key handle that is not a visible object is an invalid *key* handle.
pub(crate) fn key_handle_error(e: CkError) -> CkError {
    if e.rv() == CKR_OBJECT_HANDLE_INVALID {
        CkError(CKR_KEY_HANDLE_INVALID)
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::err;

    #[test]
    fn settle_rules() {
        let mut op = Some(1);
        assert!(settle(&mut op, Ok(Step::Keep)).is_ok());
        assert!(op.is_some());
        assert_eq!(
            settle(&mut op, Err(err(CKR_BUFFER_TOO_SMALL)))
                .unwrap_err()
                .rv(),
            CKR_BUFFER_TOO_SMALL
        );
        assert!(op.is_some());
        assert!(settle(&mut op, Err(err(CKR_DEVICE_ERROR))).is_err());
        assert!(op.is_none());
        let mut op = Some(1);
        assert!(settle(&mut op, Ok(Step::Done)).is_ok());
        assert!(op.is_none());
    }
}
