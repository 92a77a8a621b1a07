//! The math through the HTTP layer: shares of a real `rsa`-crate key stored on a cell, and
//! partials checked against x^(2·dᵢ) computed independently with crypto-bigint.

mod common;

use axum::http::StatusCode;
use common::*;
use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use keyfrag_core::rsa_share::split_exponent;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::json;

#[tokio::test]
async fn partials_are_x_to_the_twice_the_share_and_combine_to_x_2d() {
    let private = rsa::PrivateKey::new(&mut UnwrapErr(SysRng), 1024).expect("keygen");
    let modulus = private
        .n()
        .as_ref()
        .to_be_bytes_trimmed_vartime()
        .into_vec();
    let d = private.d().to_be_bytes();
    let shares = split_exponent(&d, 1024, 3).unwrap();

    let cell = TestCell::new();
    cell.init_token().await;
    let user = cell.login("user", USER_PIN).await.unwrap();

    let n = BoxedUint::from_be_slice_vartime(&modulus);
    let prec = n.bits_precision();
    let params = BoxedMontyParams::new_vartime(Odd::new(n).into_option().unwrap());
    let monty =
        |be: &[u8]| BoxedMontyForm::new(BoxedUint::from_be_slice(be, prec).unwrap(), &params);
    let mut x = random(modulus.len());
    x[0] = 0x01; // below N
    let xm = monty(&x);
    let mut product = monty(&[1]);

    for (i, share) in shares.iter().enumerate() {
        let uid = uid(0x40 + i as u8);
        let body = put_body(&modulus, share.negative, share.magnitude.expose(), None);
        let (s, b) = cell.a("PUT", &format!("/v1/keys/{uid}"), Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = cell
            .call(
                "POST",
                &format!("/v1/keys/{uid}/rsa-partial"),
                Some(KEY_A),
                Some(&user),
                Some(json!({"input": b64(&x), "epoch": 1})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["epoch"], 1);
        assert!(b["compute_us"].is_u64());
        let output = keyfrag_proto::b64::decode(b["output"].as_str().unwrap()).unwrap();
        assert_eq!(output.len(), modulus.len());
        let partial = monty(&output);

        // x^(2·|dᵢ|), and for a negative share partial · x^(2·|dᵢ|) ≡ 1.
        let half = xm.pow(&BoxedUint::from_be_slice_vartime(share.magnitude.expose()));
        let full = half.mul(&half);
        if share.negative {
            assert_eq!(
                partial.mul(&full).retrieve(),
                monty(&[1]).retrieve(),
                "share {i}"
            );
        } else {
            assert_eq!(partial.retrieve(), full.retrieve(), "share {i}");
        }
        product = product.mul(&partial);
    }
    // Π x^(2·dᵢ) = x^(2d).
    let half = xm.pow(private.d());
    assert_eq!(product.retrieve(), half.mul(&half).retrieve());

    // Inputs the math refuses are a bad request, not a crash.
    let (s, b) = cell
        .call(
            "POST",
            &format!("/v1/keys/{}/rsa-partial", uid(0x40)),
            Some(KEY_A),
            Some(&user),
            Some(json!({ "input": b64(&modulus) })),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "bad_request"));
}
