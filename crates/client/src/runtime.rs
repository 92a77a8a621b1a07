//! The client's async runtime: one per process, created on first use, replaced after fork.
//!
//! A tokio runtime does not survive fork (its worker threads exist only in the parent), so a
//! transport built in another process is forgotten, never dropped: dropping it would try to
//! join threads that do not exist in the child.

use std::future::Future;

use crate::error::{ClientError, ErrorKind, Result};

pub(crate) struct Runtime {
    pid: u32,
    inner: tokio::runtime::Runtime,
}

impl Runtime {
    /// `threads`: false when the application set CKF_LIBRARY_CANT_CREATE_OS_THREADS; the
    /// runtime then runs only on the calling threads.
    pub(crate) fn new(threads: bool) -> Result<Runtime> {
        let mut builder = if threads {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2).thread_name("keyfrag-io");
            b
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        let inner = builder.enable_all().build().map_err(|e| {
            ClientError::new(ErrorKind::Device, format!("cannot start I/O runtime: {e}"))
        })?;
        Ok(Runtime {
            pid: std::process::id(),
            inner,
        })
    }

    pub(crate) fn belongs_to_this_process(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Runs `f` to completion on the calling thread. During process exit glibc destroys the
    /// main thread's thread-locals before it runs atexit handlers, and OpenSSL's cleanup
    /// (pkcs11-provider) closes sessions from such a handler: tokio can no longer enter a
    /// runtime there, so the work runs on a short-lived thread instead of panicking.
    pub(crate) fn block_on<F>(&self, f: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        match tokio::runtime::Handle::try_current() {
            Err(e) if e.is_thread_local_destroyed() => std::thread::scope(|s| {
                s.spawn(|| self.inner.block_on(f))
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            }),
            _ => self.inner.block_on(f),
        }
    }

    /// `block_on` for a future that cannot move to another thread (key generation's relay,
    /// which holds the caller's hook); it has no exit-time fallback.
    pub(crate) fn block_on_here<F: Future>(&self, f: F) -> F::Output {
        self.inner.block_on(f)
    }
}
