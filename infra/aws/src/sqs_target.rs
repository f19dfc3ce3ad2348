//! SQS targets on AWS: a webhook's event as one `SendMessage` to the customer's queue.
//!
//! The queue URL is used as given (never parsed: LocalStack, moto and AWS shape URLs
//! differently); only a `.fifo` suffix is looked at, to add the group and deduplication ids a
//! FIFO queue requires. The deliver function's role needs `sqs:SendMessage` on the target (and
//! `kms:GenerateDataKey` for a queue encrypted with a customer key). Every SDK error becomes an
//! `openwa_core::Error` (see [`crate::error`]), which the deliver worker records as a failed
//! attempt with its message.

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use openwa_core::error::{Error, Result};
use openwa_core::ports::target::{SqsTargetMessage, SqsTargetSender};

use crate::context::AwsContext;
use crate::error::sdk_error;

/// Sends webhook events to SQS target queues with the context's SQS client.
#[derive(Clone)]
pub struct SqsTargets {
    sqs: aws_sdk_sqs::Client,
}

impl SqsTargets {
    pub fn new(ctx: &AwsContext) -> Self {
        Self {
            sqs: ctx.sqs.clone(),
        }
    }
}

#[async_trait]
impl SqsTargetSender for SqsTargets {
    #[tracing::instrument(skip_all, fields(attributes = message.attributes.len()))]
    async fn send(&self, queue_url: &str, message: &SqsTargetMessage) -> Result<()> {
        let mut request = self
            .sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(&message.body);
        for (name, value) in &message.attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| Error::unexpected(format!("SQS target attribute: {e}")))?;
            request = request.message_attributes(name, value);
        }
        if queue_url.ends_with(".fifo") {
            request = request
                .message_group_id(&message.group)
                .message_deduplication_id(&message.dedup_id);
        }
        request
            .send()
            .await
            .map_err(|e| sdk_error("SendMessage (SQS target)", e))?;
        Ok(())
    }
}
