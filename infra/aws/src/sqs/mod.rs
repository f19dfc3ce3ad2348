//! [`JobQueue`] on SQS. The queue names come from [`crate::resources`]: static queues
//! (`events`, `deliveries`, `ingress`) belong to the stack, per-session queues (a FIFO send
//! queue and a standard control queue) are created and deleted with their session and redrive
//! into shared dead-letter queues. `docs/aws-queues-and-blobs.md` describes the mapping, the
//! AWS calls per operation and where SQS differs from the port.
//!
//! Layout:
//! - `wire`: message bodies, openwa's message attributes, the receipt token
//! - `lease`: which receipts are current (SQS does not refuse stale ones), FIFO dedup memory
//! - `receive`: turning received messages into jobs
//! - `dead`: dead letters, sent by the adapter or moved by SQS's redrive, and their listing
//! - `payload`: jobs too large for SQS, kept in S3
//! - `batch`: `send_batch` on standard queues (`SendMessageBatch`) and `ack_batch`
//!   (`DeleteMessageBatch`)

mod batch;
mod dead;
mod lease;
mod payload;
mod receive;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use openwa_core::error::{Error, Result};
use openwa_core::ports::{DeadJob, JobQueue, NewJob, QueueName, ReceivedJob};

use crate::bootstrap::{QueueSpec, ensure_queue, is_missing_queue, queue_url};
use crate::context::AwsContext;
use crate::error::{error_code, sdk_error};
use crate::resources;
use lease::{DedupIds, HeldJob, Leases, now_ms};
use wire::{Attributes, Receipt, attr, string_attr};

pub use wire::MAX_MESSAGE_BYTES;

/// SQS's limit on messages per receive; larger `max`es are refused, as by the embedded queue.
pub const MAX_RECEIVE_BATCH: u32 = 10;
/// SQS's longest long poll; longer waits take several receives.
const MAX_WAIT_SECS: u64 = 20;
/// SQS's longest per-message delay.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// SQS's longest visibility timeout.
const MAX_VISIBILITY_SECS: u64 = 12 * 3600;

pub struct SqsJobQueue {
    ctx: Arc<AwsContext>,
    /// Queue name -> URL. Filled by the first use of a queue (or `ensure`), dropped when SQS
    /// says the queue is gone, so a send costs one call.
    urls: RwLock<HashMap<String, String>>,
    /// Receipts this process issued.
    leases: Leases,
    /// FIFO deduplication ids this process sent recently.
    dedup: DedupIds,
}

impl SqsJobQueue {
    pub fn new(ctx: Arc<AwsContext>) -> Self {
        Self {
            ctx,
            urls: RwLock::new(HashMap::new()),
            leases: Leases::default(),
            dedup: DedupIds::default(),
        }
    }

    fn name(&self, queue: &QueueName) -> String {
        resources::queue_name(&self.ctx.settings, queue)
    }

    fn cached_url(&self, name: &str) -> Option<String> {
        let urls = self.urls.read().unwrap_or_else(|e| e.into_inner());
        urls.get(name).cloned()
    }

    fn cache_url(&self, name: &str, url: &str) {
        let mut urls = self.urls.write().unwrap_or_else(|e| e.into_inner());
        urls.insert(name.to_owned(), url.to_owned());
    }

    fn forget_url(&self, name: &str) {
        let mut urls = self.urls.write().unwrap_or_else(|e| e.into_inner());
        urls.remove(name);
    }

    /// The URL of queue `name` (cached); `NotFound` if it does not exist.
    async fn url(&self, name: &str) -> Result<String> {
        if let Some(url) = self.cached_url(name) {
            return Ok(url);
        }
        let url = queue_url(&self.ctx, name)
            .await?
            .ok_or(Error::NotFound { resource: "queue" })?;
        self.cache_url(name, &url);
        Ok(url)
    }

    /// Translates an SQS error of operation `op` on queue `name`: a missing queue is
    /// `NotFound` (and leaves the URL cache), a receipt SQS refuses is a `Conflict`.
    fn error<E, R>(&self, op: &str, name: &str, err: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::fmt::Debug,
        R: std::fmt::Debug,
    {
        let code = error_code(&err).unwrap_or("");
        if is_missing_queue(Some(code)) {
            self.forget_url(name);
            return Error::NotFound { resource: "queue" };
        }
        if code.ends_with("ReceiptHandleIsInvalid") || code.ends_with("MessageNotInflight") {
            return Error::conflict(format!("the receipt is stale: SQS answered {code}"));
        }
        sdk_error(op, err)
    }

    async fn send_raw(
        &self,
        name: &str,
        url: &str,
        body: String,
        attributes: Attributes,
        fifo: Option<(String, String)>,
        delay: Duration,
    ) -> Result<()> {
        let mut req = self
            .ctx
            .sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .set_message_attributes(Some(attributes));
        match fifo {
            Some((group, dedup)) => {
                req = req.message_group_id(group).message_deduplication_id(dedup);
            }
            None if !delay.is_zero() => req = req.delay_seconds(whole_secs(delay) as i32),
            None => {}
        }
        req.send()
            .await
            .map_err(|e| self.error("SendMessage", name, e))?;
        Ok(())
    }

    async fn delete_message(&self, name: &str, handle: &str) -> Result<()> {
        let url = self.url(name).await?;
        self.ctx
            .sqs
            .delete_message()
            .queue_url(url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|e| self.error("DeleteMessage", name, e))?;
        Ok(())
    }

    async fn change_visibility(&self, name: &str, handle: &str, secs: u64) -> Result<()> {
        let url = self.url(name).await?;
        self.ctx
            .sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(handle)
            .visibility_timeout(secs.min(MAX_VISIBILITY_SECS) as i32)
            .send()
            .await
            .map_err(|e| self.error("ChangeMessageVisibility", name, e))?;
        Ok(())
    }

    /// Re-sends a held job with a delay, then deletes the received message: the job waits as
    /// a delayed message (counted by `depth`) and keeps its id and receive count in
    /// attributes.
    async fn resend(
        &self,
        name: &str,
        receipt: &Receipt,
        job: &HeldJob,
        delay: Duration,
    ) -> Result<()> {
        let url = self.url(name).await?;
        let mut attributes = job.attributes.clone();
        attributes.insert(attr::ID.into(), string_attr(&job.id));
        attributes.insert(
            attr::PRIOR_RECEIVES.into(),
            string_attr(job.receive_count.to_string()),
        );
        attributes.insert(attr::SENT.into(), string_attr(job.enqueued_ms.to_string()));
        self.send_raw(name, &url, job.wire_body.clone(), attributes, None, delay)
            .await?;
        self.delete_message(name, &receipt.handle).await
    }
}

/// `d` in whole seconds, rounded up (a delay or timeout is never shorter than asked).
fn whole_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn is_static(queue: &QueueName) -> bool {
    !matches!(queue, QueueName::Send(_) | QueueName::Control(_))
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    /// Per-session queues are created (with their redrive policy) if missing; static queues
    /// belong to the stack and are only looked up.
    #[tracing::instrument(skip_all, fields(queue = %queue.key()))]
    async fn ensure(&self, queue: &QueueName) -> Result<()> {
        let name = self.name(queue);
        if self.cached_url(&name).is_some() {
            return Ok(());
        }
        if is_static(queue) {
            return match self.url(&name).await {
                Err(Error::NotFound { .. }) => Err(Error::unexpected(format!(
                    "SQS queue {name} is missing: create the stack's queues with `openwa bootstrap` or Terraform"
                ))),
                other => other.map(drop),
            };
        }
        let dlq = resources::dead_letter_queue_name(&self.ctx.settings, queue);
        let spec = QueueSpec {
            name: &name,
            fifo: queue.is_fifo(),
            visibility_secs: resources::SESSION_QUEUE_VISIBILITY_SECS,
            retention_secs: resources::RETENTION_SECS,
            dead_letter: Some(&dlq),
        };
        let (url, created) = ensure_queue(&self.ctx, &spec).await?;
        if created {
            tracing::info!(%name, "created SQS queue");
        }
        self.cache_url(&name, &url);
        Ok(())
    }

    /// Deletes a per-session queue with its jobs, its dead letters and its S3 payloads.
    /// Static queues are the stack's: deleting one is refused as `Invalid`.
    #[tracing::instrument(skip_all, fields(queue = %queue.key()))]
    async fn delete(&self, queue: &QueueName) -> Result<()> {
        if is_static(queue) {
            return Err(Error::invalid(
                "queue",
                format!(
                    "{} is one of the stack's queues and is deleted with the stack",
                    queue.key()
                ),
            ));
        }
        let name = self.name(queue);
        let url = match self.cached_url(&name) {
            Some(url) => Some(url),
            None => queue_url(&self.ctx, &name).await?,
        };
        self.forget_url(&name);
        self.dedup.forget(&queue.key());
        if let Some(url) = url {
            match self.ctx.sqs.delete_queue().queue_url(url).send().await {
                Ok(_) => {}
                Err(e) if is_missing_queue(error_code(&e)) => {}
                Err(e) => return Err(sdk_error("DeleteQueue", e)),
            }
        }
        self.purge_dead_letters(queue).await?;
        payload::delete_prefix(&self.ctx, &payload::queue_prefix(&name)).await
    }

    #[tracing::instrument(skip_all, fields(queue = %queue.key(), size = job.body.len()))]
    async fn send(&self, queue: &QueueName, job: NewJob) -> Result<()> {
        let (name, key) = (self.name(queue), queue.key());
        let mut attributes = Attributes::new();
        attributes.insert(attr::QUEUE.into(), string_attr(&key));
        let fifo = if queue.is_fifo() {
            let group = job
                .group
                .as_deref()
                .ok_or_else(|| Error::invalid("group", "a job on a FIFO queue needs a group"))?;
            if !job.delay.is_zero() {
                return Err(Error::invalid(
                    "delay",
                    "SQS FIFO queues have no per-job delay",
                ));
            }
            if let Some(dedup) = &job.dedup_id
                && self.dedup.seen(&key, dedup)
            {
                tracing::debug!("dropped a duplicate job");
                return Ok(());
            }
            let group_id = wire::sqs_id(group);
            if group_id != group {
                attributes.insert(attr::GROUP.into(), string_attr(group));
            }
            let dedup_id = match &job.dedup_id {
                Some(d) => wire::sqs_id(d),
                None => ulid::Ulid::new().to_string(),
            };
            Some((group_id, dedup_id))
        } else {
            if job.delay > MAX_DELAY {
                return Err(Error::invalid("delay", "SQS delays are at most 15 minutes"));
            }
            if let Some(group) = &job.group {
                attributes.insert(attr::GROUP.into(), string_attr(group));
            }
            None
        };
        let url = self.url(&name).await?;
        let body = payload::prepare(&self.ctx, &name, job.body, &mut attributes).await?;
        let object = wire::get(&attributes, attr::PAYLOAD).map(str::to_owned);
        let sent_ms = now_ms();
        let sent = self
            .send_raw(&name, &url, body, attributes, fifo, job.delay)
            .await;
        if let (Err(_), Some(object)) = (&sent, object) {
            payload::delete(&self.ctx, &object).await;
        }
        sent?;
        if let (true, Some(dedup)) = (queue.is_fifo(), &job.dedup_id) {
            self.dedup.record(&key, dedup, sent_ms);
        }
        Ok(())
    }

    /// Standard queues: `SendMessageBatch`, 10 jobs (and at most 256 KiB) per call, each job
    /// prepared as by `send` (oversized bodies go through S3). FIFO queues send one job at a
    /// time (their deduplication memory is per job).
    #[tracing::instrument(skip_all, fields(queue = %queue.key(), jobs = jobs.len()))]
    async fn send_batch(&self, queue: &QueueName, jobs: Vec<NewJob>) -> Vec<Result<()>> {
        if queue.is_fifo() || jobs.len() == 1 {
            let mut out = Vec::with_capacity(jobs.len());
            for job in jobs {
                out.push(self.send(queue, job).await);
            }
            return out;
        }
        if jobs.is_empty() {
            return Vec::new();
        }
        self.send_standard_batch(queue, jobs).await
    }

    #[tracing::instrument(skip_all, fields(queue = %queue.key(), max = max))]
    async fn receive(
        &self,
        queue: &QueueName,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedJob>> {
        if max == 0 || max > MAX_RECEIVE_BATCH {
            return Err(Error::invalid(
                "max",
                format!("must be between 1 and {MAX_RECEIVE_BATCH}"),
            ));
        }
        self.receive_jobs(queue, max, visibility, wait).await
    }

    #[tracing::instrument(skip_all, fields(queue = %queue.key()))]
    async fn ack(&self, queue: &QueueName, receipt: &str) -> Result<()> {
        let r = Receipt::decode(&queue.key(), receipt)?;
        self.leases.check(&r)?;
        self.delete_message(&self.name(queue), &r.handle).await?;
        self.leases.settle(&r);
        if let Some(object) = &r.payload {
            payload::delete(&self.ctx, object).await;
        }
        Ok(())
    }

    /// `DeleteMessageBatch`, 10 receipts per call; each receipt is checked as by `ack`.
    #[tracing::instrument(skip_all, fields(queue = %queue.key(), jobs = receipts.len()))]
    async fn ack_batch(&self, queue: &QueueName, receipts: &[String]) -> Vec<Result<()>> {
        if receipts.len() == 1 {
            return vec![self.ack(queue, &receipts[0]).await];
        }
        self.ack_many(queue, receipts).await
    }

    /// Standard queues re-send the job with the delay (so it counts as waiting); FIFO queues
    /// change its visibility instead (a re-send would lose its place in the group), as do
    /// delays over SQS's 15 minutes and receipts another process issued.
    #[tracing::instrument(skip_all, fields(queue = %queue.key()))]
    async fn retry_later(&self, queue: &QueueName, receipt: &str, delay: Duration) -> Result<()> {
        let r = Receipt::decode(&queue.key(), receipt)?;
        let held = self.leases.check(&r)?;
        let name = self.name(queue);
        match held {
            Some(job) if !queue.is_fifo() && delay <= MAX_DELAY => {
                if job.receive_count >= self.ctx.settings.max_receives {
                    // It would be dead-lettered on its next receive: do it now.
                    self.bury(queue, &r, &job, dead::MAX_RECEIVES_REASON)
                        .await?;
                } else {
                    self.resend(&name, &r, &job, delay).await?;
                }
            }
            _ => {
                self.change_visibility(&name, &r.handle, whole_secs(delay))
                    .await?
            }
        }
        self.leases.settle(&r);
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(queue = %queue.key()))]
    async fn extend(&self, queue: &QueueName, receipt: &str, visibility: Duration) -> Result<()> {
        let r = Receipt::decode(&queue.key(), receipt)?;
        self.leases.check(&r)?;
        let started = now_ms();
        self.change_visibility(&self.name(queue), &r.handle, whole_secs(visibility))
            .await?;
        self.leases.extend(&r, started, visibility);
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(queue = %queue.key()))]
    async fn dead_letter(&self, queue: &QueueName, receipt: &str, reason: &str) -> Result<()> {
        let r = Receipt::decode(&queue.key(), receipt)?;
        let job = self.leases.check(&r)?.ok_or_else(|| {
            Error::unexpected(
                "a job can be dead-lettered only by the process that received it (it holds the body)",
            )
        })?;
        self.bury(queue, &r, &job, reason).await?;
        self.leases.settle(&r);
        Ok(())
    }

    async fn dead_letters(&self, queue: &QueueName, limit: u32) -> Result<Vec<DeadJob>> {
        self.list_dead_letters(queue, limit).await
    }

    /// Visible plus delayed messages. On FIFO queues a job waiting after `retry_later` is
    /// hidden like one in flight, and not counted.
    async fn depth(&self, queue: &QueueName) -> Result<u64> {
        let name = self.name(queue);
        let url = self.url(&name).await?;
        let out = self
            .ctx
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| self.error("GetQueueAttributes", &name, e))?;
        let attrs = out.attributes();
        let count = |a: QueueAttributeName| {
            attrs
                .and_then(|m| m.get(&a))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesDelayed))
    }
}
