//! Every `unsafe` block of the module lives here, each with its `// SAFETY:` argument.
//!
//! The C caller hands us raw pointers; these helpers turn them into owned Rust values (or
//! write owned values back) after the checks PKCS#11 requires, so that no other file ever
//! builds a slice from a pointer. Every helper takes pointers exactly as the C caller passed
//! them; the contract (stated once, here) is the PKCS#11 one: a non-NULL pointer points to at
//! least as many valid elements as the accompanying length says.

use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::error::{Result, err};
use crate::object::attr::Attribute;

/// A caller's element count as a slice length: no caller memory can hold more than isize::MAX
/// bytes, so a larger count is a bad argument (a slice that long would be undefined
/// behaviour before a single byte is read).
fn array_len<T>(count: CK_ULONG) -> Result<usize> {
    usize::try_from(count)
        .ok()
        .filter(|&n| {
            n.checked_mul(std::mem::size_of::<T>())
                .is_some_and(|b| b <= isize::MAX as usize)
        })
        .ok_or_else(|| err(CKR_ARGUMENTS_BAD))
}

/// `(ptr, len)` input bytes. NULL with len 0 is the empty slice (OpenSSL 3.2 signs empty data
/// that way); NULL with len > 0 is CKR_ARGUMENTS_BAD.
pub(crate) fn in_slice<'a>(ptr: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    let len = array_len::<u8>(len)?;
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes at `ptr` for the call;
    // `array_len` keeps the size within isize::MAX, as slices require.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `(ptr, len)` caller memory to fill (C_GenerateRandom). NULL with len > 0 → CKR_ARGUMENTS_BAD.
pub(crate) fn out_slice<'a>(ptr: *mut u8, len: CK_ULONG) -> Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    let len = array_len::<u8>(len)?;
    // SAFETY: non-NULL, and the caller guarantees `len` writable bytes at `ptr` for the call,
    // not aliased by anything of ours; `array_len` keeps the size within isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// A PIN or label passed as (ptr, len): copied, zeroized on drop, must be UTF-8.
pub(crate) fn in_secret_str(ptr: *const u8, len: CK_ULONG) -> Result<Zeroizing<String>> {
    let bytes = in_slice(ptr, len)?;
    let s = std::str::from_utf8(bytes).map_err(|_| err(CKR_ARGUMENTS_BAD))?;
    Ok(Zeroizing::new(s.to_owned()))
}

/// Read a struct the caller passed by pointer (CK_C_INITIALIZE_ARGS, CK_MECHANISM, CK_VERSION).
pub(crate) fn read_in<T: CStruct>(ptr: *const T) -> Result<T> {
    if ptr.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    // SAFETY: non-NULL; the caller guarantees a valid T there; T is a plain C struct
    // (integers and pointers), valid for any bit pattern; read_unaligned needs no alignment.
    Ok(unsafe { ptr.read_unaligned() })
}

/// Write one value to an out-pointer (CK_INFO, CK_SESSION_HANDLE, CK_ULONG, …).
pub(crate) fn write_out<T: CStruct>(ptr: *mut T, value: T) -> Result<()> {
    if ptr.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    // SAFETY: non-NULL; the caller guarantees room for one T there.
    unsafe { ptr.write_unaligned(value) };
    Ok(())
}

/// Plain C structs we read from or write to caller memory: integers, arrays of bytes and
/// pointers only, so every bit pattern is a valid value.
pub(crate) trait CStruct: Copy {}
impl CStruct for CK_ULONG {}
impl CStruct for CK_INFO {}
impl CStruct for CK_SLOT_INFO {}
impl CStruct for CK_TOKEN_INFO {}
impl CStruct for CK_SESSION_INFO {}
impl CStruct for CK_MECHANISM_INFO {}
impl CStruct for CK_MECHANISM {}
impl CStruct for CK_VERSION {}
impl CStruct for CK_C_INITIALIZE_ARGS {}
impl CStruct for CK_RSA_PKCS_PSS_PARAMS {}
impl CStruct for CK_RSA_PKCS_OAEP_PARAMS {}
impl CStruct for CK_GCM_PARAMS {}
impl CStruct for crate::mechanism::params::CkGcmParamsV240 {}
impl CStruct for CK_AES_CTR_PARAMS {}
impl CStruct for CK_INTERFACE {}
impl CStruct for *mut CK_FUNCTION_LIST {}
impl CStruct for *mut CK_INTERFACE {}

/// A mechanism parameter struct: `len` must be exactly its size (else
/// CKR_MECHANISM_PARAM_INVALID, as must a NULL pointer).
pub(crate) fn read_param<T: CStruct>(ptr: *const c_void, len: CK_ULONG) -> Result<T> {
    if ptr.is_null() || usize::try_from(len).ok() != Some(std::mem::size_of::<T>()) {
        return Err(err(CKR_MECHANISM_PARAM_INVALID));
    }
    read_in(ptr as *const T).map_err(|_| err(CKR_MECHANISM_PARAM_INVALID))
}

/// A NUL-terminated string (C_Initialize's pReserved as NSS passes it), read up to `max`
/// bytes. `Ok(None)` for NULL; not terminated within `max` or not UTF-8 → CKR_ARGUMENTS_BAD.
pub(crate) fn c_string(ptr: *const c_void, max: usize) -> Result<Option<String>> {
    if ptr.is_null() {
        return Ok(None);
    }
    let p = ptr as *const u8;
    let mut bytes = Vec::new();
    for i in 0..max {
        // SAFETY: the caller passes a NUL-terminated string; we read byte by byte and stop at
        // the terminator, so every byte read is within it.
        let b = unsafe { p.add(i).read() };
        if b == 0 {
            return String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| err(CKR_ARGUMENTS_BAD));
        }
        bytes.push(b);
    }
    Err(err(CKR_ARGUMENTS_BAD))
}

/// Blank-padded fixed-width field (labels, manufacturer, model), cut at a char boundary.
pub(crate) fn pad_str<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&s.as_bytes()[..end]);
    out
}

/// What the two-call rule did with an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// The data was written: the operation is finished.
    Data,
    /// NULL buffer: only the length was written; the operation stays active.
    LengthOnly,
}

/// An output buffer `(ptr, *len_ptr)` under the two-call rule.
pub(crate) struct OutBuf {
    ptr: *mut u8,
    len_ptr: *mut CK_ULONG,
    cap: Option<usize>,
}

impl OutBuf {
    /// NULL `len_ptr` → CKR_ARGUMENTS_BAD.
    pub(crate) fn new(ptr: *mut u8, len_ptr: *mut CK_ULONG) -> Result<OutBuf> {
        if len_ptr.is_null() {
            return Err(err(CKR_ARGUMENTS_BAD));
        }
        let cap = if ptr.is_null() {
            None
        } else {
            // SAFETY: len_ptr is non-NULL and points to the caller's CK_ULONG.
            let n = unsafe { len_ptr.read_unaligned() };
            Some(usize::try_from(n).unwrap_or(usize::MAX))
        };
        Ok(OutBuf { ptr, len_ptr, cap })
    }

    /// True when the caller only asks for the length (NULL buffer).
    pub(crate) fn is_query(&self) -> bool {
        self.cap.is_none()
    }

    /// Whether `n` bytes fit (a query never fits).
    pub(crate) fn fits(&self, n: usize) -> bool {
        self.cap.is_some_and(|c| c >= n)
    }

    /// Write the length only (a query, or a too-small buffer).
    pub(crate) fn set_len(&self, n: usize) {
        // SAFETY: len_ptr checked non-NULL in new().
        unsafe { self.len_ptr.write_unaligned(n as CK_ULONG) };
    }

    /// The two-call rule: NULL buffer → length, CKR_OK (`Written::LengthOnly`); too small →
    /// length and CKR_BUFFER_TOO_SMALL; else the data and its length (`Written::Data`).
    pub(crate) fn put(&self, data: &[u8]) -> Result<Written> {
        match self.cap {
            None => {
                self.set_len(data.len());
                Ok(Written::LengthOnly)
            }
            Some(c) if c < data.len() => {
                self.set_len(data.len());
                Err(err(CKR_BUFFER_TOO_SMALL))
            }
            Some(_) => {
                if !data.is_empty() {
                    // SAFETY: ptr non-NULL (cap is Some) with room for `c >= data.len()` bytes;
                    // source and destination cannot overlap (data is ours).
                    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr, data.len()) };
                }
                self.set_len(data.len());
                Ok(Written::Data)
            }
        }
    }
}

/// An array output (slot list, mechanism list, interface list) under the two-call rule.
pub(crate) fn out_array<T: CStruct>(
    ptr: *mut T,
    count_ptr: *mut CK_ULONG,
    items: &[T],
) -> Result<()> {
    if count_ptr.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    if ptr.is_null() {
        write_out(count_ptr, items.len() as CK_ULONG)?;
        return Ok(());
    }
    // SAFETY: count_ptr non-NULL, the caller's CK_ULONG.
    let cap = unsafe { count_ptr.read_unaligned() } as usize;
    write_out(count_ptr, items.len() as CK_ULONG)?;
    if cap < items.len() {
        return Err(err(CKR_BUFFER_TOO_SMALL));
    }
    for (i, item) in items.iter().enumerate() {
        // SAFETY: ptr non-NULL with room for `cap >= items.len()` elements.
        unsafe { ptr.add(i).write_unaligned(*item) };
    }
    Ok(())
}

/// C_FindObjects: write up to `max` handles, return how many were written.
pub(crate) fn out_handles(
    ptr: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count_ptr: *mut CK_ULONG,
    handles: &[CK_OBJECT_HANDLE],
) -> Result<usize> {
    if count_ptr.is_null() || (ptr.is_null() && max > 0) {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    let n = handles.len().min(max as usize);
    for (i, h) in handles[..n].iter().enumerate() {
        // SAFETY: ptr non-NULL (n > 0 implies max > 0) with room for `max >= n` handles.
        unsafe { ptr.add(i).write_unaligned(*h) };
    }
    write_out(count_ptr, n as CK_ULONG)?;
    Ok(n)
}

/// Parse a template into owned attributes (values copied; zeroized on drop). A NULL template
/// with count 0 is empty; NULL with count > 0, or an attribute whose pValue is NULL with a
/// length > 0, is CKR_ARGUMENTS_BAD; a repeated type is CKR_TEMPLATE_INCONSISTENT.
pub(crate) fn parse_template(ptr: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<Vec<Attribute>> {
    let raw = raw_template(ptr, count)?;
    let mut out: Vec<Attribute> = Vec::with_capacity(raw.len());
    for a in raw {
        let value = in_slice(a.pValue as *const u8, a.ulValueLen)?;
        if out.iter().any(|x| x.ty == a.type_) {
            tracing::debug!(attribute = a.type_, "template names an attribute twice");
            return Err(err(CKR_TEMPLATE_INCONSISTENT));
        }
        out.push(Attribute::new(a.type_, value.to_vec()));
    }
    Ok(out)
}

fn raw_template<'a>(ptr: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<&'a [CK_ATTRIBUTE]> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    let count = array_len::<CK_ATTRIBUTE>(count)?;
    // SAFETY: non-NULL; the caller guarantees `count` CK_ATTRIBUTEs there (C arrays of them
    // are aligned for the type); `array_len` keeps the size within isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// The answer for one attribute of C_GetAttributeValue.
#[derive(Debug)]
pub(crate) enum AttrAnswer {
    Value(Vec<u8>),
    /// Case 1: sensitive or unextractable.
    Sensitive,
    /// Case 2: not an attribute of this object.
    Invalid,
}

/// C_GetAttributeValue semantics (PKCS#11 3.0 §5.7.5): every attribute is processed; one
/// that cannot be returned gets ulValueLen = CK_UNAVAILABLE_INFORMATION; the result is
/// CKR_ATTRIBUTE_SENSITIVE if any was sensitive, else CKR_ATTRIBUTE_TYPE_INVALID if any was
/// invalid, else CKR_BUFFER_TOO_SMALL if any buffer was too small, else CKR_OK.
pub(crate) fn write_attribute_values(
    ptr: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    mut answer: impl FnMut(CK_ATTRIBUTE_TYPE) -> AttrAnswer,
) -> Result<()> {
    let raw = raw_template(ptr, count)?;
    let (mut sensitive, mut invalid, mut small) = (false, false, false);
    for (i, a) in raw.iter().copied().enumerate() {
        let new_len = match answer(a.type_) {
            AttrAnswer::Sensitive => {
                sensitive = true;
                CK_UNAVAILABLE_INFORMATION
            }
            AttrAnswer::Invalid => {
                invalid = true;
                CK_UNAVAILABLE_INFORMATION
            }
            AttrAnswer::Value(v) => {
                if a.pValue.is_null() {
                    v.len() as CK_ULONG
                } else if (a.ulValueLen as usize) < v.len() {
                    small = true;
                    CK_UNAVAILABLE_INFORMATION
                } else {
                    if !v.is_empty() {
                        // SAFETY: pValue non-NULL with room for ulValueLen >= v.len() bytes.
                        unsafe {
                            std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len())
                        };
                    }
                    v.len() as CK_ULONG
                }
            }
        };
        // SAFETY: `i < count`, within the caller's array; we write the length field only.
        unsafe { (*ptr.add(i)).ulValueLen = new_len };
    }
    if sensitive {
        Err(err(CKR_ATTRIBUTE_SENSITIVE))
    } else if invalid {
        Err(err(CKR_ATTRIBUTE_TYPE_INVALID))
    } else if small {
        Err(err(CKR_BUFFER_TOO_SMALL))
    } else {
        Ok(())
    }
}

/// A `CK_INTERFACE` in a static: its pointers point to other statics (the name and a
/// function list), which are immutable and live forever.
#[repr(transparent)]
pub(crate) struct StaticInterface(pub CK_INTERFACE);

// SAFETY: the pointers inside point to immutable statics; nothing writes through them.
unsafe impl Sync for StaticInterface {}

/// A write-once-per-process cell whose values are leaked, never freed: readers get
/// `&'static T` without locking. Replacing the value (after fork) forgets the old one, so
/// references handed out before stay valid and nothing inherited from the parent is dropped.
pub(crate) struct LeakCell<T> {
    ptr: AtomicPtr<T>,
}

impl<T> LeakCell<T> {
    pub(crate) const fn new() -> Self {
        LeakCell {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    pub(crate) fn get(&self) -> Option<&'static T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: every non-NULL pointer stored here came from Box::leak and is never freed.
        unsafe { p.as_ref() }
    }

    /// Install `make()` unless the current value satisfies `keep`; returns the value in use.
    pub(crate) fn get_or_replace(
        &self,
        keep: impl Fn(&T) -> bool,
        make: impl FnOnce() -> T,
    ) -> &'static T {
        let cur = self.ptr.load(Ordering::Acquire);
        // SAFETY: as in get().
        if let Some(v) = unsafe { cur.as_ref() }
            && keep(v)
        {
            return v;
        }
        let new: &'static mut T = Box::leak(Box::new(make()));
        let new_ptr: *mut T = new;
        match self
            .ptr
            .compare_exchange(cur, new_ptr, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                // SAFETY: new_ptr came from Box::leak just above.
                unsafe { &*new_ptr }
            }
            // Another thread installed one first: use theirs (ours stays leaked, tiny).
            Err(theirs) => {
                // SAFETY: as in get(); non-NULL because a value was installed.
                unsafe { &*theirs }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_slice_rules() {
        assert_eq!(in_slice(std::ptr::null(), 0).unwrap(), &[] as &[u8]);
        assert_eq!(
            in_slice(std::ptr::null(), 3).unwrap_err().rv(),
            CKR_ARGUMENTS_BAD
        );
        let d = [1u8, 2, 3];
        assert_eq!(in_slice(d.as_ptr(), 2).unwrap(), &[1, 2]);
    }

    #[test]
    fn pad_str_pads_and_cuts_at_char_boundary() {
        let p: [u8; 8] = pad_str("abc");
        assert_eq!(&p, b"abc     ");
        let p: [u8; 4] = pad_str("abcdef");
        assert_eq!(&p, b"abcd");
        let p: [u8; 4] = pad_str("abé"); // é is 2 bytes: fits exactly
        assert_eq!(&p, "abé".as_bytes());
        let p: [u8; 3] = pad_str("abé");
        assert_eq!(&p, b"ab ");
    }

    fn out_buffer(ptr: *mut u8, len_ptr: *mut CK_ULONG, bytes: &[u8]) -> Result<Written> {
        OutBuf::new(ptr, len_ptr)?.put(bytes)
    }

    #[test]
    fn two_call_rule() {
        let data = [9u8; 5];
        let mut len: CK_ULONG = 0;
        assert_eq!(
            out_buffer(std::ptr::null_mut(), &mut len, &data).unwrap(),
            Written::LengthOnly
        );
        assert_eq!(len, 5);
        let mut small = [0u8; 4];
        len = 4;
        assert_eq!(
            out_buffer(small.as_mut_ptr(), &mut len, &data)
                .unwrap_err()
                .rv(),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(len, 5);
        assert_eq!(small, [0; 4]);
        let mut big = [0u8; 8];
        len = 8;
        assert_eq!(
            out_buffer(big.as_mut_ptr(), &mut len, &data).unwrap(),
            Written::Data
        );
        assert_eq!(len, 5);
        assert_eq!(&big[..5], &data);
        assert_eq!(
            out_buffer(big.as_mut_ptr(), std::ptr::null_mut(), &data)
                .unwrap_err()
                .rv(),
            CKR_ARGUMENTS_BAD
        );
    }

    #[test]
    fn arrays_two_call() {
        let items: [CK_ULONG; 3] = [7, 8, 9];
        let mut n: CK_ULONG = 0;
        out_array(std::ptr::null_mut(), &mut n, &items).unwrap();
        assert_eq!(n, 3);
        let mut buf = [0 as CK_ULONG; 2];
        n = 2;
        assert_eq!(
            out_array(buf.as_mut_ptr(), &mut n, &items)
                .unwrap_err()
                .rv(),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(n, 3);
        let mut buf = [0 as CK_ULONG; 3];
        out_array(buf.as_mut_ptr(), &mut n, &items).unwrap();
        assert_eq!(buf, items);
    }

    fn attr(ty: CK_ATTRIBUTE_TYPE, v: &mut [u8]) -> CK_ATTRIBUTE {
        CK_ATTRIBUTE {
            type_: ty,
            pValue: if v.is_empty() {
                std::ptr::null_mut()
            } else {
                v.as_mut_ptr() as *mut c_void
            },
            ulValueLen: v.len() as CK_ULONG,
        }
    }

    #[test]
    fn template_parsing() {
        let mut t1 = [1u8];
        let mut l = *b"label";
        let tpl = [
            attr(CKA_TOKEN, &mut t1),
            attr(CKA_LABEL, &mut l),
            attr(CKA_ID, &mut []),
        ];
        let parsed = parse_template(tpl.as_ptr(), 3).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].ty, CKA_TOKEN);
        assert!(parsed[0].as_bool().unwrap());
        assert_eq!(&parsed[1].value[..], b"label");
        assert!(parsed[2].value.is_empty());
        assert!(parse_template(std::ptr::null(), 0).unwrap().is_empty());
        assert_eq!(
            parse_template(std::ptr::null(), 1).unwrap_err().rv(),
            CKR_ARGUMENTS_BAD
        );
        let bad = [CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: std::ptr::null_mut(),
            ulValueLen: 4,
        }];
        assert_eq!(
            parse_template(bad.as_ptr(), 1).unwrap_err().rv(),
            CKR_ARGUMENTS_BAD
        );
        let dup = [attr(CKA_TOKEN, &mut [1]), attr(CKA_TOKEN, &mut [0])];
        assert_eq!(
            parse_template(dup.as_ptr(), 2).unwrap_err().rv(),
            CKR_TEMPLATE_INCONSISTENT
        );
    }

    #[test]
    fn attribute_values_precedence() {
        let mut big = [0u8; 16];
        let mut small = [0u8; 1];
        let mut tpl = [
            attr(CKA_LABEL, &mut big),
            CK_ATTRIBUTE {
                type_: CKA_ID,
                pValue: std::ptr::null_mut(),
                ulValueLen: 0,
            },
            attr(CKA_MODULUS, &mut small),
            attr(CKA_PRIVATE_EXPONENT, &mut []),
            attr(CKA_VALUE, &mut []),
        ];
        let rv = write_attribute_values(tpl.as_mut_ptr(), 5, |t| match t {
            CKA_LABEL => AttrAnswer::Value(b"abc".to_vec()),
            CKA_ID => AttrAnswer::Value(b"12".to_vec()),
            CKA_MODULUS => AttrAnswer::Value(vec![1, 2, 3]),
            CKA_PRIVATE_EXPONENT => AttrAnswer::Sensitive,
            _ => AttrAnswer::Invalid,
        });
        assert_eq!(rv.unwrap_err().rv(), CKR_ATTRIBUTE_SENSITIVE);
        assert_eq!(tpl[0].ulValueLen, 3);
        assert_eq!(&big[..3], b"abc");
        assert_eq!(tpl[1].ulValueLen, 2);
        assert_eq!(tpl[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(tpl[3].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(tpl[4].ulValueLen, CK_UNAVAILABLE_INFORMATION);

        let mut tpl = [attr(CKA_VALUE, &mut []), attr(CKA_MODULUS, &mut small)];
        let rv = write_attribute_values(tpl.as_mut_ptr(), 2, |t| {
            if t == CKA_VALUE {
                AttrAnswer::Invalid
            } else {
                AttrAnswer::Value(vec![1, 2])
            }
        });
        assert_eq!(rv.unwrap_err().rv(), CKR_ATTRIBUTE_TYPE_INVALID);
        let mut tpl = [attr(CKA_MODULUS, &mut small)];
        let rv = write_attribute_values(tpl.as_mut_ptr(), 1, |_| AttrAnswer::Value(vec![1, 2]));
        assert_eq!(rv.unwrap_err().rv(), CKR_BUFFER_TOO_SMALL);
    }

    #[test]
    fn c_strings() {
        let s = b"config=/x/y.toml\0";
        assert_eq!(
            c_string(s.as_ptr() as *const c_void, 100).unwrap().unwrap(),
            "config=/x/y.toml"
        );
        assert_eq!(c_string(std::ptr::null(), 100).unwrap(), None);
        assert_eq!(
            c_string(s.as_ptr() as *const c_void, 4).unwrap_err().rv(),
            CKR_ARGUMENTS_BAD
        );
    }

    #[test]
    fn params_need_exact_size() {
        let p = CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            sLen: 32,
        };
        let ptr = &p as *const _ as *const c_void;
        let got: CK_RSA_PKCS_PSS_PARAMS =
            read_param(ptr, std::mem::size_of_val(&p) as CK_ULONG).unwrap();
        assert_eq!(got.sLen, 32);
        assert_eq!(
            read_param::<CK_RSA_PKCS_PSS_PARAMS>(ptr, 8)
                .unwrap_err()
                .rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            read_param::<CK_RSA_PKCS_PSS_PARAMS>(std::ptr::null(), 24)
                .unwrap_err()
                .rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
    }
}
