//! `POST /v1/keys/{uid}/rsa-partial`: x'^(2·dᵢ) mod N for a logged-in user, under the epoch
//! the request names — the committed one, or the one before until its refresh is finalized
//! (docs/REFRESH.md). A pending epoch is never served.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use keyfrag_core::rsa_partial::rsa_partial as compute_partial;
use keyfrag_proto::ErrorCode;
use keyfrag_proto::keys::{RsaPartialRequest, RsaPartialResponse};
use keyfrag_proto::token::UserKind;

use super::keys::{KIND_RSA, key_not_found};
use super::{ApiJson, Arrived, UidPath, now_secs};
use crate::audit;
use crate::auth::{Caller, login_hash, require_login_blocking};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::KeyShares;

/// The sealed share serving `want` (None: the committed one): (epoch, format, ciphertext).
pub(crate) fn share_for(k: &KeyShares, want: Option<u64>) -> ApiResult<(u64, u32, Vec<u8>)> {
    let current = k.key.epoch;
    match (want, &k.previous) {
        (None, _) => Ok((current, k.key.format, k.key.sealed_share.clone())),
        (Some(e), _) if e == current => Ok((current, k.key.format, k.key.sealed_share.clone())),
        (Some(e), Some(p)) if e == p.epoch => Ok((p.epoch, p.format, p.sealed_share.clone())),
        (Some(e), previous) => {
            let served = match previous {
                Some(p) => format!("epochs {current} and {}", p.epoch),
                None => format!("epoch {current}"),
            };
            Err(ApiError::new(
                ErrorCode::EpochUnknown,
                format!("key {} serves {served}, not {e}", k.key.uid),
            ))
        }
    }
}

/// What the blocking part of a request produced: the partial and where it came from.
struct Served {
    output: Vec<u8>,
    epoch: u64,
    current_epoch: u64,
    previous_epoch: Option<u64>,
    compute: Duration,
}

/// The input is blinded by the module, so the cell learns nothing from it; it is still never
/// logged.
///
/// Login check, share read, unsealing, compute and lease renewal run as ONE task on the
/// blocking pool: each hop between the runtime and the pool is a wait for a thread (and, on a
/// loaded machine, for a core) that the client sees as latency. `handled_us` is measured from
/// the request entering the router ([`Arrived`]) to the response being built here.
pub async fn rsa_partial(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    arrived: Option<Extension<Arrived>>,
    headers: HeaderMap,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<RsaPartialRequest>,
) -> ApiResult<Json<RsaPartialResponse>> {
    let arrived = arrived.map_or_else(Instant::now, |Extension(a)| a.0);
    let login = login_hash(&headers);
    let served =
        tokio::task::spawn_blocking(move || serve(&state, &caller.token, login, &uid, req))
            .await
            .map_err(ApiError::internal)??;
    Ok(Json(RsaPartialResponse {
        output: served.output,
        epoch: served.epoch,
        current_epoch: served.current_epoch,
        previous_epoch: served.previous_epoch,
        compute_us: served.compute.as_micros() as u64,
        handled_us: arrived.elapsed().as_micros() as u64,
    }))
}

/// How much lower than the runtime's workers a blocking thread that has computed a partial
/// runs (a nice value).
const COMPUTE_NICENESS: i32 = 10;

/// Lowers the calling (blocking-pool) thread's scheduling priority, once per thread: a
/// partial is milliseconds of CPU, and a worker thread woken for a new request or a finished
/// answer must not wait behind it for a core — on a busy cell (or cells sharing cores) it
/// would, up to a scheduler slice per wake-up, while the request is not yet in the router or
/// the answer not yet written. Lowering is always permitted (raising back would not be, so
/// the thread stays lowered for whatever blocking work it runs later: store calls run at
/// the same level as the compute they alternate with). Linux's nice value is per thread.
pub(crate) fn lower_this_thread() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    LOWERED.with(|lowered| {
        if !lowered.replace(true) {
            let now = rustix::process::getpriority_process(None).unwrap_or(0);
            if let Err(e) = rustix::process::setpriority_process(None, now + COMPUTE_NICENESS) {
                tracing::debug!(error = %e, "cannot lower a compute thread's priority");
            }
        }
    });
}

/// The whole request on the blocking pool; refusals and audit records in the same order as
/// when each step was a separate hop.
fn serve(
    state: &AppState,
    token: &str,
    login: Option<[u8; 32]>,
    uid: &str,
    req: RsaPartialRequest,
) -> ApiResult<Served> {
    lower_this_thread();
    let store = state.store().as_ref();
    require_login_blocking(store, token, login, Some(UserKind::User))?;
    let now = now_secs();
    let key = store
        .key_shares(token, uid, now)?
        .ok_or_else(|| key_not_found(uid))?;
    if key.key.kind != KIND_RSA {
        return Err(ApiError::bad_request(format!(
            "key {uid} is not an RSA key"
        )));
    }
    if key.key.pooled {
        audit::record(token, uid, "rsa-partial", "pooled");
        return Err(super::pool::in_pool(uid));
    }
    let (epoch, format, sealed) = share_for(&key, req.epoch)?;
    let renew = key
        .key
        .lease_secs
        .zip(key.key.expires_at)
        .is_some_and(|(lease, expires)| expires.saturating_sub(now) < lease / 2);
    let share = state
        .master_key()
        .open_share(token, uid, epoch, format, &sealed)
        .map_err(ApiError::internal)?;
    let started = Instant::now();
    let output = compute_partial(&key.key.modulus, &req.input, &share);
    let compute = started.elapsed();
    drop(share);
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            audit::record(token, uid, "rsa-partial", "bad-input");
            return Err(match e {
                keyfrag_core::Error::InvalidInput(_) | keyfrag_core::Error::DataTooLarge => {
                    ApiError::bad_request(format!("input rejected: {e}"))
                }
                other => ApiError::internal(other),
            });
        }
    };
    if renew {
        store.renew_leases(token, &[uid.to_owned()], None, now)?;
    }
    audit::record(token, uid, "rsa-partial", "ok");
    Ok(Served {
        output,
        epoch,
        current_epoch: key.key.epoch,
        previous_epoch: key.previous.as_ref().map(|p| p.epoch),
        compute,
    })
}

#[cfg(test)]
mod tests {
    use super::{COMPUTE_NICENESS, lower_this_thread};

    #[test]
    fn a_compute_thread_is_lowered_once_and_other_threads_are_not() {
        let before = rustix::process::getpriority_process(None).unwrap();
        let (first, second) = std::thread::spawn(|| {
            lower_this_thread();
            let first = rustix::process::getpriority_process(None).unwrap();
            lower_this_thread();
            (first, rustix::process::getpriority_process(None).unwrap())
        })
        .join()
        .unwrap();
        // Nice values stop at 19.
        assert_eq!(first, (before + COMPUTE_NICENESS).min(19));
        assert_eq!(
            second, first,
            "lowered once per thread, not once per request"
        );
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
    }
}
