//! [`JobQueue`] on SQLite, with SQS semantics: at-least-once, visibility timeouts, delays,
//! per-group FIFO and deduplication on FIFO queues, and a dead-letter table.
//!
//! A job is *visible* when `visible_ns <= now`. Receiving one stamps a fresh `receipt` and
//! pushes `visible_ns` out by the visibility timeout; only the holder of the current receipt can
//! ack, extend, retry or dead-letter it. On a FIFO queue only the oldest remaining job of each
//! group (its head) can be received, so while it is in flight (or delayed) the rest of its
//! group waits and other groups proceed.
//!
//! Long polling waits on an in-process [`Notify`] per queue, woken by `send` and by whatever
//! releases a FIFO group (ack, retry, dead letter), with a short
//! poll as the fallback for jobs that become visible by time (or are sent by another process).
//! Each look first asks a reader whether anything is receivable, so idle polls never occupy
//! the writer.

mod jobs;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use openwa_core::clock::Clock;
use openwa_core::error::{Error, Result};
use openwa_core::ports::{DeadJob, JobQueue, NewJob, QueueName, ReceivedJob};
use rusqlite::{Transaction, params};
use tokio::sync::Notify;

use super::codec::{add_ns, from_ns, to_ns};
use super::db::{Db, DbResult};

/// SQS's limit on jobs per receive; the embedded queue keeps it so callers behave the same.
pub const MAX_RECEIVE_BATCH: u32 = 10;
/// Expired dedup ids are swept after this many sends.
const DEDUP_SWEEP_EVERY: u64 = 512;

/// Queue behaviour that SQS configures per queue and the embedded queue takes once.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// A job received this many times goes to the dead-letter table on its next receive.
    pub max_receives: u32,
    /// FIFO queues drop a job whose dedup id was sent within this window.
    pub dedup_window: Duration,
    /// How often a long poll re-checks for jobs that became visible by time.
    pub poll_interval: Duration,
}

pub struct SqliteJobQueue {
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
    config: QueueConfig,
    /// One wake-up per queue key, for long polls in this process.
    notifiers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Counts sends, to sweep expired dedup ids now and then.
    sends: AtomicU64,
}

impl SqliteJobQueue {
    pub(crate) fn new(db: Arc<Db>, clock: Arc<dyn Clock>, config: QueueConfig) -> Self {
        Self {
            db,
            clock,
            config,
            notifiers: Mutex::new(HashMap::new()),
            sends: AtomicU64::new(0),
        }
    }

    fn notifier(&self, key: &str) -> Arc<Notify> {
        let mut map = self.notifiers.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.to_owned()).or_default().clone()
    }

    fn now_ns(&self) -> Result<i64> {
        to_ns(self.clock.now())
    }

    /// Enqueues `body` on the standard queue `queue` inside the caller's write transaction, so
    /// the job commits together with the caller's other writes or not at all (a store's
    /// outbox). Creates the queue if needed. Call [`wake`](Self::wake) after the commit.
    pub(crate) fn send_in(
        tx: &Transaction<'_>,
        queue: &QueueName,
        body: &[u8],
        now: i64,
    ) -> DbResult<()> {
        if queue.is_fifo() {
            return Err(Error::unexpected("send_in: FIFO queues need their dedup path").into());
        }
        let key = queue.key();
        tx.prepare_cached(
            "INSERT INTO queues (name, fifo, created_ns) VALUES (?, 0, ?) ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![key, now])?;
        jobs::insert(tx, &key, body, None, now, now)?;
        Ok(())
    }

    /// One non-waiting receive.
    async fn receive_now(
        &self,
        key: &str,
        max: u32,
        visibility: Duration,
    ) -> Result<Vec<ReceivedJob>> {
        let now = self.now_ns()?;
        let k = key.to_owned();
        let fifo = self
            .db
            .read(move |conn| {
                let fifo = jobs::queue_kind(conn, &k)?;
                Ok(jobs::any_receivable(conn, &k, fifo, now)?.then_some(fifo))
            })
            .await?;
        let Some(fifo) = fifo else {
            return Ok(Vec::new());
        };
        let (key, max_receives) = (key.to_owned(), self.config.max_receives);
        self.db
            .write(move |tx| take_jobs(tx, &key, fifo, now, max as usize, visibility, max_receives))
            .await
    }

    /// Runs `f` on the job holding `receipt` in `queue`; `Conflict` if the receipt is stale.
    /// Wakes every long poll waiting on `queue` (also after a [`send_in`](Self::send_in)
    /// committed).
    pub(crate) fn wake(&self, queue: &QueueName) {
        self.notifier(&queue.key()).notify_waiters();
    }

    async fn with_receipt<T: Send + 'static>(
        &self,
        queue: &QueueName,
        receipt: &str,
        f: impl FnOnce(&Transaction<'_>, &str, i64, Option<&str>, i64) -> DbResult<T> + Send + 'static,
    ) -> Result<T> {
        let (key, receipt, now) = (queue.key(), receipt.to_owned(), self.now_ns()?);
        self.db
            .write(move |tx| {
                let (seq, group) = jobs::by_receipt(tx, &key, &receipt)?;
                f(tx, &key, seq, group.as_deref(), now)
            })
            .await
    }
}

/// Hands out up to `max` jobs. A job already received `max_receives` times is dead-lettered
/// instead, which may free its group's next job, so it looks again until full or dry.
fn take_jobs(
    tx: &Transaction<'_>,
    key: &str,
    fifo: bool,
    now: i64,
    max: usize,
    visibility: Duration,
    max_receives: u32,
) -> DbResult<Vec<ReceivedJob>> {
    let mut out = Vec::new();
    loop {
        let found = jobs::candidates(tx, key, fifo, now, max - out.len())?;
        if found.is_empty() {
            break;
        }
        let mut buried = false;
        for job in found {
            if job.receive_count >= max_receives {
                jobs::bury(
                    tx,
                    key,
                    job.seq,
                    job.group.as_deref(),
                    "maximum receives exceeded",
                    now,
                )?;
                buried = true;
                continue;
            }
            let receipt = ulid::Ulid::new().to_string();
            jobs::take(tx, key, &job, &receipt, add_ns(now, visibility))?;
            out.push(ReceivedJob {
                id: job.id,
                receipt,
                body: job.body,
                group: job.group,
                receive_count: job.receive_count + 1,
                enqueued_at: from_ns(job.enqueued_ns),
            });
        }
        if !buried || out.len() >= max {
            break;
        }
    }
    Ok(out)
}

#[async_trait]
impl JobQueue for SqliteJobQueue {
    #[tracing::instrument(skip_all, fields(queue = %queue.key()))]
    async fn ensure(&self, queue: &QueueName) -> Result<()> {
        let (key, fifo, now) = (queue.key(), queue.is_fifo(), self.now_ns()?);
        self.db
            .write(move |tx| {
                tx.prepare_cached("INSERT INTO queues (name, fifo, created_ns) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING")?
                    .execute(params![key, fifo, now])?;
                Ok(())
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(queue = %queue.key()))]
    async fn delete(&self, queue: &QueueName) -> Result<()> {
        let key = queue.key();
        let k = key.clone();
        // Jobs, group heads, dedup ids and dead letters go with the queue (ON DELETE CASCADE).
        self.db
            .write(move |tx| {
                tx.prepare_cached("DELETE FROM queues WHERE name = ?")?
                    .execute([k])?;
                Ok(())
            })
            .await?;
        if let Some(n) = self
            .notifiers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)
        {
            n.notify_waiters();
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(queue = %queue.key(), size = job.body.len()))]
    async fn send(&self, queue: &QueueName, job: NewJob) -> Result<()> {
        let key = queue.key();
        let now = self.now_ns()?;
        let dedup_until = add_ns(now, self.config.dedup_window);
        let sweep = self
            .sends
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(DEDUP_SWEEP_EVERY);
        let k = key.clone();
        let sent = self
            .db
            .write(move |tx| {
                let fifo = jobs::queue_kind(tx, &k)?;
                if sweep {
                    tx.prepare_cached("DELETE FROM job_dedup WHERE expires_ns <= ?")?.execute([now])?;
                }
                if let (true, Some(dedup)) = (fifo, &job.dedup_id) {
                    let fresh = tx
                        .prepare_cached(
                            "INSERT INTO job_dedup (queue, dedup_id, expires_ns) VALUES (?1, ?2, ?3)
                             ON CONFLICT (queue, dedup_id) DO UPDATE SET expires_ns = excluded.expires_ns
                             WHERE job_dedup.expires_ns <= ?4",
                        )?
                        .execute(params![k, dedup, dedup_until, now])?;
                    if fresh == 0 {
                        return Ok(false);
                    }
                }
                jobs::insert(tx, &k, &job.body, job.group.as_deref(), now, add_ns(now, job.delay))?;
                Ok(true)
            })
            .await?;
        if sent {
            self.notifier(&key).notify_waiters();
        } else {
            tracing::debug!("dropped a duplicate job");
        }
        Ok(())
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
        let key = queue.key();
        let deadline = tokio::time::Instant::now() + wait;
        let notify = self.notifier(&key);
        loop {
            // Register for a wake-up before looking, so a send in between is not missed.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let jobs = self.receive_now(&key, max, visibility).await?;
            let now = tokio::time::Instant::now();
            if !jobs.is_empty() || now >= deadline {
                return Ok(jobs);
            }
            let nap = (deadline - now).min(self.config.poll_interval);
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn ack(&self, queue: &QueueName, receipt: &str) -> Result<()> {
        self.with_receipt(queue, receipt, |tx, key, seq, group, _| {
            jobs::delete(tx, key, seq, group)
        })
        .await?;
        // In a FIFO queue the ack releases the group's next job: wake long polls for it now,
        // not at the next poll tick (that tick capped one chat at ~10 sends/s).
        self.wake(queue);
        Ok(())
    }

    async fn retry_later(&self, queue: &QueueName, receipt: &str, delay: Duration) -> Result<()> {
        // The receipt dies here: the job is back in line, not in this caller's hands.
        self.with_receipt(queue, receipt, move |tx, key, seq, group, now| {
            jobs::set_visible(tx, key, seq, group, add_ns(now, delay), true)
        })
        .await?;
        self.wake(queue);
        Ok(())
    }

    async fn extend(&self, queue: &QueueName, receipt: &str, visibility: Duration) -> Result<()> {
        self.with_receipt(queue, receipt, move |tx, key, seq, group, now| {
            jobs::set_visible(tx, key, seq, group, add_ns(now, visibility), false)
        })
        .await
    }

    async fn dead_letter(&self, queue: &QueueName, receipt: &str, reason: &str) -> Result<()> {
        let reason = reason.to_owned();
        self.with_receipt(queue, receipt, move |tx, key, seq, group, now| {
            jobs::bury(tx, key, seq, group, &reason, now)
        })
        .await?;
        self.wake(queue);
        Ok(())
    }

    async fn dead_letters(&self, queue: &QueueName, limit: u32) -> Result<Vec<DeadJob>> {
        let key = queue.key();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, body, grp, receive_count, reason, dead_ns FROM dead_jobs WHERE queue = ? ORDER BY seq LIMIT ?",
                )?;
                let rows = stmt.query_map(params![key, limit], |r| {
                    Ok(DeadJob {
                        id: r.get(0)?,
                        body: r.get(1)?,
                        group: r.get(2)?,
                        receive_count: r.get(3)?,
                        reason: r.get(4)?,
                        dead_at: from_ns(r.get(5)?),
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn depth(&self, queue: &QueueName) -> Result<u64> {
        let (key, now) = (queue.key(), self.now_ns()?);
        self.db
            .read(move |conn| {
                jobs::queue_kind(conn, &key)?;
                let n: i64 = conn
                    .prepare_cached("SELECT COUNT(*) FROM jobs WHERE queue = ?1 AND NOT (receipt IS NOT NULL AND visible_ns > ?2)")?
                    .query_row(params![key, now], |r| r.get(0))?;
                Ok(n as u64)
            })
            .await
    }
}
