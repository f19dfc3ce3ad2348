//! `/health` (liveness), `/ready` (readiness: backend reachable, not draining) and `/metrics`
//! (Prometheus text), served on the configured address or mounted by `openwa up`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::oneshot;

use crate::host::Host;

pub(crate) fn app(host: Arc<Host>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(host)
}

async fn ready(State(host): State<Arc<Host>>) -> impl IntoResponse {
    match host.ready().await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

async fn metrics(State(host): State<Arc<Host>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        host.metrics.render(),
    )
}

/// Binds and serves until the returned sender fires.
pub(crate) async fn serve(
    host: Arc<Host>,
    addr: SocketAddr,
) -> std::io::Result<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "health and metrics listening");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app(host)).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(error) = served.await {
            tracing::warn!(%error, "health server failed");
        }
    });
    Ok((tx, task))
}
