//! Health and readiness probes (no access key, nothing revealed) and the Prometheus metrics
//! listener: counters move with real requests, and the listener is plain HTTP on its own port.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use keyfrag_server::AppState;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

/// A GET on `router` without any header; status and body text.
async fn get_text(router: axum::Router, path: &str) -> (StatusCode, String) {
    let req = Request::builder().uri(path).body(Body::empty()).unwrap();
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn scrape(state: &AppState) -> String {
    let (s, text) = get_text(
        keyfrag_server::metrics_http::router(state.clone()),
        "/metrics",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    text
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn probes_need_no_access_key_and_reveal_nothing() {
    let cell = TestCell::new();
    let (s, body) = get_text(keyfrag_server::app(cell.state.clone()), "/healthz").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "ok\n"));
    let (s, body) = get_text(keyfrag_server::app(cell.state.clone()), "/readyz").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "ready\n"));
    // Everything else still wants the key.
    let (s, _) = get_text(keyfrag_server::app(cell.state.clone()), "/v1/info").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    assert!(cell.state.maintenance().begin_restore());
    let (s, body) = get_text(keyfrag_server::app(cell.state.clone()), "/readyz").await;
    assert_eq!(
        (s, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "restoring\n")
    );
    cell.state.maintenance().end_restore();
}

#[tokio::test]
async fn scrape_after_partials_shows_the_counters_moved() {
    let cell = TestCell::new();
    cell.init_token().await;
    let user = cell.login("user", USER_PIN).await.unwrap();
    let before = scrape(&cell.state).await;
    let partial_ok = "keyfrag_requests_total{route=\"/v1/keys/{uid}/rsa-partial\",status=\"200\"}";
    assert_eq!(sample(&before, partial_ok), None);

    let modulus = {
        let mut m = random(128);
        m[0] |= 0x80;
        m[127] |= 1;
        m
    };
    let key = uid(0x51);
    let (s, b) = cell
        .a(
            "PUT",
            &format!("/v1/keys/{key}"),
            Some(put_body(&modulus, false, &random(156), None)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // A power of two: invertible modulo every odd modulus (a random x shares a factor with
    // the random modulus now and then, and the partial is then refused).
    let mut x = vec![0u8; 128];
    x[0] = 1;
    for _ in 0..3 {
        let (s, b) = cell
            .call(
                "POST",
                &format!("/v1/keys/{key}/rsa-partial"),
                Some(KEY_A),
                Some(&user),
                Some(json!({"input": b64(&x), "epoch": 1})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, b) = cell
        .call(
            "POST",
            &format!("/v1/keys/{}/rsa-partial", uid(0x52)),
            Some(KEY_A),
            Some(&user),
            Some(json!({"input": b64(&x), "epoch": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, _) = cell
        .call("GET", "/v1/keys", Some("wrong"), None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let after = scrape(&cell.state).await;
    assert_eq!(sample(&after, partial_ok), Some(3.0), "{after}");
    assert_eq!(
        sample(
            &after,
            "keyfrag_requests_total{route=\"/v1/keys/{uid}/rsa-partial\",status=\"404\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &after,
            "keyfrag_operation_duration_seconds_count{operation=\"partial\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &after,
            "keyfrag_operation_duration_seconds_bucket{operation=\"partial\",le=\"+Inf\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(&after, "keyfrag_errors_total{code=\"key_not_found\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "keyfrag_errors_total{code=\"unauthorized\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &after,
            "keyfrag_keys{token=\"a\",kind=\"rsa\",lifetime=\"token\"}"
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "keyfrag_key_epoch_max{token=\"a\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "keyfrag_key_epoch_min{token=\"a\"}"),
        Some(1.0)
    );
    // Nothing secret: no access key, login token, uid or input appears.
    for secret in [KEY_A, user.as_str(), key.as_str(), b64(&x).as_str()] {
        assert!(!after.contains(secret), "{secret} in the metrics");
    }
}

#[tokio::test]
async fn rate_limit_refusals_are_counted() {
    let mut cell = TestCell::new();
    cell.config.rate_limit_per_sec = 1;
    cell.config.rate_limit_burst = 1;
    cell.state = cell.reopen();
    let mut refused = 0;
    for _ in 0..5 {
        let (s, _) = cell.a("GET", "/v1/info", None).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(refused >= 3, "{refused}");
    let text = scrape(&cell.state).await;
    assert_eq!(
        sample(&text, "keyfrag_rate_limited_total{token=\"a\"}"),
        Some(f64::from(refused))
    );
}

#[tokio::test]
async fn metrics_listener_is_plain_http_on_its_own_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    let certs = keyfrag_server::tls::dev_certificates(&["127.0.0.1".into()]).unwrap();
    std::fs::write(&config.tls_cert, &certs.cert_pem).unwrap();
    std::fs::write(&config.tls_key, &certs.key_pem).unwrap();
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let cell = keyfrag_server::start(config).await.unwrap();
    let metrics = cell.metrics_addr.expect("metrics listener");
    assert_ne!(metrics, cell.addr);

    let get = |path: &'static str| async move {
        let mut tcp = TcpStream::connect(metrics).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: {metrics}\r\nConnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).await.unwrap();
        out
    };
    let resp = get("/metrics").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("text/plain; version=0.0.4"), "{resp}");
    assert!(
        resp.contains("# TYPE keyfrag_requests_total counter"),
        "{resp}"
    );
    let resp = get("/v1/info").await;
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");

    cell.shutdown().await;
    assert!(
        TcpStream::connect(metrics).await.is_err(),
        "metrics still listening"
    );
}

#[tokio::test]
async fn a_backup_pause_refuses_refresh_and_shows_in_the_metrics() {
    let cell = TestCell::new();
    let now = keyfrag_server::routes::now_secs();
    let backup = uid(0x77);
    cell.state
        .maintenance()
        .pause(&backup, now, now + 600)
        .unwrap();
    let deal = json!({"session": uid(0x78), "epoch": 1, "parties": ["test-cell"]});
    let (s, b) = cell
        .a(
            "POST",
            &format!("/v1/keys/{}/refresh/deal", uid(0x79)),
            Some(deal),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(b["code"], "refresh_paused");
    let text = scrape(&cell.state).await;
    assert_eq!(sample(&text, "keyfrag_refresh_paused"), Some(1.0));
    assert_eq!(
        sample(&text, "keyfrag_errors_total{code=\"refresh_paused\"}"),
        Some(1.0)
    );
    assert!(cell.state.maintenance().resume(&backup, now));
    let text = scrape(&cell.state).await;
    assert_eq!(sample(&text, "keyfrag_refresh_paused"), Some(0.0));
    // Without the pause the same request reaches the refresh code (no relay here: refused
    // for another reason).
    let deal = json!({"session": uid(0x78), "epoch": 1, "parties": ["test-cell"]});
    let (_, b) = cell
        .a(
            "POST",
            &format!("/v1/keys/{}/refresh/deal", uid(0x79)),
            Some(deal),
        )
        .await;
    assert_ne!(b["code"], "refresh_paused", "{b}");
}
