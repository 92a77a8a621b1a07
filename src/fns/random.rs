//! Random number generation: C_SeedRandom, C_GenerateRandom (OS randomness).

use cryptoki_sys::*;

use crate::error::{Result, err};
use crate::export::api_function;
use crate::ffi;
use crate::state;

api_function!(C_SeedRandom(session: CK_SESSION_HANDLE, seed: *mut CK_BYTE, seed_len: CK_ULONG) => seed_random);
api_function!(C_GenerateRandom(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, len: CK_ULONG) => generate_random);

fn seed_random(session: CK_SESSION_HANDLE, seed: *mut CK_BYTE, seed_len: CK_ULONG) -> Result<()> {
    state::with_state(|st| {
        st.session(session)?;
        ffi::in_slice(seed, seed_len)?;
        Err(err(CKR_RANDOM_SEED_NOT_SUPPORTED))
    })
}

fn generate_random(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, len: CK_ULONG) -> Result<()> {
    state::with_state(|st| {
        st.session(session)?;
        let buf = ffi::out_slice(out, len)?;
        keyfrag_core::random::fill(buf).map_err(|_| err(CKR_FUNCTION_FAILED))
    })
}
