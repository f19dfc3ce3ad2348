//! Dead letters. Each queue redrives into a dead-letter queue after `max_receives` receives
//! (SQS moves the message, attributes and id intact); the adapter dead-letters explicitly by
//! sending a copy with the reason, the job id and the receive count as attributes, then
//! deleting the original.
//!
//! Per-session queues share one dead-letter queue per kind, so a listing reads the whole
//! queue and keeps the messages tagged with the asked queue's key ([`attr::QUEUE`]). Reading
//! is a peek: the messages are received with a short visibility timeout and released at once
//! after the scan, so they stay listed for the next caller. Listing therefore costs about two
//! calls per ten dead letters of the kind (all sessions'), plus a one-second long poll that
//! confirms the end, and is bounded by [`MAX_PEEK_CALLS`].

use std::collections::HashSet;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use openwa_core::error::{Error, Result};
use openwa_core::ports::{DeadJob, QueueName};

use super::lease::{HeldJob, now_ms};
use super::receive::timestamp;
use super::wire::{self, Attributes, Receipt, attr, string_attr};
use super::{SqsJobQueue, payload};
use crate::error::sdk_error;
use crate::resources;

/// The reason of a job dead-lettered for using up its receives.
pub const MAX_RECEIVES_REASON: &str = "maximum receives exceeded";
/// Receives a listing makes at most (ten messages each).
pub const MAX_PEEK_CALLS: usize = 100;
/// How long a listing hides the messages it reads (it releases them when done).
const PEEK_VISIBILITY_SECS: i32 = 30;
/// Longest reason kept.
const MAX_REASON_BYTES: usize = 1024;
/// Reasons travel prefixed, so an empty reason is still a (non-empty) SQS attribute value.
const REASON_TAG: &str = "r:";

impl SqsJobQueue {
    /// Sends `job` (received under `receipt`) to `queue`'s dead-letter queue with `reason`,
    /// then deletes it from `queue`. An S3 payload stays: the dead letter points to it.
    pub(super) async fn bury(
        &self,
        queue: &QueueName,
        receipt: &Receipt,
        job: &HeldJob,
        reason: &str,
    ) -> Result<()> {
        let dlq = resources::dead_letter_queue_name(&self.ctx.settings, queue);
        let url = self.url(&dlq).await.map_err(|_| {
            Error::unexpected(format!(
                "dead-letter queue {dlq} is missing: run `openwa bootstrap`"
            ))
        })?;
        let mut attributes = job.attributes.clone();
        attributes.remove(attr::PRIOR_RECEIVES);
        let mut reason_end = reason.len().min(MAX_REASON_BYTES);
        while !reason.is_char_boundary(reason_end) {
            reason_end -= 1;
        }
        for (name, value) in [
            (attr::ID, job.id.clone()),
            (
                attr::REASON,
                format!("{REASON_TAG}{}", &reason[..reason_end]),
            ),
            (attr::DEAD_AT, now_ms().to_string()),
            (attr::RECEIVES, job.receive_count.to_string()),
            (attr::SENT, job.enqueued_ms.to_string()),
        ] {
            attributes.insert(name.into(), string_attr(value));
        }
        if let Some(group) = &job.group {
            attributes.insert(attr::GROUP.into(), string_attr(group));
        }
        // Its own group on a FIFO dead-letter queue, so no dead letter ever waits behind
        // another in a listing; the dedup id makes a repeated bury (after a crash) one letter.
        let fifo = queue.is_fifo().then(|| {
            (
                wire::sqs_id(&format!("dead.{}", job.id)),
                wire::sqs_id(&format!("{}.{}", job.id, job.receive_count)),
            )
        });
        self.send_raw(
            &dlq,
            &url,
            job.wire_body.clone(),
            attributes,
            fifo,
            std::time::Duration::ZERO,
        )
        .await?;
        self.delete_message(&self.name(queue), &receipt.handle)
            .await
    }

    pub(super) async fn list_dead_letters(
        &self,
        queue: &QueueName,
        limit: u32,
    ) -> Result<Vec<DeadJob>> {
        let dlq = resources::dead_letter_queue_name(&self.ctx.settings, queue);
        let url = self.url(&dlq).await?;
        let peeked = self.peek(&dlq, &url).await?;
        let key = queue.key();
        let mut mine: Vec<(i64, &Message)> = peeked
            .iter()
            .filter(|m| tags(m).is_some_and(|a| wire::get(a, attr::QUEUE) == Some(&key)))
            .map(|m| (dead_at_ms(m), m))
            .collect();
        mine.sort_by_key(|(at, _)| *at);
        mine.truncate(limit as usize);
        let mut dead = Vec::with_capacity(mine.len());
        let result = async {
            for (at, m) in mine {
                dead.push(self.dead_job(m, at).await?);
            }
            Ok::<_, Error>(())
        }
        .await;
        self.release(&dlq, &url, &peeked).await;
        result.map(|()| dead)
    }

    /// Deletes `queue`'s dead letters (the queue itself was deleted).
    pub(super) async fn purge_dead_letters(&self, queue: &QueueName) -> Result<()> {
        let dlq = resources::dead_letter_queue_name(&self.ctx.settings, queue);
        let url = match self.url(&dlq).await {
            Err(Error::NotFound { .. }) => return Ok(()),
            other => other?,
        };
        let peeked = self.peek(&dlq, &url).await?;
        let key = queue.key();
        let (mine, others): (Vec<Message>, Vec<Message>) = peeked
            .into_iter()
            .partition(|m| tags(m).is_some_and(|a| wire::get(a, attr::QUEUE) == Some(&key)));
        self.release(&dlq, &url, &others).await;
        for chunk in mine.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .set_receipt_handle(m.receipt_handle().map(str::to_owned))
                        .build()
                        .ok()
                })
                .collect();
            self.ctx
                .sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk_error("DeleteMessageBatch", e))?;
        }
        Ok(())
    }

    /// Receives every message of dead-letter queue `name` (up to the bound), hiding them.
    async fn peek(&self, name: &str, url: &str) -> Result<Vec<Message>> {
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        for _ in 0..MAX_PEEK_CALLS {
            let out = self
                .ctx
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(PEEK_VISIBILITY_SECS)
                // A long poll asks every SQS server; a short one samples some and can miss.
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| self.error("ReceiveMessage", name, e))?;
            if out.messages().is_empty() {
                return Ok(all);
            }
            for m in out.messages() {
                if seen.insert(m.message_id().unwrap_or_default().to_owned()) {
                    all.push(m.clone());
                }
            }
        }
        tracing::warn!(queue = %name, "dead-letter listing stopped at its bound");
        Ok(all)
    }

    /// Makes peeked messages visible again; a failure only delays them by the peek's timeout.
    async fn release(&self, name: &str, url: &str, messages: &[Message]) {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .set_receipt_handle(m.receipt_handle().map(str::to_owned))
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            let result = self
                .ctx
                .sqs
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await;
            if let Err(e) = result {
                let error = sdk_error("ChangeMessageVisibilityBatch", e);
                tracing::warn!(%error, queue = %name, "peeked dead letters not released");
            }
        }
    }

    async fn dead_job(&self, m: &Message, dead_at_ms: i64) -> Result<DeadJob> {
        let empty = Attributes::new();
        let attrs = tags(m).unwrap_or(&empty);
        let number = |v: Option<&str>| v.and_then(|v| v.parse::<u32>().ok());
        let body = match wire::get(attrs, attr::PAYLOAD) {
            Some(key) => match payload::fetch(&self.ctx, key).await {
                Err(Error::NotFound { .. }) => {
                    tracing::warn!(%key, "a dead letter's S3 payload is gone");
                    Vec::new()
                }
                other => other?,
            },
            // A body that never decoded (why it was buried) is listed as it travelled.
            None => wire::decode_body(m.body().unwrap_or_default(), attrs)
                .unwrap_or_else(|_| m.body().unwrap_or_default().as_bytes().to_vec()),
        };
        let explicit = wire::get(attrs, attr::REASON);
        Ok(DeadJob {
            id: wire::get(attrs, attr::ID)
                .or(m.message_id())
                .unwrap_or_default()
                .to_owned(),
            body,
            group: wire::get(attrs, attr::GROUP)
                .or(system(m, MessageSystemAttributeName::MessageGroupId))
                .map(str::to_owned),
            // Moved by SQS: it had used up the receives of this message (plus any earlier
            // messages' if `retry_later` re-sent it).
            receive_count: number(wire::get(attrs, attr::RECEIVES)).unwrap_or_else(|| {
                number(wire::get(attrs, attr::PRIOR_RECEIVES)).unwrap_or(0)
                    + self.ctx.settings.max_receives
            }),
            reason: match explicit {
                Some(r) => r.strip_prefix(REASON_TAG).unwrap_or(r).to_owned(),
                None => MAX_RECEIVES_REASON.to_owned(),
            },
            dead_at: timestamp(dead_at_ms),
        })
    }
}

fn tags(m: &Message) -> Option<&Attributes> {
    m.message_attributes()
}

fn system(m: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    m.attributes()
        .and_then(|a| a.get(&name))
        .map(String::as_str)
}

/// When a message was dead-lettered: recorded by the adapter, else (moved by SQS, which
/// records no time) the best bound known, its send time.
fn dead_at_ms(m: &Message) -> i64 {
    let parse = |v: Option<&str>| v.and_then(|v| v.parse::<i64>().ok());
    let attrs = tags(m);
    parse(attrs.and_then(|a| wire::get(a, attr::DEAD_AT)))
        .or(parse(attrs.and_then(|a| wire::get(a, attr::SENT))))
        .or(parse(system(m, MessageSystemAttributeName::SentTimestamp)))
        .unwrap_or(0)
}
