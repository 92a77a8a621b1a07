//! General-purpose functions: C_Initialize, C_Finalize, C_GetInfo.

use std::ffi::c_void;
use std::sync::{Arc, Once};

use cryptoki_sys::*;
use keyfrag_client::{Cluster, Config};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::error::{Result, err};
use crate::export::api_function;
use crate::ffi;
use crate::state::{self, Slot, State, lock, write};

api_function!(C_Initialize(args: *mut c_void) => initialize);
api_function!(C_Finalize(reserved: *mut c_void) => finalize);
api_function!(C_GetInfo(info: *mut CK_INFO) => get_info);

pub const MANUFACTURER: &str = "keyfrag";

/// Logs go to stderr through tracing, filtered by KEYFRAG_LOG (default `warn`). Installed
/// once; an application's own global subscriber wins.
fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("KEYFRAG_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .finish()
            .with(crate::log_gate::TeardownGate)
            .try_init();
    });
}

/// The parts of CK_C_INITIALIZE_ARGS the module uses.
struct InitArgs {
    threads_allowed: bool,
    reserved: Option<String>,
}

fn parse_args(args: *mut c_void) -> Result<InitArgs> {
    if args.is_null() {
        return Ok(InitArgs {
            threads_allowed: true,
            reserved: None,
        });
    }
    let a: CK_C_INITIALIZE_ARGS = ffi::read_in(args as *const CK_C_INITIALIZE_ARGS)?;
    let callbacks = [
        a.CreateMutex.is_some(),
        a.DestroyMutex.is_some(),
        a.LockMutex.is_some(),
        a.UnlockMutex.is_some(),
    ];
    let all = callbacks.iter().all(|x| *x);
    if callbacks.iter().any(|x| *x) && !all {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    // We lock with the OS primitives; callbacks alone (without OS locking) we cannot honour.
    if all && a.flags & CKF_OS_LOCKING_OK == 0 {
        return Err(err(CKR_CANT_LOCK));
    }
    // NSS passes its module parameters here as a C string (`config=PATH …`).
    let reserved = ffi::c_string(a.pReserved, 64 * 1024)?;
    Ok(InitArgs {
        threads_allowed: a.flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS == 0,
        reserved,
    })
}

/// C_Initialize: reads the configuration and prepares the slots. No network I/O here
/// (COMPAT item 10): a cell outage must not make the module unloadable.
fn initialize(args: *mut c_void) -> Result<()> {
    init_logging();
    let args = parse_args(args)?;
    let g = state::global_for_init();
    let mut guard = write(&g.state);
    if guard.is_some() {
        return Err(err(CKR_CRYPTOKI_ALREADY_INITIALIZED));
    }
    let (config, path) = Config::discover(args.reserved.as_deref()).map_err(|e| {
        tracing::error!("keyfrag configuration: {}", e.message);
        err(CKR_GENERAL_ERROR)
    })?;
    let mut slots = Vec::with_capacity(config.tokens.len());
    for (i, t) in config.tokens.iter().enumerate() {
        let cluster = Cluster::with_threads(t, args.threads_allowed).map_err(|e| {
            tracing::error!("{}: token {:?}: {}", path.display(), t.label, e.message);
            err(CKR_GENERAL_ERROR)
        })?;
        slots.push(Arc::new(Slot::new(i as CK_SLOT_ID, t.clone(), cluster)));
    }
    tracing::info!(config = %path.display(), slots = slots.len(), "keyfrag initialised");
    *guard = Some(State::new(slots, args.threads_allowed));
    Ok(())
}

/// C_Finalize: closes every session (their session keys are deleted from the cells, best
/// effort) and logs out.
fn finalize(reserved: *mut c_void) -> Result<()> {
    if !reserved.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    let g = state::global().ok_or(err(CKR_CRYPTOKI_NOT_INITIALIZED))?;
    // Key generations run outside the state lock; tell them to stop so the cells abort and
    // clean up now rather than finish a key nobody can store.
    if let Some(st) = state::read(&g.state).as_ref() {
        for s in state::read(&st.sessions).values() {
            s.cancel_keygen();
        }
    }
    let st = write(&g.state)
        .take()
        .ok_or(err(CKR_CRYPTOKI_NOT_INITIALIZED))?;
    // Stop the renewal thread (it notices the closed channel).
    lock(&st.renewer).take();
    for slot in &st.slots {
        let uids = {
            let mut objects = lock(&slot.objects);
            let uids = objects.leased_uids();
            objects.session.clear();
            uids
        };
        for uid in uids {
            if let Err(e) = slot.cluster.delete_key(&uid) {
                tracing::warn!(
                    slot = slot.id,
                    "could not delete a session key at C_Finalize (its lease will expire): {}",
                    e.message
                );
            }
        }
        slot.customer.forget();
        slot.data_keys.clear();
        if lock(&slot.login).take().is_some() {
            slot.cluster.logout();
        }
    }
    Ok(())
}

fn version() -> CK_VERSION {
    let major = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0);
    let minor = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0);
    CK_VERSION { major, minor }
}

pub fn library_version() -> CK_VERSION {
    version()
}

fn get_info(info: *mut CK_INFO) -> Result<()> {
    state::with_state(|_| Ok(()))?;
    ffi::write_out(
        info,
        CK_INFO {
            cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
            manufacturerID: ffi::pad_str(MANUFACTURER),
            flags: 0,
            libraryDescription: ffi::pad_str("keyfrag PKCS#11 module"),
            libraryVersion: version(),
        },
    )
}
