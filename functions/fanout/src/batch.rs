//! The generic queue consumer: one typed handler per message, and everything around it.
//!
//! [`handle_batch`] owns what every consumer needs and no handler should repeat: decoding the
//! body, a span per message, running the batch's messages concurrently, containing a panic to
//! the message that caused it, and reporting exactly which messages failed (the SQS
//! "partial batch failure" contract, so a Lambda can return the same list). [`poll_once`] is one
//! testable step of a polling worker: receive, handle, then ack, re-schedule or retry each
//! message according to its outcome. The loop around it lives with each consumer.
//! [`handle_together`] is the variant for consumers that work per batch rather than per
//! message (fan-out: one subscription lookup and one write for all the batch's events), with
//! the same decoding, panic containment and per-message report.

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

/// Decodes every message of a batch and hands the decodable ones to `handler` at once, each
/// with its job, in receive order. `handler` returns one result per message it was given, in
/// the same order. A malformed body fails alone; a panic (or a handler that returns the wrong
/// number of results) fails every message it was given. Never fails as a whole.
pub async fn handle_together<M, H, F>(jobs: Vec<ReceivedJob>, handler: H) -> BatchReport
where
    M: DeserializeOwned,
    H: FnOnce(Vec<(M, ReceivedJob)>) -> F,
    F: Future<Output = Vec<Result<Handled>>>,
{
    let mut results: Vec<Option<std::result::Result<Handled, Failure>>> = vec![None; jobs.len()];
    let (mut decoded, mut places) = (Vec::new(), Vec::new());
    for (i, job) in jobs.iter().enumerate() {
        match serde_json::from_slice::<M>(&job.body) {
            Ok(message) => {
                decoded.push((message, job.clone()));
                places.push(i);
            }
            Err(e) => results[i] = Some(Err(Failure::Malformed(e.to_string()))),
        }
    }
    if !decoded.is_empty() {
        let given = decoded.len();
        let span = tracing::info_span!("batch", messages = given);
        let outcome = std::panic::AssertUnwindSafe(handler(decoded))
            .catch_unwind()
            .instrument(span)
            .await;
        let all = |failure: Failure| places.iter().map(move |_| Err(failure.clone()));
        let handled: Vec<std::result::Result<Handled, Failure>> = match outcome {
            Ok(list) if list.len() == given => list
                .into_iter()
                .map(|r| r.map_err(Failure::Error))
                .collect(),
            Ok(_) => all(Failure::Error(Error::unexpected(
                "the batch handler returned the wrong number of results",
            )))
            .collect(),
            Err(panic) => all(Failure::Panicked(panic_message(&panic))).collect(),
        };
        for (i, result) in places.iter().zip(handled) {
            results[*i] = Some(result);
        }
    }
    let results = jobs
        .into_iter()
        .zip(results)
        .map(|(job, outcome)| {
            let outcome = outcome.unwrap_or_else(|| {
                Err(Failure::Error(Error::unexpected("the message was not handled")))
            });
            if let Err(failure) = &outcome {
                tracing::warn!(job_id = %job.id, receive_count = job.receive_count, ?failure, "message failed");
            }
            (job, outcome)
        })
        .collect();
    BatchReport { results }
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
    settle_all(queue, name, opts, report, &mut counts).await;
    Ok(counts)
}

/// Settles every message of a handled batch, counting the outcomes into `counts`. The messages
/// that are done are acked together ([`JobQueue::ack_batch`]: one call per 10 on SQS).
pub async fn settle_all(
    queue: &dyn JobQueue,
    name: &QueueName,
    opts: &PollOptions,
    report: BatchReport,
    counts: &mut StepCounts,
) {
    let mut done = Vec::new();
    for (job, outcome) in report.results {
        if matches!(outcome, Ok(Handled::Done)) {
            done.push(job);
            continue;
        }
        match settle(queue, name, opts, &job, outcome).await {
            Settled::Done => counts.done += 1,
            Settled::Later => counts.later += 1,
            Settled::Failed => counts.failed += 1,
        }
    }
    let receipts: Vec<String> = done.iter().map(|j| j.receipt.clone()).collect();
    let acked = queue.ack_batch(name, &receipts).await;
    for (job, result) in done.iter().zip(acked) {
        // A stale receipt means the message was redelivered meanwhile; the new holder settles it.
        if let Err(error) = result {
            tracing::warn!(%error, job_id = %job.id, "could not settle a message");
        }
    }
    counts.done += done.len();
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
