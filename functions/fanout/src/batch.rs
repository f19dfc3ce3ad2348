//! The generic queue consumer: one typed handler per message, and everything around it.
//!
//! [`handle_batch`] owns what every consumer needs and no handler should repeat: decoding the
//! body, a span per message, running the batch's messages concurrently, containing a panic to
//! the message that caused it, and reporting exactly which messages failed (the SQS
//! "partial batch failure" contract, so a Lambda can return the same list). [`poll_once`] is one
//! testable step of a polling worker: receive, handle, then ack, re-schedule or retry each
//! message according to its outcome. The loop around it lives with each consumer.

use std::future::Future;
use std::time::Duration;

use futures::FutureExt as _;
use openwa_core::error::{Error, Result};
use openwa_core::ports::{JobQueue, NewJob, QueueName, ReceivedJob};
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

/// What a handler decided about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Done: ack it.
    Done,
    /// Handle it again after this long, as a fresh message (does not count as a failed receive).
    Later(Duration),
}

/// Why a message failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The body did not decode; no retry will help.
    Malformed(String),
    /// The handler returned an error (retried by the queue).
    Error(Error),
    /// The handler panicked (retried by the queue, dead-lettered after its receive limit).
    Panicked(String),
}

/// The outcome of one batch: for each message, in receive order, its result.
#[derive(Debug)]
pub struct BatchReport {
    pub results: Vec<(ReceivedJob, std::result::Result<Handled, Failure>)>,
}

impl BatchReport {
    /// Ids of the messages that failed: what an SQS-triggered Lambda returns as
    /// `batchItemFailures`.
    pub fn failed_ids(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(j, _)| j.id.clone())
            .collect()
    }
}

/// Decodes and handles every message of a batch concurrently. Never fails as a whole: each
/// message's outcome is in the report.
pub async fn handle_batch<M, H, F>(jobs: Vec<ReceivedJob>, handler: H) -> BatchReport
where
    M: DeserializeOwned,
    H: Fn(M, &ReceivedJob) -> F,
    F: Future<Output = Result<Handled>>,
{
    let handler = &handler;
    handle_jobs(jobs, |job| async move {
        let message: M =
            serde_json::from_slice(&job.body).map_err(|e| Failure::Malformed(e.to_string()))?;
        handler(message, &job).await.map_err(Failure::Error)
    })
    .await
}

/// [`handle_batch`] for handlers that decode the body themselves (a consumer that answers a
/// malformed message instead of failing it): every job is handed over as received, with the
/// same spans, concurrency, panic containment and report.
pub async fn handle_jobs<H, F>(jobs: Vec<ReceivedJob>, handler: H) -> BatchReport
where
    H: Fn(ReceivedJob) -> F,
    F: Future<Output = std::result::Result<Handled, Failure>>,
{
    let handler = &handler;
    let runs = jobs.into_iter().map(|job| async move {
        let span =
            tracing::info_span!("message", job_id = %job.id, receive_count = job.receive_count);
        let outcome = std::panic::AssertUnwindSafe(handler(job.clone()))
            .catch_unwind()
            .instrument(span.clone())
            .await
            .unwrap_or_else(|panic| Err(Failure::Panicked(panic_message(&panic))));
        if let Err(failure) = &outcome {
            let _entered = span.enter();
            tracing::warn!(?failure, "message failed");
        }
        (job, outcome)
    });
    BatchReport {
        results: futures::future::join_all(runs).await,
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

/// Receive options of a polling consumer.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Messages per receive (SQS caps this at 10).
    pub batch: u32,
    /// How long a received message stays hidden while it is handled.
    pub visibility: Duration,
    /// Long-poll wait for the first message.
    pub wait: Duration,
    /// A failed message becomes visible again after `retry_base * receive_count`.
    pub retry_base: Duration,
}

/// The longest delay a queue accepts on send (SQS: 15 minutes); longer waits are chained.
pub const MAX_SEND_DELAY: Duration = Duration::from_secs(15 * 60);

/// Counts of one poll step.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepCounts {
    pub received: usize,
    pub done: usize,
    pub later: usize,
    pub failed: usize,
}

/// One step of a polling consumer: receive a batch, handle it, settle every message.
pub async fn poll_once<M, H, F>(
    queue: &dyn JobQueue,
    name: &QueueName,
    opts: &PollOptions,
    handler: H,
) -> Result<StepCounts>
where
    M: DeserializeOwned,
    H: Fn(M, &ReceivedJob) -> F,
    F: Future<Output = Result<Handled>>,
{
    let jobs = queue
        .receive(name, opts.batch, opts.visibility, opts.wait)
        .await?;
    let mut counts = StepCounts {
        received: jobs.len(),
        ..StepCounts::default()
    };
    if jobs.is_empty() {
        return Ok(counts);
    }
    let report = handle_batch(jobs, handler).await;
    for (job, outcome) in report.results {
        match settle(queue, name, opts, &job, outcome).await {
            Settled::Done => counts.done += 1,
            Settled::Later => counts.later += 1,
            Settled::Failed => counts.failed += 1,
        }
    }
    Ok(counts)
}

/// How a message was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Done,
    Later,
    Failed,
}

/// Acks, re-schedules, dead-letters or retries one handled message by its outcome.
pub async fn settle(
    queue: &dyn JobQueue,
    name: &QueueName,
    opts: &PollOptions,
    job: &ReceivedJob,
    outcome: std::result::Result<Handled, Failure>,
) -> Settled {
    let (settled, result) = match outcome {
        Ok(Handled::Done) => (Settled::Done, queue.ack(name, &job.receipt).await),
        Ok(Handled::Later(delay)) => (Settled::Later, requeue(queue, name, job, delay).await),
        Err(Failure::Malformed(why)) => (
            Settled::Failed,
            queue
                .dead_letter(name, &job.receipt, &format!("malformed: {why}"))
                .await,
        ),
        Err(_) => (
            Settled::Failed,
            queue
                .retry_later(
                    name,
                    &job.receipt,
                    opts.retry_base * job.receive_count.max(1),
                )
                .await,
        ),
    };
    // A stale receipt means the message was redelivered meanwhile; the new holder settles it.
    if let Err(error) = result {
        tracing::warn!(%error, job_id = %job.id, "could not settle a message");
    }
    settled
}

/// Re-sends the message with a delay and acks the received copy. Send first: a crash in between
/// leaves a duplicate, never a loss.
pub async fn requeue(
    queue: &dyn JobQueue,
    name: &QueueName,
    job: &ReceivedJob,
    delay: Duration,
) -> Result<()> {
    queue.send(name, requeued(job, delay)).await?;
    queue.ack(name, &job.receipt).await
}

/// A fresh copy of `job` to handle again after `delay`, capped at what a queue accepts
/// ([`MAX_SEND_DELAY`]): a longer wait is chained, the handler finding the job early and
/// asking for the rest.
pub fn requeued(job: &ReceivedJob, delay: Duration) -> NewJob {
    NewJob {
        body: job.body.clone(),
        group: job.group.clone(),
        dedup_id: None,
        delay: delay.min(MAX_SEND_DELAY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requeued_copy_never_asks_for_more_delay_than_a_queue_accepts() {
        let job = ReceivedJob {
            id: "m-1".into(),
            receipt: "r".into(),
            body: b"{}".to_vec(),
            group: Some("g".into()),
            receive_count: 1,
            enqueued_at: chrono::Utc::now(),
        };
        let later = requeued(&job, Duration::from_secs(2 * 3600));
        assert_eq!(later.delay, MAX_SEND_DELAY);
        assert_eq!(later.body, job.body);
        assert_eq!(later.group, job.group);
        assert_eq!(
            requeued(&job, Duration::from_secs(5)).delay,
            Duration::from_secs(5)
        );
    }
}
