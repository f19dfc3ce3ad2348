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
use crate::error::{ApiError, SimError};
use crate::media::MediaStore;
use crate::network::Network;
use crate::network::persist::{self, Persister};
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

/// Bind `listen`; when its port is 0 and a state file recorded the previous port, try that
/// one first so the page origin (and the login stored per origin) survives the restart.
async fn bind(
    listen: SocketAddr,
    previous: Option<u16>,
) -> Result<tokio::net::TcpListener, SimError> {
    if listen.port() == 0
        && let Some(port) = previous.filter(|p| *p != 0)
    {
        let again = SocketAddr::new(listen.ip(), port);
        match tokio::net::TcpListener::bind(again).await {
            Ok(listener) => return Ok(listener),
            Err(error) => {
                tracing::warn!(%again, %error, "previous port unavailable; pages will need a new scan");
            }
        }
    }
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: listen,
            source,
        })
}

/// A running simulator. Dropping it does not stop the server; call [`Simulator::shutdown`].
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    persister: Option<Persister>,
}

impl Simulator {
    /// Bind and start serving in the background of the current Tokio runtime. With a
    /// [`SimulatorConfig::state_file`], the network is loaded from it first (a corrupt or
    /// unknown-version file is an error naming the file) and saved to it after every change.
    pub async fn start(config: SimulatorConfig) -> Result<Self, SimError> {
        let loaded = match &config.state_file {
            Some(path) => persist::load(path)?,
            None => None,
        };
        let listener = bind(config.listen, loaded.as_ref().and_then(|l| l.port)).await?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
        let seed = config.accounts.clone();
        let state_file = config.state_file.clone();
        let state = AppState {
            net: Network::with_state(config, loaded.map(|l| l.state).unwrap_or_default()),
            media: Arc::new(MediaStore::default()),
        };
        for (phone, name) in &seed {
            match state.net.create_account(phone, name) {
                Ok(_) => {}
                // Already there (loaded from the state file).
                Err(ApiError::Conflict(_)) => {}
                Err(error) => tracing::warn!(%phone, %error, "seed account skipped"),
            }
        }
        let persister = match &state_file {
            Some(path) => Some(Persister::start(&state.net, path, addr.port()).await?),
            None => None,
        };
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
            persister,
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
    /// With a state file, pending changes are saved before this returns.
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
        if let Some(persister) = self.persister.take() {
            persister.finish().await;
        }
    }

    /// Wait until the server stops (for the binary).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}
