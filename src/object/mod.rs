//! Objects: typed attributes, the policy table, and the per-slot store of token objects
//! (a cache of the cells' metadata) and session objects (module memory only).

pub mod attr;
pub mod der;
pub mod generated;
pub mod import;
pub mod policy;
mod public_key_cache;
pub mod secret_key;
pub mod unwrapped;
pub mod vendor;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cryptoki_sys::*;
use keyfrag_client::{Attr, ObjectRecord};
use keyfrag_core::rsa_public::RsaPublic;

use crate::error::{Result, err};
use crate::ffi::AttrAnswer;
use crate::object::vendor::CKA_KEYFRAG_CUSTOMER;
use attr::{Attribute, decode_bool, decode_ulong};

/// One object. Private key parts are never here: a private key references its fragments on
/// the cells by `key_uid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Record id: 32 random hex digits, never reused; also CKA_UNIQUE_ID.
    pub id: String,
    pub key_uid: Option<String>,
    /// Native-encoded values of every attribute the object has (defaults filled in).
    pub attrs: BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>,
    /// The session that created a session object; None for token objects.
    pub owner: Option<CK_SESSION_HANDLE>,
}

impl Object {
    pub fn class(&self) -> CK_OBJECT_CLASS {
        self.ulong(CKA_CLASS).unwrap_or(CK_UNAVAILABLE_INFORMATION)
    }

    pub fn bool(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<bool> {
        self.attrs.get(&ty).and_then(|v| decode_bool(v))
    }

    pub fn ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        self.attrs.get(&ty).and_then(|v| decode_ulong(v))
    }

    pub fn is_token(&self) -> bool {
        self.bool(CKA_TOKEN).unwrap_or(false)
    }

    pub fn is_private(&self) -> bool {
        self.bool(CKA_PRIVATE).unwrap_or(true)
    }

    /// The answer to C_GetAttributeValue for one attribute.
    pub fn answer(&self, ty: CK_ATTRIBUTE_TYPE) -> AttrAnswer {
        if policy::is_sensitive(self.class(), ty) {
            return AttrAnswer::Sensitive;
        }
        if ty == CKA_UNIQUE_ID {
            return AttrAnswer::Value(self.id.as_bytes().to_vec());
        }
        match self.attrs.get(&ty) {
            Some(v) => AttrAnswer::Value(v.clone()),
            None => AttrAnswer::Invalid,
        }
    }

    /// Whether every template attribute equals the object's (sensitive ones never match).
    pub fn matches(&self, template: &[Attribute]) -> bool {
        template.iter().all(|a| match self.answer(a.ty) {
            AttrAnswer::Value(v) => v == a.value[..],
            _ => false,
        })
    }

    /// The customer fragment's fingerprint this key needs (CKA_KEYFRAG_CUSTOMER), if any.
    pub fn customer_fingerprint(&self) -> Option<&[u8]> {
        self.attrs
            .get(&CKA_KEYFRAG_CUSTOMER)
            .map(Vec::as_slice)
            .filter(|v| !v.is_empty())
    }

    /// The RSA public key of an RSA key object.
    pub fn rsa_public(&self) -> Result<RsaPublic> {
        if self.ulong(CKA_KEY_TYPE) != Some(CKK_RSA) {
            return Err(err(CKR_KEY_TYPE_INCONSISTENT));
        }
        let n = self
            .attrs
            .get(&CKA_MODULUS)
            .ok_or(err(CKR_KEY_TYPE_INCONSISTENT))?;
        let e = self
            .attrs
            .get(&CKA_PUBLIC_EXPONENT)
            .ok_or(err(CKR_KEY_TYPE_INCONSISTENT))?;
        public_key_cache::get_or_parse(n, e).map_err(|_| {
            tracing::warn!(object = %self.id, "stored RSA public key is invalid");
            err(CKR_KEY_TYPE_INCONSISTENT)
        })
    }

    /// Mechanisms this key may be used with (CKA_ALLOWED_MECHANISMS; an empty list allows all).
    pub fn allows(&self, mech: CK_MECHANISM_TYPE) -> bool {
        match self.attrs.get(&CKA_ALLOWED_MECHANISMS) {
            None => true,
            Some(v) if v.is_empty() => true,
            Some(v) => v
                .chunks(size_of::<CK_ULONG>())
                .filter_map(decode_ulong)
                .any(|m| m == mech),
        }
    }

    /// The record stored on the cells (token objects).
    #[allow(clippy::unnecessary_cast)] // CK_ULONG is 32 bits on some platforms
    pub fn to_record(&self) -> ObjectRecord {
        let class = self.class();
        ObjectRecord {
            id: self.id.clone(),
            key_uid: self.key_uid.clone(),
            attrs: self
                .attrs
                .iter()
                .map(|(t, v)| Attr {
                    kind: *t as u64,
                    value: policy::to_stored(class, *t, v),
                })
                .collect(),
        }
    }

    /// A token object from its stored record; None (with a log line) if malformed.
    #[allow(clippy::unnecessary_cast)]
    pub fn from_record(rec: &ObjectRecord) -> Option<Object> {
        let class_raw = rec.attr(CKA_CLASS as u64)?;
        let class = u64::from_le_bytes(class_raw.try_into().ok()?) as CK_OBJECT_CLASS;
        let mut attrs = BTreeMap::new();
        for a in &rec.attrs {
            let ty = a.kind as CK_ATTRIBUTE_TYPE;
            if ty as u64 != a.kind {
                continue;
            }
            match policy::from_stored(class, ty, &a.value) {
                Some(v) => {
                    attrs.insert(ty, v);
                }
                None => {
                    tracing::warn!(object = %rec.id, attribute = ty, "malformed stored attribute")
                }
            }
        }
        Some(Object {
            id: rec.id.clone(),
            key_uid: rec.key_uid.clone(),
            attrs,
            owner: None,
        })
    }
}

/// Public-key attributes every RSA key object carries (COMPAT item 2): CKA_PUBLIC_KEY_INFO,
/// and CKA_MODULUS_BITS on public keys.
pub fn fill_rsa_public(
    attrs: &mut BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>,
    class: CK_OBJECT_CLASS,
    key: &RsaPublic,
) {
    let n = key.modulus();
    let e = key.public_exponent();
    attrs.insert(CKA_PUBLIC_KEY_INFO, der::rsa_spki(&n, &e));
    // Normalised (no leading zeros), as every reader expects.
    attrs.insert(CKA_MODULUS, n);
    attrs.insert(CKA_PUBLIC_EXPONENT, e);
    if class == CKO_PUBLIC_KEY {
        attrs.insert(CKA_MODULUS_BITS, attr::encode_ulong(key.bits() as CK_ULONG));
    }
}

/// A slot's objects: token objects (cached from the cells, keyed by stable handles) and this
/// process's session objects.
#[derive(Default)]
pub struct ObjectStore {
    pub token: HashMap<CK_OBJECT_HANDLE, Arc<Object>>,
    token_ids: HashMap<String, CK_OBJECT_HANDLE>,
    pub session: HashMap<CK_OBJECT_HANDLE, Arc<Object>>,
    /// Metadata hash of the cached token objects; None when never loaded or stale.
    pub hash: Option<String>,
    pub loaded: bool,
}

impl ObjectStore {
    pub fn get(&self, h: CK_OBJECT_HANDLE) -> Option<Arc<Object>> {
        self.token.get(&h).or_else(|| self.session.get(&h)).cloned()
    }

    /// Replace the cached token objects, keeping the handles of objects that remain.
    pub fn set_token_objects(
        &mut self,
        hash: String,
        records: &[ObjectRecord],
        alloc: impl Fn() -> CK_OBJECT_HANDLE,
    ) {
        let mut token = HashMap::new();
        let mut ids = HashMap::new();
        for rec in records {
            let Some(obj) = Object::from_record(rec) else {
                tracing::warn!(object = %rec.id, "ignoring malformed token object");
                continue;
            };
            let h = self.token_ids.get(&rec.id).copied().unwrap_or_else(&alloc);
            ids.insert(rec.id.clone(), h);
            token.insert(h, Arc::new(obj));
        }
        self.token = token;
        self.token_ids = ids;
        self.hash = Some(hash);
        self.loaded = true;
    }

    /// Record a token object this process wrote (the cache is marked stale: the next refresh
    /// reloads from the cells).
    pub fn put_token(
        &mut self,
        obj: Object,
        alloc: impl Fn() -> CK_OBJECT_HANDLE,
    ) -> CK_OBJECT_HANDLE {
        let h = self.token_ids.get(&obj.id).copied().unwrap_or_else(alloc);
        self.token_ids.insert(obj.id.clone(), h);
        self.token.insert(h, Arc::new(obj));
        self.hash = None;
        h
    }

    pub fn remove(&mut self, h: CK_OBJECT_HANDLE) -> Option<Arc<Object>> {
        if let Some(o) = self.token.remove(&h) {
            self.token_ids.remove(&o.id);
            self.hash = None;
            return Some(o);
        }
        self.session.remove(&h)
    }

    /// Whether any object still references key material `uid`.
    pub fn uid_in_use(&self, uid: &str) -> bool {
        self.token
            .values()
            .chain(self.session.values())
            .any(|o| o.key_uid.as_deref() == Some(uid))
    }

    /// Whether a token object references key material `uid` (then it has no lease).
    pub fn uid_on_token(&self, uid: &str) -> bool {
        self.token
            .values()
            .any(|o| o.key_uid.as_deref() == Some(uid))
    }

    /// Uids of session keys whose fragments live under a lease (no token object uses them).
    pub fn leased_uids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .session
            .values()
            .filter_map(|o| o.key_uid.clone())
            .filter(|u| !self.uid_on_token(u))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Remove the session objects of one session; returns them.
    pub fn remove_owned_by(&mut self, s: CK_SESSION_HANDLE) -> Vec<Arc<Object>> {
        let hs: Vec<_> = self
            .session
            .iter()
            .filter(|(_, o)| o.owner == Some(s))
            .map(|(h, _)| *h)
            .collect();
        hs.iter().filter_map(|h| self.session.remove(h)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(class: CK_OBJECT_CLASS, extra: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Object {
        let mut attrs = BTreeMap::new();
        attrs.insert(CKA_CLASS, attr::encode_ulong(class));
        for (t, v) in extra {
            attrs.insert(*t, v.clone());
        }
        Object {
            id: "00112233445566778899aabbccddeeff".into(),
            key_uid: Some("ab".repeat(16)),
            attrs,
            owner: None,
        }
    }

    #[test]
    fn record_roundtrip() {
        let o = obj(
            CKO_PRIVATE_KEY,
            &[
                (CKA_LABEL, b"k".to_vec()),
                (CKA_KEY_TYPE, attr::encode_ulong(CKK_RSA)),
                (CKA_TOKEN, attr::encode_bool(true)),
                (
                    CKA_ALLOWED_MECHANISMS,
                    [CKM_RSA_PKCS, CKM_RSA_PKCS_PSS]
                        .iter()
                        .flat_map(|m| m.to_ne_bytes())
                        .collect(),
                ),
            ],
        );
        let rec = o.to_record();
        assert_eq!(rec.attr(0).unwrap(), 3u64.to_le_bytes()); // CKA_CLASS = CKO_PRIVATE_KEY
        let back = Object::from_record(&rec).unwrap();
        assert_eq!(back, o);
        assert!(back.allows(CKM_RSA_PKCS_PSS));
        assert!(!back.allows(CKM_RSA_PKCS_OAEP));
    }

    #[test]
    fn answers_and_matching() {
        let o = obj(CKO_PRIVATE_KEY, &[(CKA_ID, b"1".to_vec())]);
        assert!(matches!(
            o.answer(CKA_PRIVATE_EXPONENT),
            AttrAnswer::Sensitive
        ));
        assert!(matches!(o.answer(CKA_VALUE), AttrAnswer::Invalid));
        assert!(matches!(o.answer(CKA_UNIQUE_ID), AttrAnswer::Value(v) if v == o.id.as_bytes()));
        assert!(o.matches(&[Attribute::new(CKA_ID, b"1".to_vec())]));
        assert!(!o.matches(&[Attribute::new(CKA_ID, b"2".to_vec())]));
        assert!(!o.matches(&[Attribute::new(CKA_PRIVATE_EXPONENT, vec![])]));
        assert!(o.matches(&[]));
    }

    #[test]
    fn store_keeps_handles_and_counts_uids() {
        let mut s = ObjectStore::default();
        let next = std::sync::atomic::AtomicU64::new(10);
        let alloc = || next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as CK_OBJECT_HANDLE;
        let o = obj(CKO_DATA, &[]);
        let recs = vec![o.to_record()];
        s.set_token_objects("h1".into(), &recs, alloc);
        let h = *s.token.keys().next().unwrap();
        s.set_token_objects("h2".into(), &recs, alloc);
        assert_eq!(*s.token.keys().next().unwrap(), h);
        assert!(s.uid_in_use(&"ab".repeat(16)));
        assert!(s.uid_on_token(&"ab".repeat(16)));
        let mut so = obj(CKO_PRIVATE_KEY, &[]);
        so.key_uid = Some("cd".repeat(16));
        so.owner = Some(5);
        s.session.insert(99, Arc::new(so));
        assert_eq!(s.leased_uids(), vec!["cd".repeat(16)]);
        assert_eq!(s.remove_owned_by(5).len(), 1);
        assert!(s.remove(h).is_some());
        assert!(!s.uid_in_use(&"ab".repeat(16)));
    }
}
