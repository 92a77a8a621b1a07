//! Wire encodings: base64url bytes, redacted secrets, and the metadata hash every cell reports.

use keyfrag_proto::keys::{RsaPartialRequest, RsaShareWire};
use keyfrag_proto::objects::{Attr, ObjectRecord, metadata_hash};
use keyfrag_proto::token::{LoginRequest, Pin, UserKind};
use keyfrag_proto::{ErrorBody, ErrorCode};

fn object(id: &str, label: &[u8]) -> ObjectRecord {
    ObjectRecord {
        id: id.into(),
        key_uid: None,
        attrs: vec![
            Attr {
                kind: 0,
                value: vec![3, 0, 0, 0, 0, 0, 0, 0],
            },
            Attr {
                kind: 3,
                value: label.to_vec(),
            },
        ],
    }
}

#[test]
fn bytes_travel_as_unpadded_base64url() {
    let req = RsaPartialRequest {
        input: vec![0xfb, 0xff, 0x00],
        epoch: Some(2),
    };
    let json = serde_json::to_string(&req).unwrap();
    assert_eq!(json, r#"{"input":"-_8A","epoch":2}"#);
    let back: RsaPartialRequest = serde_json::from_str(&json).unwrap();
    assert_eq!(back.input, req.input);
    assert!(serde_json::from_str::<RsaPartialRequest>(r#"{"input":"***","epoch":null}"#).is_err());
}

#[test]
fn secrets_never_print() {
    let login = LoginRequest {
        user: UserKind::User,
        pin: Pin("123456".into()),
    };
    assert!(!format!("{login:?}").contains("123456"));
    let share = RsaShareWire {
        negative: true,
        magnitude: vec![0xab; 8],
    };
    let shown = format!("{share:?}");
    assert!(
        !shown.contains("171") && !shown.contains("ab") && !shown.contains("true"),
        "{shown}"
    );
}

#[test]
fn metadata_hash_is_order_independent_and_sensitive_to_every_byte() {
    let a = object("00000000000000000000000000000001", b"one");
    let b = object("00000000000000000000000000000002", b"two");
    let h = metadata_hash("tok", &[a.clone(), b.clone()]);
    assert_eq!(h, metadata_hash("tok", &[b.clone(), a.clone()]));
    assert_ne!(h, metadata_hash("tok2", &[a.clone(), b.clone()]));
    assert_ne!(h, metadata_hash("tok", &[a.clone(), object(&b.id, b"twO")]));
    assert_ne!(h, metadata_hash("tok", &[a]));
}

#[test]
fn error_codes_are_snake_case_on_the_wire() {
    let body = ErrorBody {
        code: ErrorCode::UserPinNotInitialized,
        message: "m".into(),
    };
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        r#"{"code":"user_pin_not_initialized","message":"m"}"#
    );
}
