use thiserror::Error;

/// Errors of the math layer. Messages never carry secret values.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    #[error("data too large for the modulus")]
    DataTooLarge,
    /// The one error every padding/decoding failure of a decryption maps to.
    #[error("decryption failed")]
    Decryption,
    #[error("combined result failed verification")]
    VerifyFailed,
    #[error("operating system randomness unavailable")]
    Random,
}

pub type Result<T> = std::result::Result<T, Error>;
