//! Every route of a cell under hostile requests: without a valid access key, with another
//! token's key (and that token's login), with an oversized body, and over plain HTTP. Each
//! refusal is checked for its exact status and structured `{code, message}` body.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use keyfrag_core::relay::{PartyCard, PartyKeys};
use keyfrag_proto::MAX_BODY_BYTES;
use keyfrag_proto::keygen::{MAX_KEYGEN_BODY_BYTES, encode_batch};
use keyfrag_server::relay_identity::{ClusterFile, RelayIdentity};
use keyfrag_server::{AppState, app};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

/// Every route the router serves (routes/mod.rs), with a path that reaches its handler.
fn routes() -> Vec<(&'static str, String)> {
    let (u, s) = (uid(1), uid(2));
    vec![
        ("GET", "/v1/info".into()),
        ("GET", "/v1/token".into()),
        ("POST", "/v1/token/init".into()),
        ("POST", "/v1/login".into()),
        ("POST", "/v1/logout".into()),
        ("POST", "/v1/pin/init".into()),
        ("POST", "/v1/pin/set".into()),
        ("GET", "/v1/objects".into()),
        ("POST", "/v1/objects/stage".into()),
        ("POST", "/v1/objects/commit".into()),
        ("POST", "/v1/objects/abort".into()),
        ("GET", "/v1/objects/pending".into()),
        ("POST", "/v1/objects/status".into()),
        ("GET", "/v1/keys".into()),
        ("POST", "/v1/keys/lease".into()),
        ("PUT", format!("/v1/keys/{u}")),
        ("GET", format!("/v1/keys/{u}")),
        ("DELETE", format!("/v1/keys/{u}")),
        ("POST", format!("/v1/keys/{u}/rsa-partial")),
        ("POST", format!("/v1/keys/{u}/prf-create")),
        ("POST", format!("/v1/keys/{u}/prf-commitments")),
        ("POST", format!("/v1/keys/{u}/prf-evaluate")),
        ("POST", format!("/v1/keys/{u}/refresh/deal")),
        ("POST", format!("/v1/keys/{u}/refresh/prepare")),
        ("POST", format!("/v1/keys/{u}/refresh/check")),
        ("POST", format!("/v1/keys/{u}/refresh/commit")),
        ("POST", format!("/v1/keys/{u}/refresh/finalize")),
        ("POST", format!("/v1/keys/{u}/refresh/abort")),
        ("POST", "/v1/keygen/start".into()),
        ("POST", format!("/v1/keygen/{s}/step")),
        ("POST", format!("/v1/keygen/{s}/commit")),
        ("POST", format!("/v1/keygen/{s}/abort")),
    ]
}

/// One request with raw header values and body; the status and the body as JSON.
async fn send(
    state: &AppState,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app(state.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 26)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A refusal is an `ErrorBody`: exactly a code and a non-empty message.
fn assert_refusal(what: &str, got: (StatusCode, Value), status: StatusCode, code: &str) {
    let (s, b) = got;
    assert_eq!(s, status, "{what}: {b}");
    let obj = b
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {b}"));
    assert_eq!(obj.len(), 2, "{what}: {b}");
    assert_eq!(b["code"], code, "{what}: {b}");
    assert!(
        b["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {b}"
    );
}

/// The test cell with a relay identity, so the keygen routes reach their handlers.
fn cell_with_relay() -> (TestCell, AppState) {
    let cell = TestCell::new();
    let names = ["peer-0", "test-cell", "peer-2"];
    let cards: Vec<PartyCard> = names
        .iter()
        .enumerate()
        .map(|(i, id)| PartyKeys::from_seed(&[i as u8; 32]).card(id).unwrap())
        .collect();
    let seed = cell.dir.path().join("relay.seed");
    let cluster = cell.dir.path().join("cluster.toml");
    std::fs::write(&seed, hex::encode([1u8; 32])).unwrap();
    set_mode(&seed, 0o600);
    std::fs::write(&cluster, ClusterFile::from_cards(&cards).to_toml()).unwrap();
    let state = cell
        .state
        .clone()
        .with_relay(RelayIdentity::load("test-cell", &seed, &cluster).unwrap());
    (cell, state)
}

#[tokio::test]
async fn no_route_answers_without_a_valid_access_key() {
    let (_cell, state) = cell_with_relay();
    let a_hash = sha256_hex(KEY_A);
    let bearer_b_space = format!("Bearer {KEY_A} x");
    let lower = format!("bearer {KEY_A}");
    let basic = format!("Basic {KEY_A}");
    let hashed = format!("Bearer {a_hash}");
    let truncated = format!("Bearer {}", &KEY_A[..KEY_A.len() - 1]);
    let credentials: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no header", vec![]),
        ("empty bearer", vec![("authorization", "Bearer ")]),
        ("unknown key", vec![("authorization", "Bearer not-a-key")]),
        ("key without scheme", vec![("authorization", KEY_A)]),
        ("lowercase scheme", vec![("authorization", &lower)]),
        ("basic scheme", vec![("authorization", &basic)]),
        ("the key's hash", vec![("authorization", &hashed)]),
        ("a prefix of the key", vec![("authorization", &truncated)]),
        (
            "key with a suffix",
            vec![("authorization", &bearer_b_space)],
        ),
        ("login header only", vec![("x-keyfrag-login", "anything")]),
    ];
    let mut cases = 0;
    for (method, path) in routes() {
        for (what, headers) in &credentials {
            let got = send(&state, method, &path, headers, b"{}".to_vec()).await;
            assert_refusal(
                &format!("{method} {path} ({what})"),
                got,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            );
            cases += 1;
        }
        // Unauthenticated and oversized: refused for the key before the body is read.
        let big = vec![b'x'; MAX_BODY_BYTES + 1];
        let got = send(&state, method, &path, &[], big).await;
        assert_refusal(&path, got, StatusCode::UNAUTHORIZED, "unauthorized");
        cases += 1;
    }
    assert_eq!(cases, routes().len() * 11);
    assert!(state.keygen_sessions().is_empty());
}

#[tokio::test]
async fn every_body_route_refuses_an_oversized_body() {
    let (_cell, state) = cell_with_relay();
    let auth = format!("Bearer {KEY_A}");
    for (method, path) in routes() {
        // These read no body at all (axum never buffers one it does not extract).
        let bodiless = path == "/v1/logout" || path.ends_with("/abort") && path.contains("keygen");
        if method == "GET" || method == "DELETE" || bodiless {
            continue;
        }
        let limit = if path.starts_with("/v1/keygen/") {
            MAX_KEYGEN_BODY_BYTES
        } else {
            MAX_BODY_BYTES
        };
        let big = vec![b' '; limit + 1];
        let got = send(&state, method, &path, &[("authorization", &auth)], big).await;
        assert_refusal(
            &format!("{method} {path}"),
            got,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        );
        // A body at the limit is read (and then refused for what it says, not its size).
        let (s, _) = send(
            &state,
            method,
            &path,
            &[("authorization", &auth)],
            vec![b' '; limit],
        )
        .await;
        assert_ne!(s, StatusCode::PAYLOAD_TOO_LARGE, "{method} {path}");
    }
}

/// What token A holds, set up with A's key: an initialised token, a user login, a key, a
/// committed object and a staged transaction.
struct TokenA {
    so: String,
    user: String,
}

async fn set_up_token_a(cell: &TestCell) -> TokenA {
    let so = cell.init_token().await;
    let user = cell.login("user", USER_PIN).await.unwrap();
    let share = random(keyfrag_core::rsa_share::share_bytes(512));
    let (s, b) = cell
        .a(
            "PUT",
            &format!("/v1/keys/{}", uid(1)),
            Some(put_body(&fake_modulus(), false, &share, None)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let object = json!({"id": uid(8), "key_uid": uid(1), "attrs": [{"t": 0, "v": b64(&[3, 0, 0, 0, 0, 0, 0, 0])}]});
    let (s, b) = cell
        .a(
            "POST",
            "/v1/objects/stage",
            Some(json!({"txid": uid(7), "puts": [object], "deletes": []})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = cell
        .a("POST", "/v1/objects/commit", Some(json!({"txid": uid(7)})))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = cell
        .a(
            "POST",
            "/v1/objects/stage",
            Some(json!({"txid": uid(9), "puts": [], "deletes": [uid(8)]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    TokenA { so, user }
}

/// Token A as A sees it: its key, its object, its staged transaction, its logins.
async fn assert_token_a_intact(cell: &TestCell, a: &TokenA) {
    let (_, b) = cell.a("GET", "/v1/keys", None).await;
    let keys = b["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{b}");
    assert_eq!(keys[0]["uid"], uid(1));
    assert!(keys[0]["lease_remaining_secs"].is_null(), "{b}");
    let (_, b) = cell.a("GET", "/v1/objects", None).await;
    assert_eq!(b["objects"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["objects"][0]["id"], uid(8));
    let (_, b) = cell.a("GET", "/v1/objects/pending", None).await;
    assert!(b.to_string().contains(&uid(9)), "{b}");
    let (s, b) = cell
        .call(
            "POST",
            &format!("/v1/keys/{}/rsa-partial", uid(1)),
            Some(KEY_A),
            Some(&a.user),
            Some(json!({"input": b64(&[2])})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "A's user login still works: {b}");
    let (s, b) = cell
        .call(
            "POST",
            "/v1/pin/set",
            Some(KEY_A),
            Some(&a.so),
            Some(json!({"old_pin": SO_PIN, "new_pin": SO_PIN})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "A's SO login still works: {b}");
    let status = cell.token_status().await;
    assert_eq!(status["initialized"], true);
    assert_eq!(status["label"], "tok");
}

#[tokio::test]
async fn another_tokens_key_reaches_only_its_own_token() {
    let cell = TestCell::new();
    let a = set_up_token_a(&cell).await;
    let b = |method: &'static str, path: String, login: Option<String>, body: Option<Value>| {
        let cell = &cell;
        async move {
            cell.call(method, &path, Some(KEY_B), login.as_deref(), body)
                .await
        }
    };
    let key = format!("/v1/keys/{}", uid(1));
    let partial = format!("/v1/keys/{}/rsa-partial", uid(1));
    let user = Some(a.user.clone());
    let so = Some(a.so.clone());

    // Reads show B's own (empty, uninitialised) token.
    let (s, body) = b("GET", "/v1/token".into(), None, None).await;
    assert_eq!((s, &body["initialized"]), (StatusCode::OK, &json!(false)));
    let (s, body) = b("GET", "/v1/keys".into(), None, None).await;
    assert_eq!((s, body), (StatusCode::OK, json!({"keys": []})));
    let (s, body) = b("GET", "/v1/objects".into(), None, None).await;
    assert_eq!((s, &body["objects"]), (StatusCode::OK, &json!([])));
    let (s, body) = b("GET", "/v1/objects/pending".into(), None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!body.to_string().contains(&uid(9)), "{body}");
    let (s, body) = b(
        "POST",
        "/v1/objects/status".into(),
        None,
        Some(json!({"txid": uid(7)})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["status"], "unknown", "A's committed tx: {body}");

    assert_refusal(
        "read A's key",
        b("GET", key.clone(), None, None).await,
        StatusCode::NOT_FOUND,
        "key_not_found",
    );

    // A's logins and PINs mean nothing to token B.
    assert_refusal(
        "partial with A's login",
        b(
            "POST",
            partial.clone(),
            user.clone(),
            Some(json!({"input": b64(&[2])})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "user_not_logged_in",
    );
    assert_refusal(
        "init PIN with A's SO login",
        b(
            "POST",
            "/v1/pin/init".into(),
            so.clone(),
            Some(json!({"new_pin": "9999"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "user_not_logged_in",
    );
    assert_refusal(
        "set PIN with A's login",
        b(
            "POST",
            "/v1/pin/set".into(),
            user.clone(),
            Some(json!({"old_pin": USER_PIN, "new_pin": "9999"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "user_not_logged_in",
    );
    assert_refusal(
        "log in with A's PIN",
        b(
            "POST",
            "/v1/login".into(),
            None,
            Some(json!({"user": "user", "pin": USER_PIN})),
        )
        .await,
        StatusCode::CONFLICT,
        "token_not_initialized",
    );
    let (s, _) = b("POST", "/v1/logout".into(), user.clone(), Some(json!({}))).await;
    assert_eq!(s, StatusCode::OK, "logout is idempotent");

    // Writes by uid or txid land in B's namespace, never in A's.
    let (s, _) = b("DELETE", key.clone(), user.clone(), None).await;
    assert_eq!(s, StatusCode::OK, "deleting an absent key is idempotent");
    let (s, body) = b(
        "POST",
        "/v1/keys/lease".into(),
        None,
        Some(json!({"uids": [uid(1)], "lease_secs": 60})),
    )
    .await;
    assert_eq!(
        (s, body),
        (StatusCode::OK, json!({"keys": []})),
        "A's key is not B's"
    );
    assert_refusal(
        "commit A's staged tx",
        b(
            "POST",
            "/v1/objects/commit".into(),
            None,
            Some(json!({"txid": uid(9)})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (s, _) = b(
        "POST",
        "/v1/objects/abort".into(),
        None,
        Some(json!({"txid": uid(9)})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "abort is idempotent");
    let (s, body) = b(
        "POST",
        "/v1/objects/stage".into(),
        None,
        Some(json!({"txid": uid(10), "puts": [], "deletes": [uid(8)]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = b(
        "POST",
        "/v1/objects/commit".into(),
        None,
        Some(json!({"txid": uid(10)})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // B may store a key under the same uid: it is B's key, and A's is untouched.
    let share = random(keyfrag_core::rsa_share::share_bytes(512));
    let (s, body) = b(
        "PUT",
        key.clone(),
        None,
        Some(put_body(&fake_modulus(), true, &share, Some(60))),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _) = b("DELETE", key.clone(), None, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = b(
        "POST",
        "/v1/token/init".into(),
        None,
        Some(json!({"phase": "apply", "so_pin": "b-so-pin-1", "label": "token-b"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "B initialises its own token: {body}");

    assert_token_a_intact(&cell, &a).await;
}

/// A's PRF key, created and fixed with A's key, is nothing to token B: B cannot evaluate it
/// (with A's login or its own lack of one), fix its commitments, delete or lease it, and B's
/// own PRF key under the same uid is B's alone.
#[tokio::test]
async fn another_tokens_key_cannot_reach_a_prf_key() {
    let cell = TestCell::new();
    let a = set_up_token_a(&cell).await;
    let prf = uid(5);
    let (s, body) = cell
        .a(
            "POST",
            &format!("/v1/keys/{prf}/prf-create"),
            Some(json!({"lease_secs": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let commitment = body["commitment"].as_str().unwrap().to_owned();
    let (s, body) = cell
        .a(
            "POST",
            &format!("/v1/keys/{prf}/prf-commitments"),
            Some(json!({"commitments": [commitment]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let g = b64(&curve25519_dalek_basepoint());
    let evaluate = format!("/v1/keys/{prf}/prf-evaluate");
    let b = |method: &'static str, path: String, login: Option<String>, body: Option<Value>| {
        let cell = &cell;
        async move {
            cell.call(method, &path, Some(KEY_B), login.as_deref(), body)
                .await
        }
    };
    assert_refusal(
        "evaluate A's PRF key with A's login",
        b(
            "POST",
            evaluate.clone(),
            Some(a.user.clone()),
            Some(json!({"blinded": g})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "user_not_logged_in",
    );
    assert_refusal(
        "fix A's commitments",
        b(
            "POST",
            format!("/v1/keys/{prf}/prf-commitments"),
            None,
            Some(json!({"commitments": [commitment]})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "key_not_found",
    );
    let (s, _) = b("DELETE", format!("/v1/keys/{prf}"), None, None).await;
    assert_eq!(s, StatusCode::OK, "deleting an absent key is idempotent");
    let (s, body) = b(
        "POST",
        format!("/v1/keys/{prf}/prf-create"),
        None,
        Some(json!({"lease_secs": 60})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "B's own key under the same uid: {body}");
    assert_ne!(
        body["commitment"],
        json!(commitment),
        "B's share is B's own"
    );

    let (s, body) = cell
        .call(
            "POST",
            &evaluate,
            Some(KEY_A),
            Some(&a.user),
            Some(json!({"blinded": g})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "A still evaluates its key: {body}");
    assert_eq!(body["commitments"], json!([commitment]));
    let (_, body) = cell.a("GET", &format!("/v1/keys/{prf}"), None).await;
    assert_eq!(body["kind"], "prf");
    assert!(body["lease_remaining_secs"].is_null(), "{body}");
}

/// The ristretto255 generator's encoding: a valid blinded element for a route test.
fn curve25519_dalek_basepoint() -> [u8; 32] {
    let mut g = [0u8; 32];
    hex::decode_to_slice(
        "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
        &mut g,
    )
    .unwrap();
    g
}

#[tokio::test]
async fn another_tokens_key_cannot_touch_a_key_generation() {
    let (_cell, state) = cell_with_relay();
    let session = uid(3);
    let start = json!({"session": session, "key_uid": uid(4), "bits": 1024, "allow_1024": true,
                       "parties": ["peer-0", "test-cell", "peer-2"]});
    let auth_a = format!("Bearer {KEY_A}");
    let auth_b = format!("Bearer {KEY_B}");
    let (s, _) = send(
        &state,
        "POST",
        "/v1/keygen/start",
        &[("authorization", &auth_a)],
        serde_json::to_vec(&start).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let b = [("authorization", auth_b.as_str())];
    let empty = encode_batch::<Vec<u8>>(&[]);
    assert_refusal(
        "step A's session",
        send(
            &state,
            "POST",
            &format!("/v1/keygen/{session}/step"),
            &b,
            empty,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_refusal(
        "commit A's session",
        send(
            &state,
            "POST",
            &format!("/v1/keygen/{session}/commit"),
            &b,
            br#"{"transcript_hashes":[]}"#.to_vec(),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (s, _) = send(
        &state,
        "POST",
        &format!("/v1/keygen/{session}/abort"),
        &b,
        vec![],
    )
    .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "abort of an unknown session is idempotent"
    );
    assert!(
        !state.keygen_sessions().is_empty(),
        "A's session survives B's abort"
    );
    let a = [("authorization", auth_a.as_str())];
    let (s, _) = send(
        &state,
        "POST",
        &format!("/v1/keygen/{session}/abort"),
        &a,
        vec![],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(state.keygen_sessions().is_empty());
}

/// A TLS cell on 127.0.0.1:0 and a client that trusts its CA.
async fn tls_cell(cell: &TestCell) -> (keyfrag_server::RunningCell, tokio_rustls::TlsConnector) {
    let certs = keyfrag_server::tls::dev_certificates(&["127.0.0.1".into()]).unwrap();
    std::fs::write(&cell.config.tls_cert, &certs.cert_pem).unwrap();
    std::fs::write(&cell.config.tls_key, &certs.key_pem).unwrap();
    let running = keyfrag_server::start(cell.config.clone()).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(certs.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    (running, tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Everything the cell sends back for `request` over TLS (until it closes).
async fn over_tls(
    connector: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    request: &[u8],
) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_port_speaks_only_tls() {
    let cell = TestCell::new();
    let (running, connector) = tls_cell(&cell).await;
    let addr = running.addr;

    // Plain HTTP, with a valid key: no HTTP answer, only a closed connection (or a TLS alert).
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let plain = format!(
        "GET /v1/info HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY_A}\r\n\
         Connection: close\r\n\r\n"
    );
    tcp.write_all(plain.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out).await;
    assert!(
        !String::from_utf8_lossy(&out).contains("HTTP/"),
        "plain HTTP was answered: {out:?}"
    );
    if let Some(&first) = out.first() {
        assert_eq!(
            first, 0x15,
            "only a TLS alert record may come back: {out:?}"
        );
    }

    // Oversized headers over TLS: refused without reaching a handler; the cell keeps serving.
    let huge = "a".repeat(512 * 1024);
    let req = format!(
        "GET /v1/info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\nx-pad: {huge}\r\n\
         Connection: close\r\n\r\n"
    );
    let resp = over_tls(&connector, addr, req.as_bytes()).await;
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 431"),
        "oversized headers: {}",
        &resp[..resp.len().min(200)]
    );

    // The same cell over TLS answers, and refuses a missing key with the structured body.
    let ok = format!(
        "GET /v1/info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n\
         Connection: close\r\n\r\n"
    );
    let resp = over_tls(&connector, addr, ok.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let anon = "GET /v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let resp = over_tls(&connector, addr, anon.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    assert!(resp.contains(r#""code":"unauthorized""#), "{resp}");
    running.shutdown().await;
}

#[tokio::test]
async fn a_token_over_its_rate_is_refused_and_others_are_not() {
    let mut cell = TestCell::new();
    cell.config.rate_limit_per_sec = 1;
    cell.config.rate_limit_burst = 5;
    cell.state = cell.reopen();
    for i in 0..5 {
        let (status, _) = cell.a("GET", "/v1/token", None).await;
        assert_eq!(status, StatusCode::OK, "request {i} within the burst");
    }
    let got = cell.a("GET", "/v1/token", None).await;
    assert_refusal(
        "over the rate",
        got,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    // Token B has its own bucket; a request without a valid key is still unauthorized.
    let (status, _) = cell.call("GET", "/v1/token", Some(KEY_B), None, None).await;
    assert_eq!(status, StatusCode::OK);
    let got = cell
        .call("GET", "/v1/token", Some("nope"), None, None)
        .await;
    assert_refusal("bad key", got, StatusCode::UNAUTHORIZED, "unauthorized");
}
