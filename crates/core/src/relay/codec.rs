//! Byte-level primitives for the relay's compact encodings. Input comes from the relay, i.e.
//! from whoever controls the module's host: every read is bounds-checked and returns an error,
//! never panics, and never allocates more than the input already holds.

use super::{RelayError, RelayResult};

/// Identifiers (party ids, key uids, session ids) are length-prefixed by one byte.
pub const MAX_ID_LEN: usize = 255;

/// Validates an identifier for the wire: 1 to 255 bytes (0 allowed only where it means "none").
pub(crate) fn check_id(s: &str, allow_empty: bool) -> RelayResult<()> {
    if s.len() > MAX_ID_LEN {
        return Err(RelayError::Malformed("identifier longer than 255 bytes"));
    }
    if s.is_empty() && !allow_empty {
        return Err(RelayError::Malformed("empty identifier"));
    }
    Ok(())
}

/// Writes an identifier already passed through `check_id` (types keep that invariant, so
/// encoding is infallible).
pub(crate) fn put_short_str(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.len() <= MAX_ID_LEN);
    out.push(s.len().min(MAX_ID_LEN) as u8);
    out.extend_from_slice(&s.as_bytes()[..s.len().min(MAX_ID_LEN)]);
}

/// A u32 length prefix and the bytes. Callers check the length fits a u32 when a body enters
/// an envelope (`seal`, `broadcast`, `from_bytes`), which keeps encoding infallible.
pub(crate) fn put_long_bytes(out: &mut Vec<u8>, b: &[u8]) {
    debug_assert!(u32::try_from(b.len()).is_ok());
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(b);
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> RelayResult<&'a [u8]> {
        if n > self.buf.len() {
            return Err(RelayError::Malformed("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> RelayResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> RelayResult<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> RelayResult<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> RelayResult<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn short_str(&mut self, allow_empty: bool) -> RelayResult<String> {
        let len = usize::from(self.u8()?);
        if len == 0 && !allow_empty {
            return Err(RelayError::Malformed("empty identifier"));
        }
        let raw = self.bytes(len)?;
        let s =
            std::str::from_utf8(raw).map_err(|_| RelayError::Malformed("identifier not UTF-8"))?;
        Ok(s.to_owned())
    }

    /// A u32-length-prefixed body. The length is checked against what is left before anything
    /// is allocated, so a forged huge length cannot exhaust memory.
    pub(crate) fn long_bytes(&mut self) -> RelayResult<&'a [u8]> {
        let len = usize::try_from(self.u32()?).map_err(|_| RelayError::TooLarge)?;
        self.bytes(len)
    }

    /// Strict parsing: trailing bytes are an error, so one message has exactly one encoding.
    pub(crate) fn finish(self) -> RelayResult<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(RelayError::Malformed("trailing bytes"))
        }
    }
}
