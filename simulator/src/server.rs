//! The HTTP server: one router ([`app`]) serving the simulated WhatsApp Web page, its assets,
//! the page WebSocket, media, the phone page and the control API; [`Simulator`] runs it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::SimulatorConfig;
use crate::error::SimError;
use crate::media::MediaStore;
use crate::network::Network;
use crate::{assets, control, media, ws};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The simulated network.
    pub net: Arc<Network>,
    /// Uploaded media.
    pub media: Arc<MediaStore>,
}

/// Build the router for `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/phone", get(assets::phone))
        .route("/assets/{name}", get(assets::asset))
        .route("/ws", get(ws::upgrade))
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/media", post(media::upload))
        .route("/media/{key}", get(media::download))
        .nest("/control", control::router())
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(state)
}

/// A running simulator. Dropping it does not stop the server; call [`Simulator::shutdown`].
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Simulator {
    /// Bind and start serving in the background of the current Tokio runtime.
    pub async fn start(config: SimulatorConfig) -> Result<Self, SimError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
        let seed = config.accounts.clone();
        let state = AppState {
            net: Network::new(config),
            media: Arc::new(MediaStore::default()),
        };
        for (phone, name) in &seed {
            if let Err(error) = state.net.create_account(phone, name) {
                tracing::warn!(%phone, %error, "seed account skipped");
            }
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let router = app(state.clone());
        // Small frames must not wait for Nagle + delayed ACK (40 ms per hop otherwise).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "simulator server failed");
            }
        });
        tracing::info!(%addr, "simulator listening");
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            task,
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Direct access to the network (for in-process embedding and tests).
    pub fn network(&self) -> &Arc<Network> {
        &self.state.net
    }

    /// Stop accepting connections and wait for the server task. Open page sockets are cut.
    pub async fn shutdown(mut self) {
        self.state.net.drop_all_pages();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // WebSockets never finish on their own; give graceful shutdown a moment, then cut.
        let abort = self.task.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }

    /// Wait until the server stops (for the binary).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}
