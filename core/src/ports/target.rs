//! SQS targets: webhooks whose target is a customer's SQS queue instead of an HTTP endpoint.
//!
//! The message body is the event JSON (the bytes an HTTP delivery would POST); the Standard
//! Webhooks `webhook-id`, `webhook-timestamp` and `webhook-signature` (and, when asked for,
//! `x-hub-signature-256`) travel as String message attributes of the same names, so a consumer
//! verifies the body exactly as an HTTP receiver would. Custom headers are HTTP-only: SQS allows
//! ten attributes per message, and a queue's consumers are authenticated by IAM already.
//!
//! The AWS implementation (`openwa_aws::sqs_target`) sends with `aws-sdk-sqs`; the in-process
//! twin, [`UnavailableSqs`], refuses every send, which the deliver worker records as a failed
//! attempt (SQS targets need the AWS backend).

use async_trait::async_trait;

use crate::error::{Error, Result};

/// One message for an SQS target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsTargetMessage {
    /// The event JSON.
    pub body: String,
    /// String message attributes, by name (the signature headers).
    pub attributes: Vec<(String, String)>,
    /// FIFO target queues: the deduplication id (the event id, stable across retries).
    pub dedup_id: String,
    /// FIFO target queues: the message group (the event's session, or `openwa`).
    pub group: String,
}

#[async_trait]
pub trait SqsTargetSender: Send + Sync {
    /// Sends one message to `queue_url`. `Unavailable` when retrying may help; any error is one
    /// failed delivery attempt.
    async fn send(&self, queue_url: &str, message: &SqsTargetMessage) -> Result<()>;
}

/// The embedded stand-in: SQS targets need the AWS backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnavailableSqs;

#[async_trait]
impl SqsTargetSender for UnavailableSqs {
    async fn send(&self, _queue_url: &str, _message: &SqsTargetMessage) -> Result<()> {
        Err(Error::unavailable("SQS targets need the AWS backend"))
    }
}
