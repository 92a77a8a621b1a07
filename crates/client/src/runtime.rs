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

    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.inner.block_on(f)
    }
}
