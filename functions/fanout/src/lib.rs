//! openwa-fanout: turns events into deliveries. Consumes `QueueName::Events` in batches; for
//! every event stores it once and, for each active subscription that wants it, creates one
//! delivery and enqueues one job on `QueueName::Deliveries`. A batch is handled as a whole
//! (one subscription lookup, one write, batched job sends); idempotent on event id; one bad
//! event never blocks the others of its batch.
//!
//! Persisting inbound messages and statuses is the runner's job in this codebase, not fan-out's.
//!
//! Layout:
//! - [`batch`]: the generic queue consumer (decode, spans, partial-batch failures, panic
//!   containment), per message or per batch, and one polling step; the deliver worker uses it
//!   too
//! - [`fanout`]: the expansion step for a batch ([`Fanout::expand_batch`])
//! - this file: [`FanoutConfig`] and [`run`], the polling loop `openwa up` runs in-process

pub mod batch;
pub mod fanout;

use std::future::Future;
use std::time::Duration;

use openwa_core::event::Event;
use openwa_core::ports::{Backend, QueueName, ReceivedJob};

pub use batch::{
    BatchReport, Failure, Handled, PollOptions, handle_batch, handle_jobs, handle_together,
    poll_once,
};
pub use fanout::{Expanded, Fanout, Incoming};

/// How the fan-out loop polls.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// Independent pollers; each handles one batch at a time.
    pub pollers: usize,
    pub poll: PollOptions,
    /// Pause after a failed receive before trying again.
    pub error_backoff: Duration,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            pollers: 2,
            poll: PollOptions {
                batch: 10,
                visibility: Duration::from_secs(30),
                wait: Duration::from_secs(1),
                retry_base: Duration::from_secs(2),
            },
            error_backoff: Duration::from_millis(500),
        }
    }
}

/// Handles one batch of events (the body of an SQS-triggered Lambda): returns the report whose
/// `failed_ids()` are the batch item failures.
pub async fn handle_events(fanout: &Fanout, jobs: Vec<ReceivedJob>) -> BatchReport {
    handle_together(jobs, |events: Vec<(Event, ReceivedJob)>| async move {
        let batch = events
            .into_iter()
            .map(|(event, job)| Incoming {
                event,
                received_before: job.receive_count > 1,
            })
            .collect();
        fanout
            .expand_batch(batch)
            .await
            .into_iter()
            .map(|r| r.map(|_| Handled::Done))
            .collect()
    })
    .await
}

/// One polling step on the events queue: receive a batch, expand it, settle every message.
pub async fn step(fanout: &Fanout, opts: &PollOptions) -> openwa_core::Result<batch::StepCounts> {
    let queue = fanout.queue.as_ref();
    let jobs = queue
        .receive(&QueueName::Events, opts.batch, opts.visibility, opts.wait)
        .await?;
    let mut counts = batch::StepCounts {
        received: jobs.len(),
        ..batch::StepCounts::default()
    };
    if jobs.is_empty() {
        return Ok(counts);
    }
    let report = handle_events(fanout, jobs).await;
    batch::settle_all(queue, &QueueName::Events, opts, report, &mut counts).await;
    Ok(counts)
}

/// Runs the fan-out loop until `shutdown` completes; the batch in hand is finished first.
pub async fn run(
    backend: Backend,
    config: FanoutConfig,
    shutdown: impl Future<Output = ()> + Send,
) {
    let fanout = Fanout::from_backend(&backend);
    if let Err(error) = backend.queue.ensure(&QueueName::Events).await {
        tracing::error!(%error, "could not create the events queue");
    }
    if let Err(error) = backend.queue.ensure(&QueueName::Deliveries).await {
        tracing::error!(%error, "could not create the deliveries queue");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let pollers: Vec<_> = (0..config.pollers.max(1))
        .map(|_| {
            let (fanout, config, stop) = (fanout.clone(), config.clone(), stop_rx.clone());
            tokio::spawn(async move {
                // The flag is checked between steps, so a batch in hand is always settled.
                while !*stop.borrow() {
                    if let Err(error) = step(&fanout, &config.poll).await {
                        tracing::warn!(%error, "fan-out receive failed");
                        tokio::time::sleep(config.error_backoff).await;
                    }
                }
            })
        })
        .collect();
    shutdown.await;
    let _ = stop_tx.send(true);
    for p in pollers {
        let _ = p.await;
    }
    tracing::info!("fan-out stopped");
}
