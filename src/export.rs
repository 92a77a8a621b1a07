//! The one place where inner functions become C entry points.
//!
//! `api_function!` generates an `extern "C" fn C_*` that logs the call at debug level, runs the
//! inner `fn … -> Result<()>` under `catch_unwind` (a panic becomes CKR_GENERAL_ERROR, never
//! an unwind across the C boundary) and maps its error to the `CK_RV` it carries.
//! `not_supported!` generates an entry point that returns CKR_FUNCTION_NOT_SUPPORTED.

use std::panic::{AssertUnwindSafe, catch_unwind};

use cryptoki_sys::*;

use crate::error::{Result, rv_name};

/// Run an inner function for entry point `name`.
pub(crate) fn run(name: &'static str, f: impl FnOnce() -> Result<()>) -> CK_RV {
    tracing::debug!("{name}");
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => {
            tracing::debug!("{name} -> {}", rv_name(e.rv()));
            e.rv()
        }
        Err(_) => {
            tracing::error!("{name}: internal error (panic); returning CKR_GENERAL_ERROR");
            CKR_GENERAL_ERROR
        }
    }
}

macro_rules! api_function {
    ($name:ident ( $($arg:ident : $ty:ty),* $(,)? ) => $inner:path) => {
        #[allow(non_snake_case)]
        pub(crate) extern "C" fn $name($($arg: $ty),*) -> cryptoki_sys::CK_RV {
            $crate::export::run(stringify!($name), || $inner($($arg),*))
        }
    };
}

macro_rules! not_supported {
    ($name:ident ( $($ty:ty),* $(,)? )) => {
        #[allow(non_snake_case)]
        pub(crate) extern "C" fn $name($(_: $ty),*) -> cryptoki_sys::CK_RV {
            tracing::debug!("{} -> CKR_FUNCTION_NOT_SUPPORTED", stringify!($name));
            cryptoki_sys::CKR_FUNCTION_NOT_SUPPORTED
        }
    };
}

pub(crate) use api_function;
pub(crate) use not_supported;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::err;

    fn ok() -> Result<()> {
        Ok(())
    }
    fn fails(rv: CK_RV) -> Result<()> {
        Err(err(rv))
    }
    fn panics() -> Result<()> {
        panic!("boom")
    }

    api_function!(T_Ok() => ok);
    api_function!(T_Fails(rv: CK_RV) => fails);
    api_function!(T_Panics() => panics);
    not_supported!(T_Unsupported(CK_SESSION_HANDLE, *mut u8));

    #[test]
    fn macro_maps_results() {
        assert_eq!(T_Ok(), CKR_OK);
        assert_eq!(T_Fails(CKR_PIN_INCORRECT), CKR_PIN_INCORRECT);
        assert_eq!(T_Panics(), CKR_GENERAL_ERROR);
        assert_eq!(
            T_Unsupported(1, std::ptr::null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED
        );
    }
}
