//! Serving: a TLS accept loop with bounded concurrency, per-connection hyper tasks, the
//! sweeper (expired session keys, idle key generations and refresh deals), and graceful
//! shutdown (stop accepting, let in-flight requests finish).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::config::CellConfig;
use crate::error::ServerError;
use crate::routes::{app, now_secs};
use crate::state::AppState;

/// Connections served at once; further clients wait in the listen backlog.
const MAX_CONNECTIONS: usize = 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How often expired session keys are deleted. Expired keys are already invisible to
/// requests, so this only bounds how long their sealed rows stay on disk.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A cell serving in background tasks. Dropping it also stops them (without waiting).
pub struct RunningCell {
    /// The address actually bound (port 0 in the config becomes a real port).
    pub addr: SocketAddr,
    /// The metrics listener's address, when `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    metrics: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningCell")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningCell {
    /// Stop accepting, finish in-flight requests, stop the sweeper, and return once all of it
    /// is done (the listening socket is closed by then, so the address can be bound again).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        let _ = self.sweeper.await;
        if let Some(metrics) = self.metrics {
            let _ = metrics.await;
        }
    }
}

/// Open the store and keys, bind, and serve in the background.
pub async fn start(config: CellConfig) -> Result<RunningCell, ServerError> {
    let tls = crate::tls::server_config(&config.tls_cert, &config.tls_key)?;
    let state = AppState::open(&config)?;
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let (stop, stopped) = watch::channel(false);
    let (metrics_addr, metrics) = match config.metrics_listen {
        Some(at) => {
            let (bound, task) =
                crate::metrics_http::start(at, state.clone(), stopped.clone()).await?;
            tracing::info!(cell = %config.name, addr = %bound, "metrics listening");
            (Some(bound), Some(task))
        }
        None => (None, None),
    };
    let server = tokio::spawn(accept_loop(
        listener,
        TlsAcceptor::from(tls),
        app(state.clone()),
        stopped.clone(),
    ));
    let sweeper = tokio::spawn(sweep_loop(state, stopped));
    tracing::info!(cell = %config.name, %addr, "listening");
    Ok(RunningCell {
        addr,
        metrics_addr,
        stop,
        server,
        sweeper,
        metrics,
    })
}

/// Resolves once shutdown is requested (or the `RunningCell` was dropped).
async fn stopping(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|&stop| stop).await;
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopping(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopping(&mut stop) => break,
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_connection(
            stream,
            peer,
            acceptor.clone(),
            router.clone(),
            stop.clone(),
            permit,
        ));
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let tls = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => match r {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        _ = stopping(&mut stop) => return,
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router));
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopping(&mut stop) => {
            // Finishes the request in flight, then closes; idle connections close at once.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

async fn sweep_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping(&mut stop) => return,
        }
        let idle = state.keygen_sessions().sweep(crate::keygen::IDLE_LIMIT);
        if idle > 0 {
            tracing::info!(count = idle, "idle key generation sessions dropped");
        }
        let deals = state.refresh_deals().sweep(crate::refresh::IDLE_LIMIT);
        if deals > 0 {
            tracing::info!(count = deals, "refresh deals never prepared dropped");
        }
        let store = state.store().clone();
        match tokio::task::spawn_blocking(move || store.sweep_expired(now_secs())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::info!(target: "audit", expired = n, "expired session keys deleted")
            }
            Ok(Err(e)) => tracing::error!(error = %e, "lease sweep failed"),
            Err(e) => tracing::error!(error = %e, "lease sweep task failed"),
        }
    }
}
