//! Receiving: long polls in SQS's 20-second steps, and each message turned into a
//! [`ReceivedJob`] with a receipt this process can judge (see `lease`).

use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use chrono::{TimeZone, Utc};
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::ports::{QueueName, ReceivedJob};
use tokio::time::Instant;

use super::lease::{HeldJob, now_ms};
use super::wire::{self, Attributes, Receipt, attr};
use super::{MAX_VISIBILITY_SECS, MAX_WAIT_SECS, SqsJobQueue, payload, whole_secs};

/// A long poll shorter than this is not worth another receive.
const MIN_POLL: Duration = Duration::from_millis(500);

pub fn timestamp(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl SqsJobQueue {
    /// Receives until a job arrives or `wait` is spent. SQS waits in whole seconds: a wait is
    /// rounded to the nearest second, and a wait under one second still polls for one.
    pub(super) async fn receive_jobs(
        &self,
        queue: &QueueName,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedJob>> {
        let name = self.name(queue);
        let url = self.url(&name).await?;
        let deadline = Instant::now() + wait;
        let mut first = true;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let mut wait_secs = (remaining + Duration::from_millis(500)).as_secs();
            if first && !remaining.is_zero() {
                wait_secs = wait_secs.max(1);
            }
            first = false;
            let out = self
                .ctx
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(max as i32)
                .visibility_timeout(whole_secs(visibility).min(MAX_VISIBILITY_SECS) as i32)
                .wait_time_seconds(wait_secs.min(MAX_WAIT_SECS) as i32)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| self.error("ReceiveMessage", &name, e))?;
            let received_ms = now_ms();
            let mut jobs = Vec::new();
            let mut buried = false;
            for message in out.messages() {
                match self.accept(queue, message, received_ms, visibility).await? {
                    Some(job) => jobs.push(job),
                    None => buried = true,
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // A buried job may have freed its group's next one: look again, as the embedded
            // queue does.
            if !jobs.is_empty() || (left < MIN_POLL && !buried) {
                return Ok(jobs);
            }
        }
    }

    /// The job in `message`, or `None` if it had used up its receives and was dead-lettered.
    async fn accept(
        &self,
        queue: &QueueName,
        message: &Message,
        received_ms: i64,
        visibility: Duration,
    ) -> Result<Option<ReceivedJob>> {
        let (Some(message_id), Some(handle)) = (message.message_id(), message.receipt_handle())
        else {
            return Err(Error::unexpected(
                "ReceiveMessage returned a message without an id",
            ));
        };
        let attributes: Attributes = message.message_attributes().cloned().unwrap_or_default();
        let system = |a: MessageSystemAttributeName| message.attributes().and_then(|m| m.get(&a));
        let number = |v: Option<&str>| v.and_then(|v| v.parse::<i64>().ok());
        let sqs_count =
            number(system(MessageSystemAttributeName::ApproximateReceiveCount).map(String::as_str))
                .unwrap_or(1);
        let prior = number(wire::get(&attributes, attr::PRIOR_RECEIVES)).unwrap_or(0);
        let receive_count = u32::try_from(prior + sqs_count).unwrap_or(u32::MAX);
        let job = HeldJob {
            id: wire::get(&attributes, attr::ID)
                .unwrap_or(message_id)
                .to_owned(),
            wire_body: message.body().unwrap_or_default().to_owned(),
            group: wire::get(&attributes, attr::GROUP)
                .or(system(MessageSystemAttributeName::MessageGroupId).map(String::as_str))
                .map(str::to_owned),
            enqueued_ms: number(wire::get(&attributes, attr::SENT))
                .or(number(
                    system(MessageSystemAttributeName::SentTimestamp).map(String::as_str),
                ))
                .unwrap_or(received_ms),
            receive_count,
            attributes,
        };
        let object = wire::get(&job.attributes, attr::PAYLOAD).map(str::to_owned);
        let until_ms = self
            .leases
            .issue(handle, received_ms, visibility, job.clone());
        let receipt = Receipt {
            queue: queue.key(),
            message_id: message_id.to_owned(),
            handle: handle.to_owned(),
            until_ms,
            payload: object.clone(),
        };
        if receive_count > self.ctx.settings.max_receives {
            // Re-sent jobs count their earlier receives themselves; SQS's redrive only sees
            // the receives of the current message.
            let job = HeldJob {
                receive_count: receive_count - 1,
                ..job
            };
            self.bury(queue, &receipt, &job, super::dead::MAX_RECEIVES_REASON)
                .await?;
            self.leases.settle(&receipt);
            return Ok(None);
        }
        let body = match &object {
            Some(key) => match payload::fetch(&self.ctx, key).await {
                Ok(bytes) => bytes,
                Err(Error::NotFound { .. }) => {
                    tracing::warn!(%key, "a job's S3 payload is gone; dead-lettering it");
                    self.bury(
                        queue,
                        &receipt,
                        &job,
                        "the job's payload is missing from S3",
                    )
                    .await?;
                    self.leases.settle(&receipt);
                    return Ok(None);
                }
                Err(e) => return Err(e),
            },
            None => match wire::decode_body(&job.wire_body, &job.attributes) {
                Ok(bytes) => bytes,
                // One unreadable message must not fail the whole receive: bury it alone.
                Err(error) => {
                    tracing::warn!(%error, "a job's body does not decode; dead-lettering it");
                    self.bury(queue, &receipt, &job, "the job's body does not decode")
                        .await?;
                    self.leases.settle(&receipt);
                    return Ok(None);
                }
            },
        };
        Ok(Some(ReceivedJob {
            id: job.id,
            receipt: receipt.encode(),
            body,
            group: job.group,
            receive_count,
            enqueued_at: timestamp(job.enqueued_ms),
        }))
    }
}
