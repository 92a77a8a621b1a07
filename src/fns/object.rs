//! Object management: C_CreateObject, C_CopyObject, C_DestroyObject, C_GetObjectSize,
//! C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit, C_FindObjects,
//! C_FindObjectsFinal.
//!
//! Token objects are written to every cell (two-phase) and cached; session objects live in
//! module memory. Key material is referenced by key uid and shared by copies.

use std::sync::Arc;

use cryptoki_sys::*;
use keyfrag_client::UserKind;
use keyfrag_core::random;

use crate::error::{CkError, Result, err};
use crate::export::api_function;
use crate::ffi::{self, AttrAnswer};
use crate::object::attr::{self, Attribute};
use crate::object::vendor::CKA_KEYFRAG_EPOCH;
use crate::object::{Object, fill_rsa_public, import, policy};
use crate::state::{self, FindState, Session, Slot, State, lock};

api_function!(C_CreateObject(session: CK_SESSION_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG, out: *mut CK_OBJECT_HANDLE) => create_object);
api_function!(C_CopyObject(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG, out: *mut CK_OBJECT_HANDLE) => copy_object);
api_function!(C_DestroyObject(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) => destroy_object);
api_function!(C_GetObjectSize(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, size: *mut CK_ULONG) => get_object_size);
api_function!(C_GetAttributeValue(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG) => get_attribute_value);
api_function!(C_SetAttributeValue(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG) => set_attribute_value);
api_function!(C_FindObjectsInit(session: CK_SESSION_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG) => find_objects_init);
api_function!(C_FindObjects(session: CK_SESSION_HANDLE, out: *mut CK_OBJECT_HANDLE, max: CK_ULONG, count: *mut CK_ULONG) => find_objects);
api_function!(C_FindObjectsFinal(session: CK_SESSION_HANDLE) => find_objects_final);

fn template_bool(t: &[Attribute], ty: CK_ATTRIBUTE_TYPE) -> Result<Option<bool>> {
    attr::find(t, ty).map(|a| a.as_bool()).transpose()
}

/// May this session create/modify an object with these properties?
pub(crate) fn check_access(sess: &Session, slot: &Slot, token: bool, private: bool) -> Result<()> {
    if token && !sess.rw {
        return Err(err(CKR_SESSION_READ_ONLY));
    }
    if private && !slot.user_logged_in() {
        return Err(err(CKR_USER_NOT_LOGGED_IN));
    }
    Ok(())
}

/// Store a new object: token objects on the cells (then in the cache), session objects in
/// memory. Returns its handle.
pub(crate) fn store(st: &State, slot: &Slot, obj: Object) -> Result<CK_OBJECT_HANDLE> {
    if obj.is_token() {
        slot.cluster.write_objects(vec![obj.to_record()], vec![])?;
        Ok(lock(&slot.objects).put_token(obj, state::next_handle))
    } else {
        let has_key = obj.key_uid.is_some();
        let h = state::next_handle();
        lock(&slot.objects).session.insert(h, Arc::new(obj));
        if has_key {
            st.ensure_renewer();
        }
        Ok(h)
    }
}

fn create_object(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    out: *mut CK_OBJECT_HANDLE,
) -> Result<()> {
    state::check_session(session)?;
    let template = ffi::parse_template(template, count)?;
    if out.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let h = create(st, &sess, slot, session, &template)?;
        ffi::write_out(out, h)
    })
}

/// Create an object from a parsed template (C_CreateObject, and C_UnwrapKey with the
/// unwrapped key's attributes added): its handle.
pub(crate) fn create(
    st: &State,
    sess: &Session,
    slot: &Slot,
    session: CK_SESSION_HANDLE,
    template: &[Attribute],
) -> Result<CK_OBJECT_HANDLE> {
    let class = attr::find(template, CKA_CLASS)
        .ok_or_else(|| {
            tracing::warn!("C_CreateObject template lacks CKA_CLASS");
            err(CKR_TEMPLATE_INCOMPLETE)
        })?
        .as_ulong()?;
    if class == CKO_SECRET_KEY {
        tracing::warn!(
            "C_CreateObject: secret keys cannot be imported: keyfrag's secret keys are PRF \
                 keys shared by the cells, and a given AES or HMAC key cannot be turned into \
                 PRF shares; generate one with C_GenerateKey"
        );
        return Err(err(CKR_TEMPLATE_INCONSISTENT));
    }
    let token = template_bool(template, CKA_TOKEN)?.unwrap_or(false);
    let private = template_bool(template, CKA_PRIVATE)?.unwrap_or(class == CKO_PRIVATE_KEY);
    check_access(sess, slot, token, private)?;
    // An unsupported key type (EC, …) is CKR_ATTRIBUTE_VALUE_INVALID, before the RSA
    // attributes its template lacks would make it look incomplete.
    if matches!(class, CKO_PRIVATE_KEY | CKO_PUBLIC_KEY)
        && let Some(key_type) = attr::find(template, CKA_KEY_TYPE)
        && key_type.as_ulong()? != CKK_RSA
    {
        tracing::warn!(
            key_type = key_type.as_ulong()?,
            "only CKK_RSA keys are supported"
        );
        return Err(err(CKR_ATTRIBUTE_VALUE_INVALID));
    }
    let mut attrs = policy::build(class, template)?;
    let mut key_uid = None;
    match class {
        CKO_PRIVATE_KEY => {
            // Storing fragments needs the user's login on the cells.
            if !slot.user_logged_in() {
                return Err(err(CKR_USER_NOT_LOGGED_IN));
            }
            key_uid = Some(import::rsa_private(slot, template, &mut attrs, token)?);
        }
        CKO_PUBLIC_KEY => {
            let key = import::rsa_public(&attrs)?;
            fill_rsa_public(&mut attrs, class, &key);
        }
        CKO_CERTIFICATE
            if attrs
                .get(&CKA_CERTIFICATE_TYPE)
                .and_then(|v| attr::decode_ulong(v))
                != Some(CKC_X_509) =>
        {
            tracing::warn!("only CKC_X_509 certificates are supported");
            return Err(err(CKR_ATTRIBUTE_VALUE_INVALID));
        }
        _ => {}
    }
    let obj = Object {
        id: random::uid_hex().map_err(CkError::from)?,
        key_uid: key_uid.clone(),
        attrs,
        owner: if token { None } else { Some(session) },
    };
    let h = match store(st, slot, obj) {
        Ok(h) => h,
        Err(e) => {
            if let Some(uid) = key_uid
                && let Err(de) = slot.cluster.delete_key(&uid)
            {
                tracing::warn!(
                    "could not delete fragments of an object that was not stored: {}",
                    de.message
                );
            }
            return Err(e);
        }
    };
    Ok(h)
}

fn copy_object(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    out: *mut CK_OBJECT_HANDLE,
) -> Result<()> {
    state::check_session(session)?;
    let template = ffi::parse_template(template, count)?;
    if out.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let src = slot.visible_object(object)?;
        if src.bool(CKA_COPYABLE) == Some(false) {
            return Err(err(CKR_ACTION_PROHIBITED));
        }
        let class = src.class();
        let mut attrs = src.attrs.clone();
        for a in &template {
            policy::check_copy(class, a, attrs.get(&a.ty).map(|v| v.as_slice()))?;
            attrs.insert(a.ty, a.value.to_vec());
        }
        let obj = Object {
            id: random::uid_hex().map_err(CkError::from)?,
            key_uid: src.key_uid.clone(),
            attrs,
            owner: Some(session),
        };
        let token = obj.is_token();
        check_access(&sess, slot, token, obj.is_private())?;
        let obj = Object {
            owner: if token { None } else { Some(session) },
            ..obj
        };
        // A session key copied to the token must outlive its lease.
        let make_permanent = match &obj.key_uid {
            Some(uid) if token => !lock(&slot.objects).uid_on_token(uid),
            _ => false,
        };
        if make_permanent && let Some(uid) = &obj.key_uid {
            slot.cluster.make_permanent(std::slice::from_ref(uid))?;
        }
        let h = store(st, slot, obj)?;
        ffi::write_out(out, h)
    })
}

fn destroy_object(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<()> {
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let o = slot.visible_object(object)?;
        if o.is_token() && !sess.rw {
            return Err(err(CKR_SESSION_READ_ONLY));
        }
        if o.bool(CKA_DESTROYABLE) == Some(false) {
            return Err(err(CKR_ACTION_PROHIBITED));
        }
        if o.is_token() {
            slot.cluster.write_objects(vec![], vec![o.id.clone()])?;
        }
        let in_use = {
            let mut objects = lock(&slot.objects);
            objects.remove(object);
            o.key_uid.as_ref().map(|u| objects.uid_in_use(u))
        };
        if let (Some(uid), Some(false)) = (&o.key_uid, in_use) {
            slot.data_keys.forget(uid);
        }
        if let (Some(uid), Some(false)) = (&o.key_uid, in_use)
            && let Err(e) = slot.cluster.delete_key(uid)
        {
            tracing::warn!(
                slot = slot.id,
                "object destroyed but its fragments could not be deleted: {}",
                e.message
            );
        }
        Ok(())
    })
}

fn get_object_size(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> Result<()> {
    state::with_state(|st| {
        let (_, slot) = st.session_slot(session)?;
        let o = slot.visible_object(object)?;
        let n: usize = o.attrs.values().map(|v| v.len() + 16).sum();
        ffi::write_out(size, n as CK_ULONG)
    })
}

#[allow(clippy::unnecessary_cast)] // CK_ULONG is 32 bits on some platforms
fn get_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<()> {
    state::with_state(|st| {
        let (_, slot) = st.session_slot(session)?;
        let o = slot.visible_object(object)?;
        let mut failed = None;
        let written = ffi::write_attribute_values(template, count, |ty| match (ty, &o.key_uid) {
            (CKA_KEYFRAG_EPOCH, Some(uid)) if o.class() == CKO_PRIVATE_KEY => {
                match slot.cluster.key_epoch(uid) {
                    Ok(epoch) => AttrAnswer::Value(attr::encode_ulong(epoch as CK_ULONG)),
                    Err(e) => {
                        tracing::warn!(key = %uid, "epoch not available: {}", e.message);
                        failed = Some(CkError::from(e));
                        AttrAnswer::Invalid
                    }
                }
            }
            _ => {
                let answer = o.answer(ty);
                if matches!(answer, AttrAnswer::Invalid) {
                    let class = o.class();
                    tracing::debug!(
                        "C_GetAttributeValue: no attribute {ty:#x} on class {class:#x}"
                    );
                }
                answer
            }
        });
        // The cells could not say: that is the error, not the attribute's absence.
        failed.map_or(written, Err)
    })
}

fn set_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<()> {
    let template = ffi::parse_template(template, count)?;
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let o = slot.visible_object(object)?;
        check_access(&sess, slot, o.is_token(), false)?;
        if o.bool(CKA_MODIFIABLE) == Some(false) {
            return Err(err(CKR_ACTION_PROHIBITED));
        }
        let class = o.class();
        let mut new = (*o).clone();
        for a in &template {
            policy::check_set(class, a, new.attrs.get(&a.ty).map(|v| v.as_slice()))?;
            new.attrs.insert(a.ty, a.value.to_vec());
        }
        if new.is_token() {
            slot.cluster.write_objects(vec![new.to_record()], vec![])?;
            lock(&slot.objects).put_token(new, state::next_handle);
        } else {
            lock(&slot.objects).session.insert(object, Arc::new(new));
        }
        Ok(())
    })
}

fn find_objects_init(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<()> {
    let template = ffi::parse_template(template, count)?;
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let mut ops = sess.ops();
        if ops.find.is_some() {
            return Err(err(CKR_OPERATION_ACTIVE));
        }
        // Session-only searches need no cells.
        let session_only = template_bool(&template, CKA_TOKEN)? == Some(false);
        if !session_only {
            slot.refresh_objects()?;
        }
        let user = slot.logged_in() == Some(UserKind::User);
        let objects = lock(&slot.objects);
        let mut handles: Vec<CK_OBJECT_HANDLE> = objects
            .token
            .iter()
            .chain(objects.session.iter())
            .filter(|(_, o)| (user || !o.is_private()) && o.matches(&template))
            .map(|(h, _)| *h)
            .collect();
        handles.sort_unstable();
        ops.find = Some(FindState { handles, pos: 0 });
        Ok(())
    })
}

fn find_objects(
    session: CK_SESSION_HANDLE,
    out: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        let f = ops
            .find
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let n = ffi::out_handles(out, max, count, &f.handles[f.pos..])?;
        f.pos += n;
        Ok(())
    })
}

fn find_objects_final(session: CK_SESSION_HANDLE) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        ops.find.take().ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        Ok(())
    })
}
