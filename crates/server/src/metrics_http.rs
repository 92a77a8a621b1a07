//! The metrics listener: plain HTTP, `GET /metrics` only, no access key. It carries no key
//! material (counts, route templates, token ids, epochs), but it does say how busy a cell is,
//! so the default and documented place for it is loopback, scraped by a local agent.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::error::ServerError;
use crate::routes::now_secs;
use crate::state::AppState;

/// Scrapers at once; one is the norm.
const MAX_CONNECTIONS: usize = 16;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics here\n") })
        .with_state(state)
}

async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    let now = now_secs();
    let keys = state.db(move |s| s.key_stats(now)).await;
    match keys {
        Ok(keys) => {
            let paused = state.maintenance().refresh_paused(now);
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                state.metrics().render(&keys, paused),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain")],
            "store unavailable\n".to_string(),
        ),
    }
}

/// Bind `addr` and serve until `stop` turns true. Returns the bound address.
pub async fn start(
    addr: SocketAddr,
    state: AppState,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServerError::Listen { addr, source })?;
    let task = tokio::spawn(serve(listener, router(state), stop));
    Ok((bound, task))
}

async fn serve(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stopping(&mut stop) => return,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopping(&mut stop) => return,
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

async fn stopping(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|&stop| stop).await;
}
