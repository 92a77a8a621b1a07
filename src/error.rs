//! The module's one error type and the one table that maps every error to a `CK_RV`.
//!
//! Inner functions return `Result<T, CkError>`; the export macro turns the error into the
//! return value of the C entry point. Errors carry only a CKR code: messages with context are
//! logged where the error arises, never with secrets or data.

use cryptoki_sys::*;
use keyfrag_client::{ClientError, ErrorKind};

/// A PKCS#11 error: a `CK_RV` other than `CKR_OK`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CkError(pub CK_RV);

pub type Result<T> = std::result::Result<T, CkError>;

impl CkError {
    pub fn rv(self) -> CK_RV {
        self.0
    }
}

impl std::fmt::Debug for CkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(rv_name(self.0))
    }
}

impl std::fmt::Display for CkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(rv_name(self.0))
    }
}

/// Shorthand: `Err(err(CKR_ARGUMENTS_BAD))`.
pub fn err(rv: CK_RV) -> CkError {
    CkError(rv)
}

/// The client error table: one CKR per client error kind.
pub fn client_rv(kind: ErrorKind) -> CK_RV {
    match kind {
        ErrorKind::Config => CKR_GENERAL_ERROR,
        ErrorKind::Device => CKR_DEVICE_ERROR,
        ErrorKind::PinIncorrect => CKR_PIN_INCORRECT,
        ErrorKind::PinLocked => CKR_PIN_LOCKED,
        ErrorKind::PinLenRange => CKR_PIN_LEN_RANGE,
        ErrorKind::UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
        // PKCS#11 3.0 has no CKR_TOKEN_NOT_INITIALIZED (3.2 added it): the token cannot be
        // used by the library until C_InitToken.
        ErrorKind::TokenNotInitialized => CKR_TOKEN_NOT_RECOGNIZED,
        ErrorKind::UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
        ErrorKind::KeyNotFound => CKR_KEY_HANDLE_INVALID,
        // A wrong partial is a faulty device; the result is never returned.
        ErrorKind::VerifyFailed => CKR_DEVICE_ERROR,
        ErrorKind::Refused => CKR_FUNCTION_FAILED,
        ErrorKind::Cancelled => CKR_FUNCTION_CANCELED,
        // Only after every retry at a fresh epoch: the cells keep disagreeing.
        ErrorKind::EpochMoved => CKR_DEVICE_ERROR,
        // Only refresh routes answer it, and the module never calls them.
        ErrorKind::RefreshPaused => CKR_FUNCTION_FAILED,
    }
}

/// The core error table, for errors not mapped more precisely by a mechanism.
pub fn core_rv(e: &keyfrag_core::Error) -> CK_RV {
    use keyfrag_core::Error as E;
    match e {
        E::InvalidInput(_) => CKR_DATA_INVALID,
        E::DataTooLarge => CKR_DATA_LEN_RANGE,
        E::Decryption => CKR_ENCRYPTED_DATA_INVALID,
        E::VerifyFailed => CKR_DEVICE_ERROR,
        E::Random => CKR_FUNCTION_FAILED,
    }
}

impl From<ClientError> for CkError {
    fn from(e: ClientError) -> Self {
        // Client messages name the cell and the step and never carry secrets.
        match e.kind {
            ErrorKind::Device | ErrorKind::VerifyFailed | ErrorKind::Config => {
                tracing::warn!(kind = ?e.kind, "cluster: {}", e.message)
            }
            _ => tracing::debug!(kind = ?e.kind, "cluster: {}", e.message),
        }
        CkError(client_rv(e.kind))
    }
}

impl From<keyfrag_core::Error> for CkError {
    fn from(e: keyfrag_core::Error) -> Self {
        if e == keyfrag_core::Error::VerifyFailed {
            tracing::error!(
                "a combined RSA result failed verification: a cell returned a wrong partial"
            );
        }
        CkError(core_rv(&e))
    }
}

/// The name of a return value, for logs.
pub fn rv_name(rv: CK_RV) -> &'static str {
    macro_rules! names {
        ($($c:ident),* $(,)?) => {
            match rv {
                $($c => stringify!($c),)*
                _ => "CKR_(other)",
            }
        };
    }
    names!(
        CKR_OK,
        CKR_CANCEL,
        CKR_HOST_MEMORY,
        CKR_SLOT_ID_INVALID,
        CKR_GENERAL_ERROR,
        CKR_FUNCTION_FAILED,
        CKR_ARGUMENTS_BAD,
        CKR_NO_EVENT,
        CKR_NEED_TO_CREATE_THREADS,
        CKR_CANT_LOCK,
        CKR_ATTRIBUTE_READ_ONLY,
        CKR_ATTRIBUTE_SENSITIVE,
        CKR_ATTRIBUTE_TYPE_INVALID,
        CKR_ATTRIBUTE_VALUE_INVALID,
        CKR_ACTION_PROHIBITED,
        CKR_DATA_INVALID,
        CKR_DATA_LEN_RANGE,
        CKR_DEVICE_ERROR,
        CKR_DEVICE_MEMORY,
        CKR_DEVICE_REMOVED,
        CKR_ENCRYPTED_DATA_INVALID,
        CKR_ENCRYPTED_DATA_LEN_RANGE,
        CKR_FUNCTION_CANCELED,
        CKR_FUNCTION_NOT_PARALLEL,
        CKR_FUNCTION_NOT_SUPPORTED,
        CKR_KEY_HANDLE_INVALID,
        CKR_KEY_SIZE_RANGE,
        CKR_KEY_TYPE_INCONSISTENT,
        CKR_KEY_FUNCTION_NOT_PERMITTED,
        CKR_KEY_UNEXTRACTABLE,
        CKR_MECHANISM_INVALID,
        CKR_MECHANISM_PARAM_INVALID,
        CKR_OBJECT_HANDLE_INVALID,
        CKR_OPERATION_ACTIVE,
        CKR_OPERATION_NOT_INITIALIZED,
        CKR_PIN_INCORRECT,
        CKR_PIN_INVALID,
        CKR_PIN_LEN_RANGE,
        CKR_PIN_EXPIRED,
        CKR_PIN_LOCKED,
        CKR_SESSION_CLOSED,
        CKR_SESSION_COUNT,
        CKR_SESSION_HANDLE_INVALID,
        CKR_SESSION_PARALLEL_NOT_SUPPORTED,
        CKR_SESSION_READ_ONLY,
        CKR_SESSION_EXISTS,
        CKR_SESSION_READ_ONLY_EXISTS,
        CKR_SESSION_READ_WRITE_SO_EXISTS,
        CKR_SIGNATURE_INVALID,
        CKR_SIGNATURE_LEN_RANGE,
        CKR_TEMPLATE_INCOMPLETE,
        CKR_TEMPLATE_INCONSISTENT,
        CKR_TOKEN_NOT_PRESENT,
        CKR_TOKEN_NOT_RECOGNIZED,
        CKR_TOKEN_WRITE_PROTECTED,
        CKR_USER_ALREADY_LOGGED_IN,
        CKR_USER_NOT_LOGGED_IN,
        CKR_USER_PIN_NOT_INITIALIZED,
        CKR_USER_TYPE_INVALID,
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
        CKR_USER_TOO_MANY_TYPES,
        CKR_RANDOM_SEED_NOT_SUPPORTED,
        CKR_RANDOM_NO_RNG,
        CKR_BUFFER_TOO_SMALL,
        CKR_INFORMATION_SENSITIVE,
        CKR_CRYPTOKI_NOT_INITIALIZED,
        CKR_CRYPTOKI_ALREADY_INITIALIZED,
        CKR_MUTEX_BAD,
        CKR_MUTEX_NOT_LOCKED,
        CKR_FUNCTION_REJECTED,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_kinds_map_to_spec_codes() {
        assert_eq!(client_rv(ErrorKind::Device), CKR_DEVICE_ERROR);
        assert_eq!(client_rv(ErrorKind::PinIncorrect), CKR_PIN_INCORRECT);
        assert_eq!(client_rv(ErrorKind::PinLocked), CKR_PIN_LOCKED);
        assert_eq!(client_rv(ErrorKind::KeyNotFound), CKR_KEY_HANDLE_INVALID);
        assert_eq!(client_rv(ErrorKind::VerifyFailed), CKR_DEVICE_ERROR);
        assert_eq!(
            client_rv(ErrorKind::UserNotLoggedIn),
            CKR_USER_NOT_LOGGED_IN
        );
        let e: CkError = ClientError::new(ErrorKind::PinLenRange, "x").into();
        assert_eq!(e.rv(), CKR_PIN_LEN_RANGE);
    }

    #[test]
    fn names() {
        assert_eq!(rv_name(CKR_BUFFER_TOO_SMALL), "CKR_BUFFER_TOO_SMALL");
        assert_eq!(
            format!("{:?}", CkError(CKR_DEVICE_ERROR)),
            "CKR_DEVICE_ERROR"
        );
    }
}
