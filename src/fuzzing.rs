//! Entry points for the fuzz targets in fuzz/ and for their corpus replay in
//! tests/fuzz_replay.rs. Each takes arbitrary bytes, shapes them into what the C edge hands
//! the safe layer (owned attribute templates, a CK_MECHANISM whose pointers are valid), runs
//! the parsers and checks, and must not panic. Not part of the module's API.

// CK_ULONG is 64 bits here and 32 on some platforms; the casts are for those.
#![allow(clippy::unnecessary_cast)]

use std::collections::BTreeMap;
use std::ffi::c_void;

use cryptoki_sys::*;
use keyfrag_client::{Attr, ObjectRecord};

use crate::mechanism::params::{self, Params};
use crate::object::attr::Attribute;
use crate::object::{Object, policy};

/// Sequential reads that run dry quietly (a short input is a valid input).
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let n = self.0.len().min(8);
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(b)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }
}

const CLASSES: [CK_OBJECT_CLASS; 5] = [
    CKO_DATA,
    CKO_CERTIFICATE,
    CKO_PUBLIC_KEY,
    CKO_PRIVATE_KEY,
    CKO_SECRET_KEY,
];

/// A class: mostly the supported ones, sometimes any number.
fn class(r: &mut Bytes) -> CK_OBJECT_CLASS {
    match r.u8().unwrap_or(0) as usize {
        i if i < CLASSES.len() => CLASSES[i],
        _ => r.u64() as CK_OBJECT_CLASS,
    }
}

/// An attribute type: mostly one the policy table knows, sometimes any number.
fn attribute_type(r: &mut Bytes) -> CK_ATTRIBUTE_TYPE {
    match r.u8().unwrap_or(0) as usize {
        i if i < policy::RULES.len() => policy::RULES[i].ty,
        0xff => r.u64() as CK_ATTRIBUTE_TYPE,
        i => CKA_VENDOR_DEFINED + i as CK_ATTRIBUTE_TYPE,
    }
}

/// Input: a class, then up to 64 of (type, length byte, value).
fn template(r: &mut Bytes) -> Vec<Attribute> {
    let mut out = Vec::new();
    while !r.0.is_empty() && out.len() < 64 {
        let ty = attribute_type(r);
        let len = r.u8().unwrap_or(0) as usize;
        out.push(Attribute::new(ty, r.take(len).to_vec()));
    }
    out
}

/// A create/copy/set template against the policy table, the stored encoding both ways, and
/// an object record as a cell might return it.
pub fn attribute_template(data: &[u8]) {
    let mut r = Bytes(data);
    let class = class(&mut r);
    let template = template(&mut r);
    let built = policy::build(class, &template);
    let _ = policy::build_generated(class, &template);
    if let Ok(map) = &built {
        for (&ty, v) in map {
            let stored = policy::to_stored(class, ty, v);
            assert_eq!(
                policy::from_stored(class, ty, &stored).as_deref(),
                Some(&v[..]),
                "stored encoding does not round-trip for {ty:#x}"
            );
        }
    }
    let current = built.as_ref().ok();
    for a in &template {
        let cur = current.and_then(|m: &BTreeMap<_, Vec<u8>>| m.get(&a.ty).map(|v| &v[..]));
        let _ = policy::check_set(class, a, cur);
        let _ = policy::check_copy(class, a, cur);
    }
    // The same bytes as a stored record from a cell (hostile: the cell may be compromised).
    let record = ObjectRecord {
        id: "00".repeat(16),
        key_uid: None,
        attrs: std::iter::once(Attr {
            kind: CKA_CLASS as u64,
            value: (class as u64).to_le_bytes().to_vec(),
        })
        .chain(template.iter().map(|a| Attr {
            kind: a.ty as u64,
            value: a.value.to_vec(),
        }))
        .collect(),
    };
    if let Some(obj) = Object::from_record(&record) {
        for a in &template {
            let _ = obj.answer(a.ty);
        }
        let _ = obj.matches(&template);
        let _ = obj.rsa_public();
        let _ = obj.to_record();
    }
}

/// Mechanisms with and without parameters, and a few that are no mechanism of ours.
const MECHANISMS: [CK_MECHANISM_TYPE; 16] = [
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_X_509,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA256,
    CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_AES_CBC,
    CKM_VENDOR_DEFINED,
    0,
    CK_UNAVAILABLE_INFORMATION,
];

/// Where the parameter struct lives: an OAEP struct (a PSS struct is its first three fields)
/// with room after it, so any declared length up to `size_of::<Room>()` stays in bounds.
#[repr(C)]
struct Room {
    params: CK_RSA_PKCS_OAEP_PARAMS,
    spare: [u8; 24],
}

/// A CK_MECHANISM built from the input as a caller might pass it: a type, a parameter struct
/// (PSS, OAEP, or none) with fields from the input, a declared length that may be wrong, and
/// pointers that are NULL or valid — never dangling, since the caller's memory is trusted.
pub fn mechanism_parameters(data: &[u8]) {
    let mut r = Bytes(data);
    let ty = match r.u8().unwrap_or(0) as usize {
        i if i < MECHANISMS.len() => MECHANISMS[i],
        _ => r.u64() as CK_MECHANISM_TYPE,
    };
    let flags = r.u8().unwrap_or(0);
    let (a, b, c) = (r.u64(), r.u64(), r.u64());
    let label = r.take(usize::from(r.0.first().copied().unwrap_or(0)));
    let label_ptr = if flags & 0x04 != 0 {
        std::ptr::null_mut()
    } else {
        label.as_ptr() as *mut c_void
    };
    // NULL label pointers may claim any length; valid ones at most what is there.
    let label_len = if label_ptr.is_null() {
        c as CK_ULONG
    } else {
        (c as usize % (label.len() + 1)) as CK_ULONG
    };
    let room_size = std::mem::size_of::<Room>();
    let mut room = Room {
        params: CK_RSA_PKCS_OAEP_PARAMS {
            hashAlg: 0,
            mgf: 0,
            source: 0,
            pSourceData: std::ptr::null_mut(),
            ulSourceDataLen: 0,
        },
        spare: [0; 24],
    };
    let size = match (flags >> 3) & 3 {
        1 => {
            // CK_RSA_PKCS_PSS_PARAMS {hashAlg, mgf, sLen}: the same first three fields.
            room.params.hashAlg = a as CK_ULONG;
            room.params.mgf = b as CK_ULONG;
            room.params.source = c as CK_ULONG;
            std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>()
        }
        2 => {
            room.params = CK_RSA_PKCS_OAEP_PARAMS {
                hashAlg: a as CK_ULONG,
                mgf: b as CK_ULONG,
                source: (c >> 32) as CK_ULONG,
                pSourceData: label_ptr,
                ulSourceDataLen: label_len,
            };
            std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>()
        }
        _ => 0,
    };
    let declared = if flags & 0x02 != 0 {
        usize::from(flags >> 5) * 8 % (room_size + 1)
    } else {
        size
    };
    let mech = CK_MECHANISM {
        mechanism: ty,
        pParameter: if flags & 0x01 != 0 {
            std::ptr::null_mut()
        } else {
            (&mut room as *mut Room).cast::<c_void>()
        },
        ulParameterLen: declared as CK_ULONG,
    };
    if let Ok(m) = params::parse(&mech) {
        assert_eq!(m.ty, ty);
        match m.params {
            Params::Pss(p) => assert!(p.salt_len <= 1024),
            Params::Oaep(p) => assert!(p.label.len() <= label.len()),
            Params::Gcm(p) => assert!((12..=16).contains(&p.tag_len)),
            Params::Iv(iv) => assert_eq!(iv.len(), 16),
            Params::Ctr { bits, .. } => assert!((1..=128).contains(&bits)),
            Params::None => {}
        }
    }
}
