//! Threads racing on one module (issue 8, item 3): 32 threads signing while another logs out
//! and in, C_CloseAllSessions during operations, and C_Finalize racing calls. Every call must
//! return OK (with a signature that verifies) or one of the codes the race explains — never
//! CKR_GENERAL_ERROR, a wrong signature, a crash or a hang.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use std::collections::BTreeMap;
use std::sync::{Barrier, Condvar, Mutex};

use common::*;
use cryptoki_sys::*;
use rsa::Pkcs1v15Sign;
use rsa::sha2::{Digest, Sha256};

const THREADS: usize = 32;

/// Counts each return code seen, and fails on any outside `allowed`.
struct Tally {
    seen: Mutex<BTreeMap<CK_RV, usize>>,
    allowed: &'static [CK_RV],
}

impl Tally {
    fn new(allowed: &'static [CK_RV]) -> Tally {
        Tally {
            seen: Mutex::new(BTreeMap::new()),
            allowed,
        }
    }

    fn record(&self, rv: CK_RV) {
        *self.seen.lock().unwrap().entry(rv).or_default() += 1;
    }

    fn check(&self, what: &str) -> BTreeMap<CK_RV, usize> {
        let seen = self.seen.lock().unwrap().clone();
        for rv in seen.keys() {
            assert!(
                self.allowed.contains(rv),
                "{what}: unexpected {rv:#x} (seen: {seen:x?})"
            );
        }
        println!("{what}: {seen:x?}");
        seen
    }
}

/// Calls completed so far, so the disruptive call lands while operations are under way (a
/// condition to wait on, not a sleep).
#[derive(Default)]
struct Progress {
    done: Mutex<usize>,
    changed: Condvar,
}

impl Progress {
    fn bump(&self) {
        *self.done.lock().unwrap() += 1;
        self.changed.notify_all();
    }

    fn wait_for(&self, n: usize) {
        let mut done = self.done.lock().unwrap();
        while *done < n {
            done = self.changed.wait(done).unwrap();
        }
    }
}

/// THREADS threads, each on its own session, run `op(session, thread, step)` for 3 steps once
/// all have started, then `finish(session)`; `disrupt` lands once half of them have done a
/// step, while the others are still at work.
fn race(
    op: impl Fn(CK_SESSION_HANDLE, u8, u8) + Sync,
    finish: impl Fn(CK_SESSION_HANDLE) + Sync,
    disrupt: impl FnOnce(),
) {
    let start = Barrier::new(THREADS + 1);
    let progress = Progress::default();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (op, finish, start, progress) = (&op, &finish, &start, &progress);
            s.spawn(move || {
                let h = open_session(false);
                start.wait();
                for i in 0..3u8 {
                    op(h, t as u8, i);
                    progress.bump();
                }
                finish(h);
            });
        }
        start.wait();
        progress.wait_for(THREADS / 2);
        disrupt();
    });
}

/// Sign `msg` and, on success, check the signature; returns the code.
fn sign_checked(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, msg: &[u8]) -> CK_RV {
    match sign(h, &mut mech(CKM_SHA256_RSA_PKCS), key, msg) {
        Ok(sig) => {
            rsa_key()
                .to_public_key()
                .verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg), &sig)
                .expect("a signature that does not verify");
            CKR_OK
        }
        Err(rv) => rv,
    }
}

#[test]
fn thirty_two_threads_sign_while_the_token_logs_out_and_in() {
    let _f = Fixture::new();
    let admin = open_session(true);
    assert_eq!(login(admin, CKU_USER, USER_PIN), CKR_OK);
    // A token key: it survives the logouts (a session key of `admin` would too, but a token
    // key is what services use).
    let (key, _) = import_rsa(admin, rsa_key(), true, b"race");
    // While logged out the private key is invisible (CKR_KEY_HANDLE_INVALID at C_SignInit) or
    // the cells refuse the partial of an operation already started (CKR_USER_NOT_LOGGED_IN).
    let tally = Tally::new(&[CKR_OK, CKR_KEY_HANDLE_INVALID, CKR_USER_NOT_LOGGED_IN]);
    race(
        |h, t, i| tally.record(sign_checked(h, key, &[t, i])),
        |h| assert_eq!(call!(C_CloseSession, h), CKR_OK),
        || {
            for _ in 0..6 {
                assert_eq!(call!(C_Logout, admin), CKR_OK);
                assert_eq!(login(admin, CKU_USER, USER_PIN), CKR_OK);
            }
        },
    );
    let seen = tally.check("signatures during logout/login");
    assert!(
        seen.get(&CKR_OK).copied().unwrap_or(0) > 0,
        "nothing was signed"
    );
    // And the token still works.
    assert_eq!(sign_checked(admin, key, b"after"), CKR_OK);
}

#[test]
fn close_all_sessions_during_operations() {
    let _f = Fixture::new();
    let admin = open_session(true);
    assert_eq!(login(admin, CKU_USER, USER_PIN), CKR_OK);
    let (key, _) = import_rsa(admin, rsa_key(), true, b"closeall");
    // A session closed under an operation: its handle is gone (CKR_SESSION_HANDLE_INVALID),
    // or the operation finds it closed (CKR_SESSION_CLOSED); the last session's closing logs
    // the token out (CKR_KEY_HANDLE_INVALID / CKR_USER_NOT_LOGGED_IN for the next ones).
    let tally = Tally::new(&[
        CKR_OK,
        CKR_SESSION_HANDLE_INVALID,
        CKR_SESSION_CLOSED,
        CKR_KEY_HANDLE_INVALID,
        CKR_USER_NOT_LOGGED_IN,
        CKR_OPERATION_NOT_INITIALIZED,
    ]);
    race(
        |h, t, i| tally.record(sign_checked(h, key, &[t, i])),
        |h| {
            let rv = call!(C_CloseSession, h);
            assert!(
                rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID,
                "close: {rv:#x}"
            );
        },
        || assert_eq!(call!(C_CloseAllSessions, 0), CKR_OK),
    );
    tally.check("signatures during C_CloseAllSessions");
    // Every session is gone, and new ones work.
    let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
    assert_eq!(
        call!(C_GetSessionInfo, admin, &mut info),
        CKR_SESSION_HANDLE_INVALID
    );
    let h = open_session(false);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(sign_checked(h, key, b"after"), CKR_OK);
}

#[test]
fn finalize_racing_calls() {
    let f = Fixture::new();
    let admin = open_session(true);
    assert_eq!(login(admin, CKU_USER, USER_PIN), CKR_OK);
    let (key, _) = import_rsa(admin, rsa_key(), true, b"finalize");
    // Calls racing C_Finalize either complete, or find the library (or their session) gone.
    let tally = Tally::new(&[
        CKR_OK,
        CKR_CRYPTOKI_NOT_INITIALIZED,
        CKR_SESSION_HANDLE_INVALID,
        CKR_SESSION_CLOSED,
        CKR_KEY_HANDLE_INVALID,
        CKR_USER_NOT_LOGGED_IN,
        CKR_OPERATION_NOT_INITIALIZED,
    ]);
    race(
        |h, t, i| {
            let mut n: CK_ULONG = 0;
            tally.record(call!(C_GetSlotList, CK_TRUE, std::ptr::null_mut(), &mut n));
            tally.record(sign_checked(h, key, &[t, i]));
        },
        |_| {},
        || assert_eq!(call!(C_Finalize, std::ptr::null_mut()), CKR_OK),
    );
    tally.check("calls racing C_Finalize");
    // The library comes back and the key is intact.
    assert_eq!(initialize(&f.bed.config_path, CKF_OS_LOCKING_OK), CKR_OK);
    let h = open_session(false);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let mut t = Tpl::new()
        .bytes(CKA_ID, b"finalize")
        .ulong(CKA_CLASS, CKO_PRIVATE_KEY);
    let found = find(h, &mut t);
    assert_eq!(found.len(), 1);
    assert_eq!(sign_checked(h, found[0], b"after"), CKR_OK);
}
