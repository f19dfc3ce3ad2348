//! The fan-out function: the events queue -> one stored event and one delivery (and delivery
//! job) per matching active webhook.
//!
//! Everything but the SQS framing is [`openwa_fanout`]'s: [`openwa_fanout::handle_events`]
//! expands the batch's records together (one subscription lookup, one write of events and
//! deliveries, batched job sends) and reports which failed. A record fails when its body is
//! not an event (malformed: no retry can help, so after `maxReceiveCount` receives SQS's redrive
//! moves it to the events dead-letter queue) or when a store or queue call failed (retried by
//! redelivery). Expansion is idempotent on the event id, so a redelivered record creates no
//! second delivery; jobs are re-sent only for a record received before, whose first run may
//! have stopped between creating a delivery and enqueueing its job.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use openwa_core::ports::BlobStore;
use openwa_fanout::Fanout;

use crate::sqs_event;

/// Handles one batch from the events queue.
#[tracing::instrument(skip_all, fields(records = event.records.len()))]
pub async fn handle(fanout: &Fanout, blobs: &dyn BlobStore, event: SqsEvent) -> SqsBatchResponse {
    let batch = sqs_event::batch(event, blobs).await;
    let report = openwa_fanout::handle_events(fanout, batch.jobs).await;
    sqs_event::response(batch.unreadable.into_iter().chain(report.failed_ids()))
}
