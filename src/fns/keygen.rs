//! Key management: C_GenerateKeyPair with CKM_RSA_PKCS_KEY_PAIR_GEN. (Secret keys are
//! `secret_keygen.rs`; wrapping and derivation stay in `unsupported.rs`.)
//!
//! The cells generate the key together (Boneh–Franklin with distributed sieving) and each
//! stores its own share of d under a fresh key uid: no party, this module included, ever holds
//! p, q or d. On a token with a customer fragment the module itself is a party too, the
//! customer (issue 4): with the seed unsealed at C_Login it runs the customer-mode protocol,
//! whose products with the customer's secrets are Paillier MtAs under a key only this process
//! holds, and it ends with the customer's share c = PRF(seed, "rsa" ‖ key uid), so the cells'
//! shares alone are useless. That takes minutes at RSA-2048 (much more CPU than cells-only
//! generation), unless the token's pool has a key ready; the key records the seed's
//! fingerprint in CKA_KEYFRAG_CUSTOMER.
//!
//! The module validates the templates (`object/generated.rs`), asks the cluster for the key,
//! checks it with one private operation (the customer's partial included), and creates the
//! same objects an import does — a private key object that references the key uid, and a
//! public key object — with the flags of a key born on the token (CKA_LOCAL,
//! CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE).
//!
//! Concurrency: a generation takes seconds, so it runs outside the state lock and holds no
//! session lock; calls on other sessions, and other calls on the same session, proceed. A
//! second C_GenerateKeyPair on a session where one is running gets CKR_OPERATION_ACTIVE: the
//! session holds one cancel flag, so that C_SessionCancel(CKF_GENERATE_KEY_PAIR) names exactly
//! one generation. C_SessionCancel, C_CloseSession and C_Finalize set the flag; the client polls
//! it between protocol rounds and aborts the generation on every cell. Once the cells hold a
//! key, every failure path deletes it: a generation that does not return handles leaves
//! nothing behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cryptoki_sys::*;
use keyfrag_client::ErrorKind;
use keyfrag_client::cluster::KeygenOptions;
use keyfrag_core::customer::CustomerSeed;
use keyfrag_core::random;
use keyfrag_core::rsa_public::RsaPublic;

use super::object::check_access;
use crate::error::{CkError, Result, err};
use crate::export::api_function;
use crate::ffi;
use crate::mechanism::{self, params};
use crate::object::generated::{Attrs, E_65537, Plan, attrs_bool, complete, make_plan};
use crate::object::vendor::CKA_KEYFRAG_CUSTOMER;
use crate::object::{Object, import};
use crate::state::{self, Session, Slot, lock, read};

api_function!(C_GenerateKeyPair(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, public_template: *mut CK_ATTRIBUTE, public_count: CK_ULONG, private_template: *mut CK_ATTRIBUTE, private_count: CK_ULONG, public_out: *mut CK_OBJECT_HANDLE, private_out: *mut CK_OBJECT_HANDLE) => generate_key_pair);

/// Clears the session's generation flag however the call ends (a panic included).
struct Running<'a>(&'a Session);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.end_keygen();
    }
}

#[allow(clippy::too_many_arguments)] // the C signature
fn generate_key_pair(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    public_template: *mut CK_ATTRIBUTE,
    public_count: CK_ULONG,
    private_template: *mut CK_ATTRIBUTE,
    private_count: CK_ULONG,
    public_out: *mut CK_OBJECT_HANDLE,
    private_out: *mut CK_OBJECT_HANDLE,
) -> Result<()> {
    state::check_session(session)?;
    let mech = params::parse(mech)?;
    let public_template = ffi::parse_template(public_template, public_count)?;
    let private_template = ffi::parse_template(private_template, private_count)?;
    if public_out.is_null() || private_out.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    // Checks under the state lock; the slot and session are kept (Arc) for the generation,
    // which runs without the lock.
    let (sess, slot, mut plan) = state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        if mechanism::entry(&slot.policy, mech.ty)?.flags & CKF_GENERATE_KEY_PAIR == 0 {
            return Err(err(CKR_MECHANISM_INVALID));
        }
        let plan = make_plan(&slot.policy, &public_template, &private_template)?;
        // Generation always needs the user, whatever CKA_PRIVATE says: the key material is
        // created on the cells under the user's login, as for an imported private key.
        check_access(&sess, slot, plan.any_token(), true)?;
        Ok((sess, slot.clone(), plan))
    })?;
    // Customer mode: the seed's holder is a party, and the cells' shares alone will be
    // useless. A configured fragment that is not unsealed refuses here (clear log line).
    let seed = slot.customer.seed_for_generation()?;
    let cancel = sess.start_keygen()?;
    let _running = Running(&sess);

    let mut uid = random::uid_hex().map_err(CkError::from)?;
    // Token keys have no lease; session keys live under the configured lease, renewed while
    // this process holds them, so a crash leaves nothing behind for long.
    let lease = (!plan.private_token()).then(|| slot.lease_secs());
    tracing::info!(
        bits = plan.bits,
        token = plan.private_token(),
        customer = seed.is_some(),
        "generating an RSA key by fragments{}",
        if seed.is_some() {
            " in customer mode (this process a party; minutes at RSA-2048)"
        } else {
            ""
        }
    );
    let started = std::time::Instant::now();
    let opts = KeygenOptions {
        lease_secs: lease,
        pooled: false,
        customer: seed.as_ref(),
    };
    // A key from the token's pool first (instant); generate only when it has none.
    let generated = match super::keygen_pool::take_pooled(&slot, plan.bits as u32, lease)? {
        Some((pooled, n, e)) => {
            uid = pooled;
            Ok((n, e))
        }
        None => slot
            .cluster
            .generate_rsa_key_with(&uid, plan.bits as u32, &opts, &cancel),
    };
    let (n, e) = match generated {
        Ok(ne) => ne,
        // The client aborted the generation on every cell: nothing is stored.
        Err(e) if e.kind == ErrorKind::Cancelled => return Err(interrupted(session, &sess)),
        Err(e) => {
            tracing::warn!(kind = ?e.kind, "key generation by fragments failed: {}", e.message);
            return Err(e.into());
        }
    };
    let result = finish(
        session,
        &sess,
        &slot,
        &uid,
        &cancel,
        &mut plan,
        (&n, &e),
        seed.as_ref(),
    );
    match result {
        Ok((public, private)) => {
            tracing::info!(
                bits = plan.bits,
                secs = started.elapsed().as_secs_f32(),
                "RSA key generated by fragments"
            );
            ffi::write_out(public_out, public)?;
            ffi::write_out(private_out, private)
        }
        Err(e) => {
            if let Err(de) = slot.cluster.delete_key(&uid) {
                tracing::warn!(
                    "could not delete the fragments of a generated key that was not stored \
                     (a session key's lease will expire): {}",
                    de.message
                );
            }
            Err(e)
        }
    }
}

/// Why a generation stopped early: its session was closed, the library finalised, or the
/// application cancelled it.
fn interrupted(session: CK_SESSION_HANDLE, sess: &Arc<Session>) -> CkError {
    match state::with_state(|st| Ok(current(st, session, sess))) {
        Ok(true) => err(CKR_FUNCTION_CANCELED),
        Ok(false) => err(CKR_SESSION_CLOSED),
        Err(e) => e,
    }
}

/// Whether `sess` is still the open session `session` (handles are never reused, and a
/// C_Finalize/C_Initialize in between makes a new session map).
fn current(st: &state::State, session: CK_SESSION_HANDLE, sess: &Arc<Session>) -> bool {
    read(&st.sessions)
        .get(&session)
        .is_some_and(|s| Arc::ptr_eq(s, sess))
}

/// After the cells hold the key: check it (with the customer's share in customer mode) and
/// create the objects. Any error here leaves the key to be deleted by the caller. Returns
/// (public, private) handles.
#[allow(clippy::too_many_arguments)]
fn finish(
    session: CK_SESSION_HANDLE,
    sess: &Arc<Session>,
    slot: &Slot,
    uid: &str,
    cancel: &AtomicBool,
    plan: &mut Plan,
    (n, e): (&[u8], &[u8]),
    seed: Option<&CustomerSeed>,
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
    let key = RsaPublic::new(n, e).map_err(|_| {
        tracing::error!("the cells returned an invalid RSA public key");
        err(CKR_DEVICE_ERROR)
    })?;
    if key.bits() != plan.bits || key.public_exponent() != E_65537 {
        tracing::error!(
            bits = key.bits(),
            "the cells returned a key of another size or exponent than asked"
        );
        return Err(err(CKR_DEVICE_ERROR));
    }
    // A cancel that arrives before the objects exist wins, even once the cells are done.
    if cancel.load(Ordering::SeqCst) {
        return Err(interrupted(session, sess));
    }
    // One private operation before any object refers to the key: a share stored wrong by a
    // faulty cell shows here, not at the first signature.
    let customer = seed
        .map(|s| s.rsa_share(uid, key.bits()))
        .transpose()
        .map_err(CkError::from)?;
    if !import::shares_match(slot, uid, &key, customer.as_ref())? {
        tracing::error!("a generated key failed its check: a cell stored a wrong share");
        return Err(err(CKR_DEVICE_ERROR));
    }
    drop(customer);
    complete(plan, &key);
    plan.private.insert(
        CKA_KEYFRAG_CUSTOMER,
        seed.map_or_else(Vec::new, |s| s.fingerprint().to_vec()),
    );
    state::with_state(|st| {
        if !current(st, session, sess) {
            return Err(err(CKR_SESSION_CLOSED));
        }
        if cancel.load(Ordering::SeqCst) {
            return Err(err(CKR_FUNCTION_CANCELED));
        }
        // The login may have ended during the generation.
        check_access(sess, slot, plan.any_token(), true)?;
        let owner = |a: &Attrs| (!attrs_bool(a, CKA_TOKEN)).then_some(session);
        let private = Object {
            id: random::uid_hex().map_err(CkError::from)?,
            key_uid: Some(uid.to_owned()),
            owner: owner(&plan.private),
            attrs: std::mem::take(&mut plan.private),
        };
        let public = Object {
            id: random::uid_hex().map_err(CkError::from)?,
            key_uid: None,
            owner: owner(&plan.public),
            attrs: std::mem::take(&mut plan.public),
        };
        store_pair(st, slot, session, sess, public, private)
    })
}

/// Store the pair: token objects in one write to every cell (two-phase, so both appear or
/// neither), session objects in memory — unless the session was closed meanwhile, which
/// would orphan them.
fn store_pair(
    st: &state::State,
    slot: &Slot,
    session: CK_SESSION_HANDLE,
    sess: &Arc<Session>,
    public: Object,
    private: Object,
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
    let token: Vec<_> = [&public, &private]
        .into_iter()
        .filter(|o| o.is_token())
        .collect();
    let token_ids: Vec<String> = token.iter().map(|o| o.id.clone()).collect();
    if !token.is_empty() {
        slot.cluster
            .write_objects(token.iter().map(|o| o.to_record()).collect(), vec![])?;
    }
    let session_key = !private.is_token();
    let mut objects = lock(&slot.objects);
    // Checked under the objects lock: C_CloseSession removes the session first and its
    // session objects after, under this lock, so objects inserted now cannot be missed.
    if !current(st, session, sess) {
        drop(objects);
        if !token_ids.is_empty()
            && let Err(e) = slot.cluster.write_objects(vec![], token_ids)
        {
            tracing::warn!(
                "could not remove the objects of an interrupted generation: {}",
                e.message
            );
        }
        return Err(err(CKR_SESSION_CLOSED));
    }
    let mut put = |o: Object| {
        if o.is_token() {
            objects.put_token(o, state::next_handle)
        } else {
            let h = state::next_handle();
            objects.session.insert(h, Arc::new(o));
            h
        }
    };
    let handles = (put(public), put(private));
    drop(objects);
    if session_key {
        st.ensure_renewer();
    }
    Ok(handles)
}
