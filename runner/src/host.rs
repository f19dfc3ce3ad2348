//! The runner itself: claims sessions while below capacity, supervises each in its own task,
//! serves health and metrics, and drains on shutdown.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openwa_core::Error as CoreError;
use openwa_core::id::SessionId;
use openwa_core::ports::{Backend, QueueName};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::config::RunnerConfig;
use crate::engine::Engine;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::snapshot::Snapshots;
use crate::{http, session};

/// What every session task of a runner shares.
pub(crate) struct Host {
    pub config: RunnerConfig,
    pub backend: Backend,
    pub engine: Arc<dyn Engine>,
    pub metrics: Arc<Metrics>,
    pub snapshots: Snapshots,
    /// Set when the drain begins; `/ready` turns false.
    pub draining: AtomicBool,
}

impl Host {
    /// How long after a successful claim or renewal the lease is surely still ours: the lease
    /// minus a tenth, so the engine is stopped before another runner can claim.
    pub fn lease_safe_for(&self) -> Duration {
        self.config.lease_duration - self.config.lease_duration / 10
    }

    /// Readiness: not draining and the session store answers.
    pub async fn ready(&self) -> std::result::Result<(), String> {
        if self.draining.load(Ordering::SeqCst) {
            return Err("draining".into());
        }
        let probe = self.backend.sessions.claimable(self.backend.clock.now(), 1);
        match tokio::time::timeout(Duration::from_secs(3), probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("backend: {error}")),
            Err(_) => Err("backend: timed out".into()),
        }
    }
}

/// A session host. Build with [`Runner::new`], then [`Runner::run`] until shutdown.
pub struct Runner {
    host: Arc<Host>,
}

impl Runner {
    pub fn new(config: RunnerConfig, backend: Backend, engine: Arc<dyn Engine>) -> Self {
        let snapshots = Snapshots::new(backend.blobs.clone(), backend.secrets.clone());
        let host = Host {
            config,
            backend,
            engine,
            metrics: Arc::new(Metrics::default()),
            snapshots,
            draining: AtomicBool::new(false),
        };
        Self {
            host: Arc::new(host),
        }
    }

    /// This runner's lease owner id.
    pub fn id(&self) -> &str {
        &self.host.config.runner_id
    }

    /// The metrics this runner keeps (rendered at `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.host.metrics.clone()
    }

    /// `/health`, `/ready` and `/metrics`, for embedding into another server (`openwa up`).
    pub fn router(&self) -> axum::Router {
        http::app(self.host.clone())
    }

    /// Runs until `shutdown` completes, then drains: stops claiming and taking jobs, lets
    /// in-flight sends finish (bounded by the grace period), stops engines, snapshots and
    /// releases every lease.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let host = self.host;
        let span = tracing::info_span!("runner", runner_id = %host.config.runner_id);
        async move {
            let config = &host.config;
            host.backend.queue.ensure(&QueueName::Events).await?;
            tokio::fs::create_dir_all(&config.profiles_root).await?;
            let (stop_http, http_task) = match config.listen {
                Some(addr) => {
                    let (tx, task) = http::serve(host.clone(), addr).await?;
                    (Some(tx), Some(task))
                }
                None => (None, None),
            };
            tracing::info!(capacity = config.capacity, lease_ms = config.lease_duration.as_millis() as u64, "runner started");

            let (drain_tx, drain_rx) = watch::channel(false);
            let mut tasks = JoinSet::new();
            let mut active: HashMap<tokio::task::Id, SessionId> = HashMap::new();
            let mut claim_tick = tokio::time::interval(config.claim_interval);
            claim_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    _ = &mut shutdown => break,
                    Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => forget(&host, &mut active, done),
                    _ = claim_tick.tick() => claim_some(&host, &mut tasks, &mut active, &drain_rx).await,
                }
            }

            tracing::info!(sessions = active.len(), "draining");
            host.draining.store(true, Ordering::SeqCst);
            let _ = drain_tx.send(true);
            // Grace for in-flight sends plus time for engine stops, snapshots and releases.
            let bound = config.drain_grace + Duration::from_secs(30);
            let drained = tokio::time::timeout(bound, async {
                while let Some(done) = tasks.join_next_with_id().await {
                    forget(&host, &mut active, done);
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!(left = tasks.len(), "drain timed out; remaining leases will expire");
                tasks.shutdown().await;
            }
            if let Some(tx) = stop_http {
                let _ = tx.send(());
            }
            if let Some(task) = http_task {
                let _ = task.await;
            }
            tracing::info!("runner stopped");
            Ok(())
        }
        .instrument(span)
        .await
    }
}

fn forget(
    host: &Host,
    active: &mut HashMap<tokio::task::Id, SessionId>,
    done: std::result::Result<(tokio::task::Id, SessionId), tokio::task::JoinError>,
) {
    let id = match &done {
        Ok((id, _)) => *id,
        Err(error) => error.id(),
    };
    if let Some(session) = active.remove(&id)
        && let Err(error) = done
    {
        // Contained: the lease is not renewed any more and expires; the session moves on.
        tracing::error!(%error, session_id = %session, "session supervisor crashed");
        host.metrics.forget_session(&session);
    }
}

/// Claims claimable sessions while below capacity.
async fn claim_some(
    host: &Arc<Host>,
    tasks: &mut JoinSet<SessionId>,
    active: &mut HashMap<tokio::task::Id, SessionId>,
    drain: &watch::Receiver<bool>,
) {
    let config = &host.config;
    let room = config.capacity.saturating_sub(active.len());
    if room == 0 {
        return;
    }
    let sessions = &host.backend.sessions;
    let ids = match sessions
        .claimable(host.backend.clock.now(), room as u32)
        .await
    {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(%error, "listing claimable sessions failed");
            return;
        }
    };
    let hosted: HashSet<&SessionId> = active.values().collect();
    let fresh: Vec<SessionId> = ids.into_iter().filter(|id| !hosted.contains(id)).collect();
    for id in fresh {
        let started = Instant::now();
        let now = host.backend.clock.now();
        let until = now + chrono::Duration::from_std(config.lease_duration).unwrap_or_default();
        match sessions.claim(&id, &config.runner_id, now, until).await {
            Ok(session) => {
                tracing::info!(session_id = %id, epoch = session.lease.epoch, "claimed");
                let handle = tasks.spawn(
                    session::supervise(host.clone(), session, started, drain.clone())
                        .in_current_span(),
                );
                active.insert(handle.id(), id);
            }
            Err(CoreError::Conflict { .. } | CoreError::NotFound { .. }) => {
                tracing::debug!(session_id = %id, "claim lost to another runner or the session changed");
            }
            Err(error) => tracing::warn!(%error, session_id = %id, "claim failed"),
        }
    }
}
