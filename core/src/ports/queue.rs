//! The job queue port: at-least-once delivery with visibility timeouts, delays, per-group FIFO
//! order, deduplication and dead-lettering. SQS semantics, so the AWS adapter is thin and the
//! embedded one (SQLite) behaves the same.

use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::id::SessionId;

/// The queues the system uses. Adapters map each to a table partition, an SQS URL, …
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QueueName {
    /// One FIFO queue per session: send jobs, grouped by chat.
    Send(SessionId),
    /// Events from runners and services, consumed by fan-out.
    Events,
    /// Delivery jobs, consumed by the deliver worker.
    Deliveries,
    /// Send commands arriving by queue instead of HTTP.
    Ingress,
    /// One queue per session: commands for the runner holding it (pairing code, logout),
    /// handled in any session state, unlike send jobs.
    Control(SessionId),
}

impl QueueName {
    /// A stable key for the queue (`send.<session>`, `events`, …).
    pub fn key(&self) -> String {
        match self {
            Self::Send(s) => format!("send.{s}"),
            Self::Events => "events".into(),
            Self::Deliveries => "deliveries".into(),
            Self::Ingress => "ingress".into(),
            Self::Control(s) => format!("control.{s}"),
        }
    }

    /// Whether order per group and deduplication ids apply.
    pub fn is_fifo(&self) -> bool {
        matches!(self, Self::Send(_))
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewJob {
    pub body: Vec<u8>,
    /// FIFO queues: jobs of one group are received in order, one at a time.
    pub group: Option<String>,
    /// FIFO queues: a second job with the same id within the dedup window is dropped.
    pub dedup_id: Option<String>,
    /// Invisible until this much time has passed.
    pub delay: Duration,
}

/// A received job. `receipt` identifies this receive; it changes on every redelivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedJob {
    pub id: String,
    pub receipt: String,
    pub body: Vec<u8>,
    pub group: Option<String>,
    /// 1 on the first receive.
    pub receive_count: u32,
    pub enqueued_at: Timestamp,
}

/// A job that ran out of receives or was dead-lettered explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadJob {
    pub id: String,
    pub body: Vec<u8>,
    pub group: Option<String>,
    pub receive_count: u32,
    pub reason: String,
    pub dead_at: Timestamp,
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Creates the queue if missing (idempotent).
    async fn ensure(&self, queue: &QueueName) -> Result<()>;
    /// Deletes the queue and its jobs (idempotent).
    async fn delete(&self, queue: &QueueName) -> Result<()>;
    /// Enqueues one job. `NotFound` if the queue does not exist.
    async fn send(&self, queue: &QueueName, job: NewJob) -> Result<()>;
    /// Enqueues several jobs in as few calls as the backend allows (SQS: up to 10 per call).
    /// One result per job, in order, each what [`send`](Self::send) would have returned for
    /// it: a job may fail alone, and the caller retries only those. The default sends them
    /// one at a time.
    async fn send_batch(&self, queue: &QueueName, jobs: Vec<NewJob>) -> Vec<Result<()>> {
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            out.push(self.send(queue, job).await);
        }
        out
    }
    /// Receives up to `max` visible jobs, hiding each for `visibility`. Waits up to `wait` for
    /// the first one (long polling). A job received more than the queue's maximum number of
    /// times moves to the dead-letter list instead of being returned.
    async fn receive(
        &self,
        queue: &QueueName,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedJob>>;
    /// Deletes a received job. A stale receipt (the job was redelivered since) is a `Conflict`.
    async fn ack(&self, queue: &QueueName, receipt: &str) -> Result<()>;
    /// Deletes several received jobs in as few calls as the backend allows (SQS: up to 10 per
    /// call). One result per receipt, in order, each what [`ack`](Self::ack) would have
    /// returned for it. The default acks them one at a time.
    async fn ack_batch(&self, queue: &QueueName, receipts: &[String]) -> Vec<Result<()>> {
        let mut out = Vec::with_capacity(receipts.len());
        for receipt in receipts {
            out.push(self.ack(queue, receipt).await);
        }
        out
    }
    /// Makes a received job visible again after `delay` (explicit retry with backoff).
    async fn retry_later(&self, queue: &QueueName, receipt: &str, delay: Duration) -> Result<()>;
    /// Keeps a received job hidden for `visibility` from now (long-running work).
    async fn extend(&self, queue: &QueueName, receipt: &str, visibility: Duration) -> Result<()>;
    /// Moves a received job to the dead-letter list.
    async fn dead_letter(&self, queue: &QueueName, receipt: &str, reason: &str) -> Result<()>;
    /// The dead-letter list, oldest first.
    async fn dead_letters(&self, queue: &QueueName, limit: u32) -> Result<Vec<DeadJob>>;
    /// Approximate number of jobs waiting (visible or delayed, not in flight).
    async fn depth(&self, queue: &QueueName) -> Result<u64>;
}
