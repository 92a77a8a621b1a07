//! Calls that arrive while the calling thread is being torn down.
//!
//! pkcs11-provider closes its sessions from OpenSSL's atexit handler, and glibc runs those
//! after it has destroyed the main thread's thread-locals (tokio's runtime context and the log
//! formatter's buffer among them). A thread-local destructor that runs after those is the
//! same situation, on a test thread.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use std::cell::RefCell;
use std::sync::mpsc;

use common::*;
use cryptoki_sys::*;

/// Runs its closure when the thread's locals are destroyed.
struct AtThreadExit(Option<Box<dyn FnOnce()>>);

impl Drop for AtThreadExit {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

thread_local! {
    static AT_EXIT: RefCell<Option<AtThreadExit>> = const { RefCell::new(None) };
}

/// Runs `body` on a new thread, then `at_exit` on its result from a destructor that runs
/// after those of every thread-local `body` touched; returns what `at_exit` returned.
fn during_thread_exit<T: 'static>(
    body: impl FnOnce() -> T + Send + 'static,
    at_exit: impl FnOnce(T) -> CK_RV + Send + 'static,
) -> CK_RV {
    let (report, reported) = mpsc::channel();
    std::thread::spawn(move || {
        // Touched first, so its destructor is registered first and runs last.
        AT_EXIT.with(|_| ());
        let value = body();
        let run = move || {
            let _ = report.send(at_exit(value));
        };
        AT_EXIT.with(|c| *c.borrow_mut() = Some(AtThreadExit(Some(Box::new(run)))));
    })
    .join()
    .expect("test thread");
    reported.recv().expect("destructor ran")
}

#[test]
fn closing_the_last_logged_in_session_during_thread_exit() {
    let _f = Fixture::new();
    let rv = during_thread_exit(
        || {
            let h = open_session(false);
            assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
            h
        },
        // The last session's close logs out, which revokes the login on every cell.
        |h| call!(C_CloseSession, h),
    );
    assert_eq!(rv, CKR_OK);
    let h = open_session(false);
    let mut info = CK_SESSION_INFO {
        slotID: 0,
        state: 0,
        flags: 0,
        ulDeviceError: 0,
    };
    assert_eq!(call!(C_GetSessionInfo, h, &mut info), CKR_OK);
    assert_eq!(info.state, CKS_RO_PUBLIC_SESSION);
}

/// A certificate type the module refuses with a warning (logged at the default level).
fn create_wtls_certificate(h: CK_SESSION_HANDLE) -> CK_RV {
    let mut t = Tpl::new()
        .ulong(CKA_CLASS, CKO_CERTIFICATE)
        .ulong(CKA_CERTIFICATE_TYPE, CKC_WTLS)
        .bytes(CKA_VALUE, &[0x30, 0]);
    let (tp, tn) = t.ptr();
    let mut obj = 0;
    call!(C_CreateObject, h, tp, tn, &mut obj)
}

#[test]
fn logging_during_thread_exit() {
    let _f = Fixture::new();
    let rv = during_thread_exit(
        || {
            let h = open_session(false);
            // Logs once while the thread is alive, so the formatter's buffer exists and is
            // destroyed before the call below.
            assert_eq!(create_wtls_certificate(h), CKR_ATTRIBUTE_VALUE_INVALID);
            h
        },
        create_wtls_certificate,
    );
    assert_eq!(rv, CKR_ATTRIBUTE_VALUE_INVALID);
}
