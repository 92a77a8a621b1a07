//! Drops log events on a thread whose thread-locals are being destroyed.
//!
//! tracing-subscriber's formatter keeps a per-thread buffer and panics when it is used after
//! that buffer is destroyed. Applications call the module at that point: OpenSSL closes its
//! PKCS#11 sessions from an atexit handler, which glibc runs after the main thread's
//! thread-locals are gone, and a panic in an `extern "C"` function aborts the process.

use std::cell::Cell;

use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

thread_local! {
    // No destructor, so it stays readable while the thread is torn down.
    static TORN_DOWN: Cell<bool> = const { Cell::new(false) };
    static WATCH: Watch = const { Watch };
}

struct Watch;

impl Drop for Watch {
    fn drop(&mut self) {
        TORN_DOWN.set(true);
    }
}

/// The outermost layer: vetoes events once `WATCH` is gone. `WATCH` is first touched after
/// the formatter has handled an event (a layer's `on_event` runs after the layers it wraps),
/// so it is registered after the formatter's buffer and destroyed before it.
pub(crate) struct TeardownGate;

impl<S: Subscriber> Layer<S> for TeardownGate {
    fn event_enabled(&self, _: &Event<'_>, _: Context<'_, S>) -> bool {
        !TORN_DOWN.get()
    }

    fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
        let _ = WATCH.try_with(|_| ());
    }
}
