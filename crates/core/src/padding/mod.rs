//! RFC 8017 encodings, done by the module (the `rsa` crate keeps its own private).

pub mod mgf1;
pub mod oaep;
pub mod pkcs1v15;
pub mod pss;
