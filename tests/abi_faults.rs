//! Faults between the module and its cells, through the C ABI: a cell whose metadata differs
//! from the others is never adopted and blocks token writes; C_InitToken with a cell down wipes nothing.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use common::*;
use cryptoki_sys::*;

fn data_object(rw: CK_SESSION_HANDLE) -> CK_OBJECT_HANDLE {
    let mut t = Tpl::new()
        .ulong(CKA_CLASS, CKO_DATA)
        .bool(CKA_TOKEN, true)
        .bytes(CKA_LABEL, b"kept")
        .bytes(CKA_VALUE, b"value");
    let (tp, tn) = t.ptr();
    let mut o = 0;
    assert_eq!(call!(C_CreateObject, rw, tp, tn, &mut o), CKR_OK);
    o
}

fn data_objects(h: CK_SESSION_HANDLE) -> usize {
    find(h, &mut Tpl::new().ulong(CKA_CLASS, CKO_DATA)).len()
}

fn padded_label(label: &str) -> [u8; 32] {
    let mut out = [b' '; 32];
    out[..label.len()].copy_from_slice(label.as_bytes());
    out
}

#[test]
fn a_cell_with_different_metadata_is_refused() {
    let mut f = Fixture::new();
    let rw = open_session(true);
    data_object(rw);
    assert_eq!(data_objects(rw), 1);

    // Cell c's store now disagrees with the others about that object.
    f.bed.stop_cell(2);
    let db = rusqlite::Connection::open(f.bed.cell_database(2)).unwrap();
    let changed = db
        .execute(
            "UPDATE objects SET key_uid = '00000000000000000000000000000000'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);
    f.bed.start_cell(2);

    // The odd cell's view is never adopted: the module keeps serving the last view every
    // cell agreed on (logging the refused cell by name) ...
    assert_eq!(data_objects(rw), 1);
    // ... and refuses to write token objects while the cells disagree.
    let mut t = Tpl::new()
        .ulong(CKA_CLASS, CKO_DATA)
        .bool(CKA_TOKEN, true)
        .bytes(CKA_VALUE, b"second");
    let (tp, tn) = t.ptr();
    let mut o = 0;
    assert_eq!(call!(C_CreateObject, rw, tp, tn, &mut o), CKR_DEVICE_ERROR);
}

#[test]
fn init_token_with_a_cell_down_wipes_nothing() {
    let mut f = Fixture::new();
    let rw = open_session(true);
    data_object(rw);
    assert_eq!(call!(C_CloseAllSessions, 0), CKR_OK);

    f.bed.stop_cell(1);
    let mut label = padded_label("wiped");
    assert_eq!(
        call!(
            C_InitToken,
            0,
            SO_PIN.as_ptr() as *mut u8,
            SO_PIN.len() as CK_ULONG,
            label.as_mut_ptr()
        ),
        CKR_DEVICE_ERROR
    );
    f.bed.start_cell(1);
    let ro = open_session(false);
    assert_eq!(
        data_objects(ro),
        1,
        "the failed C_InitToken must not wipe anything"
    );

    // With a session open, C_InitToken is refused; with every cell up and none open, it wipes.
    assert_eq!(
        call!(
            C_InitToken,
            0,
            SO_PIN.as_ptr() as *mut u8,
            SO_PIN.len() as CK_ULONG,
            label.as_mut_ptr()
        ),
        CKR_SESSION_EXISTS
    );
    assert_eq!(call!(C_CloseSession, ro), CKR_OK);
    assert_eq!(
        call!(
            C_InitToken,
            0,
            SO_PIN.as_ptr() as *mut u8,
            SO_PIN.len() as CK_ULONG,
            label.as_mut_ptr()
        ),
        CKR_OK
    );
    let ro = open_session(false);
    assert_eq!(data_objects(ro), 0);
    let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    assert_eq!(call!(C_GetTokenInfo, 0, &mut info), CKR_OK);
    assert_eq!(&info.label, &label);
    assert_eq!(info.flags & CKF_USER_PIN_INITIALIZED, 0);
}
