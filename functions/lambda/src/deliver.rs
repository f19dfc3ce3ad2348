//! The deliver function: the deliveries queue -> one attempt per record (a signed HTTP POST or
//! a send to an SQS target), recorded in the delivery log.
//!
//! The batch is handled by the deliver worker's own step, [`Deliverer::handle_many`], so the
//! schedule, the SSRF guard, `Retry-After`, 410 and dead deliveries behave exactly as in
//! `openwa up`. It reads the batch's deliveries and webhooks once for all its records (one
//! `BatchGetItem` each; the events come in the records), makes the attempts concurrently, and
//! writes every attempt with its delivery's new state in one `TransactWriteItems` and the retry
//! jobs in one `SendMessageBatch`. How its outcomes map onto the SQS contract:
//!
//! - `Done` (including a failed attempt: the step has already recorded it and sent the job of
//!   the next attempt with the schedule's delay): the record succeeded, Lambda deletes it.
//! - `Later(delay)` (not due yet, or its host is at its concurrency limit): a copy of the record
//!   is sent to the deliveries queue with that delay, capped at SQS's 15 minutes (a longer wait
//!   is chained: the worker finds the job early and asks for the rest). If that send fails the
//!   record is reported as failed, so it comes back instead of being lost.
//! - an error (a store or queue unavailable, including the batch's write: then every record it
//!   carried), a panic, or a malformed body: reported as failed.
//!   Lambda redelivers it after the visibility timeout; after `maxReceiveCount` receives SQS's
//!   redrive moves it to the deliveries dead-letter queue. Malformed bodies take that same path
//!   (never a retry that could succeed, but the dead-letter queue is where an operator looks).
//!
//! The function's timeout must exceed the per-attempt HTTP timeout (15 s by default), and the
//! queue's visibility timeout must exceed the function's timeout.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use openwa_core::error::Result;
use openwa_core::ports::{BlobStore, QueueName, ReceivedJob};
use openwa_core::webhook::DeliveryJob;
use openwa_deliver::Deliverer;
use openwa_fanout::{Handled, handle_together};

use crate::sqs_event;

/// Handles one batch from the deliveries queue.
#[tracing::instrument(skip_all, fields(records = event.records.len()))]
pub async fn handle(
    deliverer: &Deliverer,
    blobs: &dyn BlobStore,
    event: SqsEvent,
) -> SqsBatchResponse {
    let batch = sqs_event::batch(event, blobs).await;
    let report = handle_together(batch.jobs, |jobs: Vec<(DeliveryJob, ReceivedJob)>| {
        deliverer.handle_many(jobs.into_iter().map(|(job, _)| job).collect())
    })
    .await;
    let mut failed = batch.unreadable;
    for (job, outcome) in report.results {
        match outcome {
            Ok(Handled::Done) => {}
            Ok(Handled::Later(delay)) => {
                if let Err(error) = send_later(deliverer, &job, delay).await {
                    tracing::warn!(%error, job_id = %job.id, "could not re-schedule a delivery job");
                    failed.push(job.id);
                }
            }
            Err(_) => failed.push(job.id),
        }
    }
    sqs_event::response(failed)
}

/// Sends a copy of `job` to be handled again after `delay`, as a fresh message (SQS caps a
/// delay at 15 minutes: longer waits are chained, see `openwa_fanout::batch::requeued`).
async fn send_later(deliverer: &Deliverer, job: &ReceivedJob, delay: Duration) -> Result<()> {
    let copy = openwa_fanout::batch::requeued(job, delay);
    deliverer.queue().send(&QueueName::Deliveries, copy).await
}
