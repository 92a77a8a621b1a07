//! Idle-time work of a cell in a customer-mode generation. Between two of its steps a cell
//! waits for the customer and the other cells; it spends that time precomputing the Paillier
//! encryption randomisers its next MtA replies need (r^N mod N², the bulk of a reply's cost,
//! independent of the message), so the step on the critical path costs less.
//!
//! Bounded: one task per session at a time, at most `MAX_READY` randomisers (512 bytes each
//! at Paillier-4096), in chunks of `CHUNK` under the session lock, and it stops as soon as a
//! step is waiting for the lock, the session is gone, or there is nothing to precompute
//! (cells-only mode, the customer's key not yet known).

use std::sync::Weak;
use std::sync::atomic::Ordering;

use super::Slot;

/// Randomisers per lock hold: a few tens of ms at Paillier-2048, so a step arriving meanwhile
/// waits at most that long.
const CHUNK: usize = 4;
/// Most randomisers ready at once (one batch's MtA replies at RSA-2048 need about 3000).
pub const MAX_READY: usize = 4096;

/// Run on the blocking pool after a customer-mode step; returns how many were added.
pub fn precompute_while_idle(slot: Weak<Slot>) -> usize {
    let Some(s) = slot.upgrade() else {
        return 0;
    };
    if s.precomputing.swap(true, Ordering::AcqRel) {
        return 0;
    }
    drop(s);
    let mut added = 0;
    loop {
        let Some(s) = slot.upgrade() else {
            return added;
        };
        if s.waiting.load(Ordering::Acquire) > 0 {
            s.precomputing.store(false, Ordering::Release);
            return added;
        }
        let ready = {
            let mut session = s.lock();
            let have = session.precompute(0);
            if have >= MAX_READY || s.waiting.load(Ordering::Acquire) > 0 {
                None
            } else {
                let now = session.precompute((have + CHUNK).min(MAX_READY));
                (now > have).then_some(now - have)
            }
        };
        match ready {
            Some(n) => added += n,
            None => {
                s.precomputing.store(false, Ordering::Release);
                return added;
            }
        }
    }
}
