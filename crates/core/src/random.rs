//! OS randomness.

use crate::{Error, Result};

pub fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::Random)
}

/// A fresh random 128-bit identifier as 32 lowercase hex digits (key uids, object ids, txids).
pub fn uid_hex() -> Result<String> {
    let mut b = [0u8; 16];
    fill(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
