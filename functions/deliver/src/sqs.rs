//! SQS targets: the event JSON as a message on a customer's queue.
//!
//! The port is here; the AWS implementation (an `aws-sdk-sqs` client, with the SDK's own
//! endpoint configuration) belongs with the AWS backend and is not written yet. In embedded mode
//! every SQS send fails as [`Error::Unavailable`], which the worker records as a failed attempt.

use async_trait::async_trait;
use openwa_core::error::{Error, Result};

#[async_trait]
pub trait SqsTargetSender: Send + Sync {
    /// Sends `body` as one message to `queue_url`.
    async fn send(&self, queue_url: &str, body: &[u8]) -> Result<()>;
}

/// The embedded stand-in: SQS targets need the AWS backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnavailableSqs;

#[async_trait]
impl SqsTargetSender for UnavailableSqs {
    async fn send(&self, _queue_url: &str, _body: &[u8]) -> Result<()> {
        Err(Error::unavailable("SQS targets need the AWS backend"))
    }
}
