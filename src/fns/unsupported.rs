//! Entry points keyfrag does not implement (yet): they exist in the function tables and
//! return CKR_FUNCTION_NOT_SUPPORTED. (C_GenerateKeyPair is in keygen.rs, C_GenerateKey in
//! secret_keygen.rs, C_WrapKey and C_UnwrapKey in wrap.rs.)

use std::ffi::c_void;

use cryptoki_sys::*;

use crate::export::not_supported;

not_supported!(
    C_DigestEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG)
);
not_supported!(
    C_DecryptDigestUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG)
);
not_supported!(
    C_SignEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG)
);
not_supported!(
    C_DecryptVerifyUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG)
);
not_supported!(
    C_DeriveKey(
        CK_SESSION_HANDLE,
        *mut CK_MECHANISM,
        CK_OBJECT_HANDLE,
        *mut CK_ATTRIBUTE,
        CK_ULONG,
        *mut CK_OBJECT_HANDLE,
    )
);

// PKCS#11 3.0 message-based functions.
not_supported!(C_MessageEncryptInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE));
not_supported!(
    C_EncryptMessage(
        CK_SESSION_HANDLE,
        *mut c_void,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        *mut CK_ULONG,
    )
);
not_supported!(
    C_EncryptMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG)
);
not_supported!(
    C_EncryptMessageNext(
        CK_SESSION_HANDLE,
        *mut c_void,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        *mut CK_ULONG,
        CK_FLAGS,
    )
);
not_supported!(C_MessageEncryptFinal(CK_SESSION_HANDLE));
not_supported!(C_MessageDecryptInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE));
not_supported!(
    C_DecryptMessage(
        CK_SESSION_HANDLE,
        *mut c_void,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        *mut CK_ULONG,
    )
);
not_supported!(
    C_DecryptMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG)
);
not_supported!(
    C_DecryptMessageNext(
        CK_SESSION_HANDLE,
        *mut c_void,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        *mut CK_ULONG,
        CK_FLAGS,
    )
);
not_supported!(C_MessageDecryptFinal(CK_SESSION_HANDLE));
not_supported!(C_MessageSignInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE));
not_supported!(
    C_SignMessage(
        CK_SESSION_HANDLE,
        *mut c_void,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        *mut CK_ULONG,
    )
);
not_supported!(C_SignMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG));
not_supported!(
    C_SignMessageNext(
        CK_SESSION_HANDLE,
        *mut c_void,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        *mut CK_ULONG,
    )
);
not_supported!(C_MessageSignFinal(CK_SESSION_HANDLE));
not_supported!(C_MessageVerifyInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE));
not_supported!(
    C_VerifyMessage(
        CK_SESSION_HANDLE,
        *mut c_void,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
    )
);
not_supported!(C_VerifyMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG));
not_supported!(
    C_VerifyMessageNext(
        CK_SESSION_HANDLE,
        *mut c_void,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        CK_ULONG,
    )
);
not_supported!(C_MessageVerifyFinal(CK_SESSION_HANDLE));
