//! openwa-deliver: webhook deliveries that are never lost. Consumes `QueueName::Deliveries`;
//! each job is one attempt of one delivery: a Standard Webhooks-signed POST through the SSRF
//! guard (or a send to an SQS target), recorded in the delivery log, then retried on the
//! schedule (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) or dead-lettered.
//!
//! Layout:
//! - [`guard`]: the SSRF guard ([`SsrfGuard`], the `UrlGuard` the webhook service checks at
//!   creation, and the injectable [`Resolver`], both from `openwa-ssrf`) and the HTTP client's
//!   filtering resolver
//! - [`sender`]: signed headers, the guarded HTTP client, what a response means
//! - [`metrics`]: the `DeliveryFailures` CloudWatch metric (EMF lines)
//! - [`limits`]: per-host slots and the pacing of a saturated host's backlog
//! - [`sqs`]: the SQS-target message (event JSON + signature attributes); the port is in core
//! - [`worker`]: the per-delivery step and the polling worker with per-host isolation; its
//!   `batch` module reads a batch's deliveries and webhooks once ([`Prefetched`]) and handles a
//!   batch together ([`Deliverer::handle_many`], the deliver Lambda's way)
//! - this file: [`DeliverConfig`] and the `run` functions `openwa up` and the worker binary call

pub mod guard;
pub mod limits;
pub mod metrics;
pub mod sender;
pub mod sqs;
pub mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use openwa_core::error::Result;
use openwa_core::ports::{Backend, QueueName};
use openwa_core::webhook::RetrySchedule;
use openwa_fanout::batch::PollOptions;

pub use guard::{AllowList, Resolver, SsrfGuard, SystemResolver};
pub use sender::{HttpSender, Verdict};
pub use sqs::{SqsTargetMessage, SqsTargetSender, UnavailableSqs};
pub use worker::{Deliverer, Prefetched, Worker};

/// How the deliver worker runs.
#[derive(Debug, Clone)]
pub struct DeliverConfig {
    /// Jobs in flight at once, across all hosts.
    pub concurrency: usize,
    /// Jobs in flight at once to one host (scheme + host + port); keep well below `concurrency`.
    pub per_host: usize,
    /// Per-attempt HTTP timeout (connect + response).
    pub request_timeout: Duration,
    /// The retry schedule; `RetrySchedule::scaled` compresses it for tests.
    pub schedule: RetrySchedule,
    /// Addresses the SSRF guard lets through although they are private (local development).
    pub allowlist: AllowList,
    pub poll: PollOptions,
    /// Shortest and longest wait of a job whose host is at its limit (see [`limits`]).
    pub defer: Duration,
    pub max_defer: Duration,
}

impl Default for DeliverConfig {
    fn default() -> Self {
        let request_timeout = Duration::from_secs(15);
        Self {
            concurrency: 256,
            per_host: 16,
            request_timeout,
            schedule: RetrySchedule::standard(),
            allowlist: AllowList::default(),
            poll: PollOptions {
                batch: 10,
                // Longer than an attempt can take, so a job is not redelivered while in hand.
                visibility: request_timeout * 4,
                wait: Duration::from_secs(1),
                retry_base: Duration::from_secs(2),
            },
            defer: Duration::from_millis(250),
            max_defer: Duration::from_secs(60),
        }
    }
}

/// Builds the deliverer with the system resolver and no SQS targets (embedded mode).
pub fn deliverer(backend: &Backend, config: &DeliverConfig) -> Result<Deliverer> {
    let guard = SsrfGuard::system(config.allowlist.clone());
    deliverer_with(backend, config, guard, Arc::new(UnavailableSqs))
}

/// Builds the deliverer with a given guard (resolver) and SQS sender.
pub fn deliverer_with(
    backend: &Backend,
    config: &DeliverConfig,
    guard: SsrfGuard,
    sqs: Arc<dyn SqsTargetSender>,
) -> Result<Deliverer> {
    let http = HttpSender::new(guard, config.request_timeout)?;
    let limits = limits::HostLimits::new(config.per_host, config.defer, config.max_defer);
    Ok(Deliverer::new(backend, http, sqs, config.schedule, limits))
}

/// Runs the deliver worker until `shutdown` completes, then waits for attempts in hand.
pub async fn run(
    backend: Backend,
    config: DeliverConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let deliverer = Arc::new(deliverer(&backend, &config)?);
    run_with(backend, deliverer, config, shutdown).await
}

/// [`run`] with a prepared deliverer (tests inject resolvers and SQS senders this way).
pub async fn run_with(
    backend: Backend,
    deliverer: Arc<Deliverer>,
    config: DeliverConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    backend.queue.ensure(&QueueName::Deliveries).await?;
    backend.queue.ensure(&QueueName::Events).await?;
    let mut worker = Worker::new(deliverer, config.concurrency, config.poll.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            result = worker.step() => if let Err(error) = result {
                tracing::warn!(%error, "deliveries receive failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
            },
        }
    }
    worker
        .drain(config.request_timeout + Duration::from_secs(5))
        .await;
    tracing::info!("deliver worker stopped");
    Ok(())
}
