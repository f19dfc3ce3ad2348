//! The SQS side of every queue-triggered function: Lambda's `SqsEvent` in, `SqsBatchResponse`
//! out.
//!
//! The event source mappings use `ReportBatchItemFailures`: the response lists exactly the
//! records that failed, Lambda deletes the others, and the failed ones come back after their
//! visibility timeout. After the queue's `maxReceiveCount` receives SQS's redrive policy moves a
//! record to the queue's dead-letter queue; no function dead-letters explicitly (the port's
//! `dead_letter` needs a receipt issued by the adapter's own receive, and Lambda received these).
//!
//! [`received_job`] is the one place where a record becomes a [`ReceivedJob`], reading the AWS
//! queue adapter's wire format (`openwa_aws::sqs::wire`): a binary body in base64, a payload
//! too large for SQS stored in S3 (fetched through the blob store, same bucket), and the job's
//! group, send time and earlier receives carried in message attributes when the adapter re-sent
//! it. A record that does not decode is *unreadable*: reported as failed, so it ends in the
//! dead-letter queue instead of being handled as garbage. The S3 object of a handled oversize
//! job is left to the bucket's lifecycle rule on `queue-payloads/` (Lambda deletes the message,
//! not the object).

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use openwa_aws::sqs::wire::{self, attr};
use openwa_core::ports::{BlobStore, ReceivedJob};

/// A batch's records as jobs, and the ids of records that could not become one.
#[derive(Debug, Default)]
pub struct Batch {
    pub jobs: Vec<ReceivedJob>,
    /// Reported as failed without being handled.
    pub unreadable: Vec<String>,
}

/// Converts every record of `event`.
pub async fn batch(event: SqsEvent, blobs: &dyn BlobStore) -> Batch {
    let mut out = Batch::default();
    for record in event.records {
        match received_job(record, blobs).await {
            Ok(job) => out.jobs.push(job),
            Err((id, why)) => {
                tracing::warn!(message_id = %id, why, "unreadable SQS record");
                out.unreadable.push(id);
            }
        }
    }
    out
}

/// One record as the job it carries: id = `messageId`, receipt = `receiptHandle`, receive count =
/// `ApproximateReceiveCount`, group = `MessageGroupId`, enqueued at = `SentTimestamp`, body.
/// `Err((message id, why))` for a record that cannot be handled.
pub async fn received_job(
    record: SqsMessage,
    blobs: &dyn BlobStore,
) -> Result<ReceivedJob, (String, &'static str)> {
    let id = record.message_id.unwrap_or_default();
    if id.is_empty() {
        return Err((id, "the record has no messageId"));
    }
    // The adapter's own attributes are all strings.
    let ours: HashMap<&str, &str> = record
        .message_attributes
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.string_value.as_deref()?)))
        .collect();
    let attribute = |name: &str| record.attributes.get(name).map(String::as_str);
    let number = |v: Option<&str>| v.and_then(|n| n.parse::<i64>().ok());
    let prior = number(ours.get(attr::PRIOR_RECEIVES).copied()).unwrap_or(0);
    let sqs_count = number(attribute("ApproximateReceiveCount")).unwrap_or(1);
    let receive_count = u32::try_from(prior + sqs_count.max(1)).unwrap_or(u32::MAX);
    let enqueued_at = number(ours.get(attr::SENT).copied())
        .or(number(attribute("SentTimestamp")))
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or_else(Utc::now);
    let group = ours
        .get(attr::GROUP)
        .copied()
        .or(attribute("MessageGroupId"))
        .map(str::to_owned);
    let body = match ours.get(attr::PAYLOAD) {
        Some(key) => match blobs.get(key).await {
            Ok((bytes, _)) => bytes,
            Err(error) => {
                tracing::warn!(%error, %key, "a job's S3 payload could not be read");
                return Err((id, "the job's S3 payload could not be read"));
            }
        },
        None => wire::decode_body_with(record.body.as_deref().unwrap_or_default(), |name| {
            ours.get(name).copied()
        })
        .map_err(|_| (id.clone(), "the body does not decode as its encoding says"))?,
    };
    Ok(ReceivedJob {
        receipt: record.receipt_handle.unwrap_or_default(),
        group,
        receive_count,
        enqueued_at,
        body,
        id,
    })
}

/// The response naming exactly `failed`.
pub fn response(failed: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for id in failed {
        response.add_failure(id);
    }
    response
}

/// The ids a response reports as failed (for logs and tests).
pub fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: serde_json::Value) -> SqsMessage {
        serde_json::from_value(json).unwrap()
    }

    /// Blobs in a temp dir: the S3 payload store stand-in.
    fn blobs() -> (tempfile::TempDir, openwa_infra::embedded::FsBlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = openwa_infra::embedded::FsBlobStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_record_becomes_the_job_it_carries() {
        let (_dir, blobs) = blobs();
        let job = received_job(
            record(serde_json::json!({
                "messageId": "m-1",
                "receiptHandle": "AQEB",
                "body": "{\"a\":1}",
                "attributes": {
                    "ApproximateReceiveCount": "3",
                    "SentTimestamp": "1545082649183",
                    "MessageGroupId": "chat-1"
                },
                "messageAttributes": {},
                "eventSource": "aws:sqs"
            })),
            &blobs,
        )
        .await
        .unwrap();
        assert_eq!(job.id, "m-1");
        assert_eq!(job.receipt, "AQEB");
        assert_eq!(job.body, b"{\"a\":1}");
        assert_eq!(job.receive_count, 3);
        assert_eq!(job.group.as_deref(), Some("chat-1"));
        assert_eq!(job.enqueued_at.timestamp_millis(), 1_545_082_649_183);
    }

    fn string(value: &str) -> serde_json::Value {
        serde_json::json!({"dataType": "String", "stringValue": value})
    }

    #[tokio::test]
    async fn the_adapters_wire_format_is_decoded() {
        let (_dir, blobs) = blobs();
        // A binary body in base64, re-sent once by the adapter (one earlier receive).
        let job = received_job(
            record(serde_json::json!({
                "messageId": "m-2",
                "body": "AAEC/w==",
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
                "messageAttributes": {
                    attr::ENCODING: string("base64"),
                    attr::PRIOR_RECEIVES: string("1"),
                    attr::SENT: string("1545082649183"),
                    attr::GROUP: string("g")
                }
            })),
            &blobs,
        )
        .await
        .unwrap();
        assert_eq!(job.body, vec![0, 1, 2, 255]);
        assert_eq!(job.receive_count, 2);
        assert_eq!(job.group.as_deref(), Some("g"));
        assert_eq!(job.enqueued_at.timestamp_millis(), 1_545_082_649_183);

        // An oversize payload, read from the blob store.
        let key = "queue-payloads/openwa-events/01JD";
        blobs
            .put(key, b"big job".to_vec(), "application/octet-stream")
            .await
            .unwrap();
        let job = received_job(
            record(serde_json::json!({
                "messageId": "m-3",
                "body": "-",
                "attributes": {},
                "messageAttributes": {attr::PAYLOAD: string(key)}
            })),
            &blobs,
        )
        .await
        .unwrap();
        assert_eq!(job.body, b"big job");
    }

    #[tokio::test]
    async fn a_body_that_does_not_decode_is_unreadable_not_garbage() {
        let (_dir, blobs) = blobs();
        for attributes in [
            serde_json::json!({attr::ENCODING: string("base64")}),
            serde_json::json!({attr::ENCODING: string("rot13")}),
            serde_json::json!({attr::PAYLOAD: string("queue-payloads/gone")}),
        ] {
            let err = received_job(
                record(serde_json::json!({
                    "messageId": "m-4",
                    "body": "not base64!",
                    "attributes": {},
                    "messageAttributes": attributes
                })),
                &blobs,
            )
            .await
            .unwrap_err();
            assert_eq!(err.0, "m-4");
        }
    }

    #[test]
    fn the_response_names_exactly_the_failed_ids() {
        let r = response(["a".to_owned(), "c".to_owned()]);
        assert_eq!(failed_ids(&r), ["a", "c"]);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "c"}]})
        );
    }
}
