//! Calls that arrive while the calling thread is being torn down.
//!
//! pkcs11-provider closes its sessions from OpenSSL's atexit handler, and glibc runs those
//! after it has destroyed the main thread's thread-locals (tokio's runtime context among them).
//! A thread-local destructor that runs after tokio's is the same situation, on a test thread.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use std::cell::RefCell;
use std::sync::mpsc;

use common::*;
use cryptoki_sys::*;

/// Closes its session when the thread's locals are destroyed and reports the CKR.
struct CloseOnThreadExit {
    session: CK_SESSION_HANDLE,
    report: mpsc::Sender<CK_RV>,
}

impl Drop for CloseOnThreadExit {
    fn drop(&mut self) {
        let _ = self.report.send(call!(C_CloseSession, self.session));
    }
}

thread_local! {
    static CLOSER: RefCell<Option<CloseOnThreadExit>> = const { RefCell::new(None) };
}

#[test]
fn closing_the_last_logged_in_session_during_thread_exit() {
    let _f = Fixture::new();
    let (report, closed) = mpsc::channel();
    std::thread::spawn(move || {
        // Touched before the module first enters tokio on this thread, so this destructor is
        // registered first and runs after tokio's context is gone.
        CLOSER.with(|_| ());
        let h = open_session(false);
        assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
        CLOSER.with(|c| *c.borrow_mut() = Some(CloseOnThreadExit { session: h, report }));
    })
    .join()
    .expect("test thread");
    // The last session's close logs out, which revokes the login on every cell.
    assert_eq!(closed.recv().expect("destructor ran"), CKR_OK);
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
