//! The operations HTTP server: `/metrics`, `/healthz`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::metrics::Metrics;

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    health: Arc<Health>,
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.is_live(s.metrics.inflight.get()) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "stalled or failed\n")
    }
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// A bound server; [`HttpServer::serve`] runs it until `stop` is cancelled.
pub struct HttpServer {
    listener: tokio::net::TcpListener,
    router: Router,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(
        addr: SocketAddr,
        metrics: Metrics,
        health: Arc<Health>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let router = Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(AppState { metrics, health });
        Ok(HttpServer { listener, router })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` is cancelled.
    pub async fn serve(self, stop: CancellationToken) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    }
}

/// The operations server running in the background; [`Running::stop`] shuts it down.
pub struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops serving and waits for the server task.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves in the background (used by `run` and `replay`).
pub async fn start(
    addr: SocketAddr,
    metrics: Metrics,
    health: Arc<Health>,
) -> anyhow::Result<Running> {
    use anyhow::Context as _;
    let server = HttpServer::bind(addr, metrics, health)
        .await
        .with_context(|| format!("binding http.listen {addr}"))?;
    tracing::info!(addr = %server.local_addr()?, "Serving /metrics, /healthz, /readyz");
    let stop = CancellationToken::new();
    let task = tokio::spawn(server.serve(stop.clone()));
    Ok(Running { stop, task })
}
