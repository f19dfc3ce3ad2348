//! The outbox function: the table's stream (a DynamoDB event source mapping filtered to outbox
//! inserts, with `ReportBatchItemFailures`) -> the events queue, through
//! [`openwa_aws::outbox::OutboxRelay`].
//!
//! Stores write some events in the same transaction as the change they report (an accepted
//! send's `message.queued`: `openwa_aws::dynamo::outbox`); this function hands them on. Records
//! that are not outbox inserts are ignored (the mapping's filter should keep them away anyway);
//! an outbox record that does not decode is logged and skipped, since no retry can fix it. A
//! record whose event could not be sent is reported by its sequence number, so Lambda retries
//! the batch from there; fan-out is idempotent on event id, so a re-sent event is harmless.
//!
//! The stream event is decoded with small types of our own: only the partition key, the
//! `event` attribute and the sequence number matter, and every other attribute is skipped.

use std::collections::HashMap;

use openwa_aws::dynamo::outbox::{EVENT_ATTR, event_of};
use openwa_aws::outbox::OutboxRelay;
use openwa_aws::resources::table::PK;
use serde::{Deserialize, Serialize};

/// A DynamoDB stream batch as Lambda delivers it.
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Deserialize)]
pub struct StreamRecord {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(rename = "eventName", default)]
    pub event_name: Option<String>,
    #[serde(default)]
    pub dynamodb: Option<StreamData>,
}

#[derive(Debug, Deserialize)]
pub struct StreamData {
    #[serde(rename = "NewImage", default)]
    pub new_image: HashMap<String, Attribute>,
    #[serde(rename = "SequenceNumber", default)]
    pub sequence_number: Option<String>,
}

/// An attribute value; only strings are read, other types decode as `s: None`.
#[derive(Debug, Deserialize)]
pub struct Attribute {
    #[serde(rename = "S", default)]
    pub s: Option<String>,
}

/// The partial-batch response of a stream-triggered function.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct StreamBatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// Forwards the batch's outbox events; reports the records whose event was not sent.
#[tracing::instrument(skip_all, fields(records = event.records.len()))]
pub async fn handle(relay: &OutboxRelay, event: StreamEvent) -> StreamBatchResponse {
    let mut events = Vec::new();
    let mut sequence = Vec::new();
    for record in event.records {
        if record.event_name.as_deref() != Some("INSERT") {
            continue;
        }
        let Some(data) = record.dynamodb else {
            continue;
        };
        let Some(pk) = data.new_image.get(PK).and_then(|a| a.s.as_deref()) else {
            continue;
        };
        let json = data.new_image.get(EVENT_ATTR).and_then(|a| a.s.as_deref());
        match event_of(pk, json) {
            Ok(Some(e)) => {
                events.push(e);
                sequence.push(data.sequence_number.unwrap_or_default());
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "undecodable outbox record skipped"),
        }
    }
    let results = relay.forward(events).await;
    let batch_item_failures = sequence
        .into_iter()
        .zip(results)
        .filter_map(|(seq, r)| match r {
            Ok(()) => None,
            Err(error) => {
                tracing::warn!(%error, sequence_number = %seq, "outbox event not forwarded");
                Some(ItemFailure {
                    item_identifier: seq,
                })
            }
        })
        .collect();
    StreamBatchResponse {
        batch_item_failures,
    }
}
