//! The per-delivery step ([`Deliverer::handle_with`]) and the polling worker around it.
//!
//! One job = one attempt of one delivery. The step takes the delivery, skips it if it is
//! settled or the job is stale, makes the attempt, and in one write appends it to the delivery
//! log and moves the delivery on: succeeded, retrying (a job for the next attempt is sent with
//! the schedule's delay, or the receiver's `Retry-After`), or dead. A 410 disables the
//! subscription and publishes `webhook.disabled`.
//!
//! Reads are per batch (module `batch`): [`Deliverer::prefetch`] reads the deliveries of all
//! the batch's jobs in one call and their webhooks in another, fresh for every batch (never
//! cached across batches, so a disabled, deleted or re-keyed webhook takes effect at once). The
//! event comes in the job itself; only jobs that do not carry it (older jobs, redeliveries
//! through the API) read it.
//!
//! Isolation: the worker holds at most `concurrency` jobs at once, each in its own task, and at
//! most `per_host` of them may be talking to one host. A job whose host is at its limit is not
//! waited for: it is re-sent with a short delay without counting an attempt, so a hanging host
//! holds `per_host` slots and never the rest.

mod batch;

use std::sync::Arc;
use std::time::Duration;

use openwa_core::clock::Clock;
use openwa_core::error::{Error, Result};
use openwa_core::event::{Event, EventType};
use openwa_core::ports::{
    Backend, DeliveryStore, EventStore, JobQueue, NewJob, QueueName, WebhookStore,
};
use openwa_core::services::EventPublisher;
use openwa_core::webhook::{
    Delivery, DeliveryAttempt, DeliveryJob, DeliveryStatus, RetrySchedule, Webhook, WebhookTarget,
};
use openwa_fanout::batch::{Handled, MAX_SEND_DELAY, PollOptions, handle_batch, settle};
use tokio::sync::Semaphore;

pub use batch::Prefetched;

use crate::limits::HostLimits;
use crate::sender::{AttemptResult, HttpSender, Verdict, delivery_headers};
use crate::sqs::SqsTargetSender;

/// A job that shows up this much before its delivery is due is put back until then.
const EARLY_SLACK: Duration = Duration::from_millis(50);
/// `Retry-After` is honoured up to the schedule's longest wait.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 3600);

/// Everything one delivery attempt needs.
pub struct Deliverer {
    webhooks: Arc<dyn WebhookStore>,
    deliveries: Arc<dyn DeliveryStore>,
    events: Arc<dyn EventStore>,
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
    publisher: EventPublisher,
    http: HttpSender,
    sqs: Arc<dyn SqsTargetSender>,
    schedule: RetrySchedule,
    limits: HostLimits,
}

impl Deliverer {
    pub fn new(
        backend: &Backend,
        http: HttpSender,
        sqs: Arc<dyn SqsTargetSender>,
        schedule: RetrySchedule,
        limits: HostLimits,
    ) -> Self {
        Self {
            webhooks: backend.webhooks.clone(),
            deliveries: backend.deliveries.clone(),
            events: backend.events.clone(),
            queue: backend.queue.clone(),
            clock: backend.clock.clone(),
            publisher: EventPublisher::new(backend.sessions.clone(), backend.queue.clone()),
            http,
            sqs,
            schedule,
            limits,
        }
    }

    pub fn queue(&self) -> Arc<dyn JobQueue> {
        self.queue.clone()
    }

    /// Handles one delivery job on its own: at most one attempt.
    pub async fn handle(&self, job: DeliveryJob) -> Result<Handled> {
        let pre = self.prefetch(std::slice::from_ref(&job)).await;
        self.handle_with(job, &pre).await
    }

    /// Handles one delivery job of a batch whose reads are in `pre`: at most one attempt,
    /// written on its own.
    pub async fn handle_with(&self, job: DeliveryJob, pre: &Prefetched) -> Result<Handled> {
        match self.attempt(job, pre).await? {
            Step::Finished(handled) => Ok(handled),
            Step::Attempted(a) => {
                // The attempt and the delivery's new state in one write.
                self.deliveries
                    .record_outcome(&a.attempt, &a.delivery)
                    .await?;
                // The next attempt's job is sent before this one is acked: a crash in between
                // leaves a duplicate (dropped as stale), never a gap.
                if let Some((next, delay)) = &a.retry {
                    self.queue
                        .send(&QueueName::Deliveries, retry_job(next, *delay)?)
                        .await?;
                }
                Ok(Handled::Done)
            }
        }
    }

    /// The attempt of one job, with nothing about it written yet (except burying a delivery
    /// whose webhook is gone or disabled, and disabling a webhook after 410).
    #[tracing::instrument(skip_all, fields(delivery_id = %job.delivery_id, manual = job.manual))]
    async fn attempt(&self, job: DeliveryJob, pre: &Prefetched) -> Result<Step> {
        let found = match pre.delivery(&job.delivery_id) {
            Some(found) => Ok(found.cloned()),
            None => match self.deliveries.get(&job.delivery_id).await {
                Ok(d) => Ok(Some(d)),
                Err(Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            },
        };
        let Some(mut delivery) = found? else {
            tracing::warn!("delivery job for an unknown delivery; dropped");
            return Ok(Step::Finished(Handled::Done));
        };
        match delivery.status {
            DeliveryStatus::Succeeded => return Ok(Step::Finished(Handled::Done)),
            DeliveryStatus::Dead if !job.manual => return Ok(Step::Finished(Handled::Done)),
            _ => {}
        }
        if job.attempt.is_some_and(|n| n != delivery.attempts + 1) {
            tracing::debug!(attempts = delivery.attempts, "stale delivery job; dropped");
            return Ok(Step::Finished(Handled::Done));
        }
        let now = self.clock.now();
        let early = delivery
            .next_attempt_at
            .and_then(|at| (at - now).to_std().ok());
        if let Some(wait) = early.filter(|w| !job.manual && *w > EARLY_SLACK) {
            return Ok(Step::Finished(Handled::Later(wait)));
        }
        let found = match pre.webhook(&delivery.webhook_id) {
            Some(found) => Ok(found.cloned()),
            None => match self.webhooks.get(&delivery.webhook_id).await {
                Ok(w) => Ok(Some(w)),
                Err(Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            },
        };
        let Some(webhook) = found? else {
            return self
                .bury(delivery, "the webhook was deleted")
                .await
                .map(Step::Finished);
        };
        if !webhook.active {
            return self
                .bury(delivery, "the webhook is disabled")
                .await
                .map(Step::Finished);
        }
        let _slot = match self.limits.try_acquire(&host_key(&webhook.target)) {
            Ok(slot) => slot,
            Err(defer) => {
                tracing::debug!(
                    defer_ms = defer.as_millis() as u64,
                    "host at its concurrency limit; deferred"
                );
                return Ok(Step::Finished(Handled::Later(defer)));
            }
        };
        let event = match job.event {
            Some(event) if event.id == delivery.event_id => event,
            _ => self.events.get(&delivery.event_id).await?,
        };
        let number = delivery.attempts + 1;
        let at = self.clock.now();
        let result = self.call(&webhook, &event).await;
        tracing::info!(
            webhook_id = %webhook.id,
            attempt = number,
            status_code = ?result.status_code,
            latency_ms = result.latency.as_millis() as u64,
            error = result.error.as_deref().unwrap_or(""),
            "delivery attempt"
        );
        if !matches!(result.verdict, Verdict::Success) {
            crate::metrics::delivery_failed();
        }
        let latency_ms = u64::try_from(result.latency.as_millis()).unwrap_or(u64::MAX);
        let attempt = DeliveryAttempt {
            delivery_id: delivery.id.clone(),
            attempt: number,
            at,
            status_code: result.status_code,
            error: result.error.clone(),
            latency_ms,
        };
        let now = self.clock.now();
        delivery.attempts = number;
        delivery.last_status_code = result.status_code;
        delivery.last_error = result.error.clone();
        delivery.last_latency_ms = Some(latency_ms);
        delivery.updated_at = now;
        let mut retry = None;
        match result.verdict {
            Verdict::Success => {
                delivery.status = DeliveryStatus::Succeeded;
                delivery.next_attempt_at = None;
            }
            Verdict::Gone => {
                delivery.status = DeliveryStatus::Dead;
                delivery.next_attempt_at = None;
                // Before the outcome is written: if this fails the job comes back, the
                // endpoint answers 410 again and the webhook is disabled then.
                self.disable(&webhook).await?;
            }
            Verdict::Retry { retry_after } => match self.schedule.delay_before(number + 1) {
                Some(scheduled) => {
                    let delay = retry_after
                        .map_or(scheduled, |r| self.schedule.scale(r.min(MAX_RETRY_AFTER)));
                    delivery.status = DeliveryStatus::Retrying;
                    delivery.next_attempt_at =
                        Some(now + chrono::Duration::from_std(delay).unwrap_or_default());
                    let next = DeliveryJob::scheduled(delivery.id.clone(), number + 1)
                        .carrying(webhook.id.clone(), event);
                    retry = Some((next, delay));
                }
                None => {
                    delivery.status = DeliveryStatus::Dead;
                    delivery.next_attempt_at = None;
                }
            },
        }
        Ok(Step::Attempted(Box::new(Attempted {
            attempt,
            delivery,
            retry,
        })))
    }

    /// One call of the target: the signed POST or the SQS send.
    async fn call(&self, webhook: &Webhook, event: &Event) -> AttemptResult {
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => {
                return AttemptResult::failed(
                    format!("event does not serialise: {e}"),
                    Duration::ZERO,
                );
            }
        };
        match &webhook.target {
            WebhookTarget::Http { url } => {
                let headers = delivery_headers(webhook, &event.id, self.clock.now(), &body);
                self.http.post(url, &headers, body).await
            }
            WebhookTarget::Sqs { queue_url } => {
                let message = crate::sqs::target_message(webhook, event, self.clock.now(), body);
                let started = std::time::Instant::now();
                match self.sqs.send(queue_url, &message).await {
                    Ok(()) => AttemptResult {
                        verdict: Verdict::Success,
                        status_code: None,
                        error: None,
                        latency: started.elapsed(),
                    },
                    Err(e) => AttemptResult::failed(e.to_string(), started.elapsed()),
                }
            }
        }
    }

    /// Dead-letters a delivery that can no longer be attempted (no attempt is recorded).
    async fn bury(&self, mut delivery: Delivery, why: &str) -> Result<Handled> {
        delivery.status = DeliveryStatus::Dead;
        delivery.last_error = Some(why.to_owned());
        delivery.next_attempt_at = None;
        delivery.updated_at = self.clock.now();
        self.deliveries.update(&delivery).await?;
        Ok(Handled::Done)
    }

    /// Turns the subscription off after a 410 and tells whoever listens for `webhook.disabled`.
    async fn disable(&self, webhook: &Webhook) -> Result<()> {
        let mut current = self.webhooks.get(&webhook.id).await?;
        if !current.active {
            return Ok(());
        }
        let now = self.clock.now();
        let reason = "the endpoint answered 410 Gone".to_owned();
        current.active = false;
        current.disabled_reason = Some(reason.clone());
        current.updated_at = now;
        self.webhooks.update(&current).await?;
        tracing::warn!(webhook_id = %webhook.id, "webhook disabled after 410 Gone");
        let data = serde_json::json!({"webhook_id": webhook.id, "reason": reason});
        self.publisher
            .publish(Event::new(
                EventType::WebhookDisabled,
                current.session_id.clone(),
                now,
                data,
            ))
            .await
    }
}

/// Where one job stands after [`Deliverer::attempt`].
enum Step {
    /// Nothing left to write: settled, stale, early, deferred or buried.
    Finished(Handled),
    /// An attempt was made: it and the delivery's new state are to be written, then the next
    /// attempt's job (if any) sent.
    Attempted(Box<Attempted>),
}

struct Attempted {
    attempt: DeliveryAttempt,
    delivery: Delivery,
    /// The next attempt's job and its delay.
    retry: Option<(DeliveryJob, Duration)>,
}

/// The queue job of `job`, due after `delay` (capped at what a queue accepts: a longer wait is
/// chained, the worker finding the job early and asking for the rest).
fn retry_job(job: &DeliveryJob, delay: Duration) -> Result<NewJob> {
    let body = serde_json::to_vec(job).map_err(|e| Error::unexpected(e.to_string()))?;
    Ok(NewJob {
        body,
        delay: delay.min(MAX_SEND_DELAY),
        ..NewJob::default()
    })
}

/// The concurrency key of a target: scheme, host and port.
fn host_key(target: &WebhookTarget) -> String {
    match target {
        WebhookTarget::Http { url } => reqwest::Url::parse(url)
            .ok()
            .map(|u| {
                format!(
                    "{}://{}:{}",
                    u.scheme(),
                    u.host_str().unwrap_or_default(),
                    u.port_or_known_default().unwrap_or(0)
                )
            })
            .unwrap_or_else(|| url.clone()),
        WebhookTarget::Sqs { queue_url } => format!("sqs:{queue_url}"),
    }
}

/// The polling worker: receives up to the free slots, runs each job in its own task.
pub struct Worker {
    deliverer: Arc<Deliverer>,
    slots: Arc<Semaphore>,
    opts: PollOptions,
    tasks: tokio::task::JoinSet<()>,
}

impl Worker {
    pub fn new(deliverer: Arc<Deliverer>, concurrency: usize, opts: PollOptions) -> Self {
        Self {
            deliverer,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            opts,
            tasks: tokio::task::JoinSet::new(),
        }
    }

    /// One step: wait for a free slot, receive up to as many jobs as slots are free (at most a
    /// batch), start one task per job. Returns how many jobs were received.
    pub async fn step(&mut self) -> Result<usize> {
        while self.tasks.try_join_next().is_some() {}
        let first = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::unexpected("worker slots closed"))?;
        let mut permits = vec![first];
        while permits.len() < self.opts.batch as usize {
            match self.slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let queue = self.deliverer.queue();
        let jobs = queue
            .receive(
                &QueueName::Deliveries,
                permits.len() as u32,
                self.opts.visibility,
                self.opts.wait,
            )
            .await?;
        let received = jobs.len();
        let pre = Arc::new(self.deliverer.prefetch_received(&jobs).await);
        for (job, permit) in jobs.into_iter().zip(permits) {
            let (deliverer, queue, opts, pre) = (
                self.deliverer.clone(),
                queue.clone(),
                self.opts.clone(),
                pre.clone(),
            );
            self.tasks.spawn(async move {
                let report = handle_batch(vec![job], |j: DeliveryJob, _| {
                    deliverer.handle_with(j, &pre)
                })
                .await;
                for (job, outcome) in report.results {
                    settle(queue.as_ref(), &QueueName::Deliveries, &opts, &job, outcome).await;
                }
                drop(permit);
            });
        }
        Ok(received)
    }

    /// Waits for the jobs in hand, up to `grace`.
    pub async fn drain(&mut self, grace: Duration) {
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                "deliveries still in flight at shutdown; their jobs will be redelivered"
            );
        }
    }
}
