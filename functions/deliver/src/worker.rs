//! The per-delivery step ([`Deliverer::handle`]) and the polling worker around it.
//!
//! One job = one attempt of one delivery. The step loads the delivery, skips it if it is
//! settled or the job is stale, makes the attempt, appends it to the delivery log, and moves the
//! delivery on: succeeded, retrying (a job for the next attempt is sent with the schedule's
//! delay, or the receiver's `Retry-After`), or dead. A 410 disables the subscription and publishes `webhook.disabled`.
//!
//! Isolation: the worker holds at most `concurrency` jobs at once, each in its own task, and at
//! most `per_host` of them may be talking to one host. A job whose host is at its limit is not
//! waited for: it is re-sent with a short delay without counting an attempt, so a hanging host
//! holds `per_host` slots and never the rest.

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

    /// Handles one delivery job: at most one attempt.
    #[tracing::instrument(skip_all, fields(delivery_id = %job.delivery_id, manual = job.manual))]
    pub async fn handle(&self, job: DeliveryJob) -> Result<Handled> {
        let mut delivery = match self.deliveries.get(&job.delivery_id).await {
            Err(Error::NotFound { .. }) => {
                tracing::warn!("delivery job for an unknown delivery; dropped");
                return Ok(Handled::Done);
            }
            other => other?,
        };
        match delivery.status {
            DeliveryStatus::Succeeded => return Ok(Handled::Done),
            DeliveryStatus::Dead if !job.manual => return Ok(Handled::Done),
            _ => {}
        }
        if job.attempt.is_some_and(|n| n != delivery.attempts + 1) {
            tracing::debug!(attempts = delivery.attempts, "stale delivery job; dropped");
            return Ok(Handled::Done);
        }
        let now = self.clock.now();
        let early = delivery
            .next_attempt_at
            .and_then(|at| (at - now).to_std().ok());
        if let Some(wait) = early.filter(|w| !job.manual && *w > EARLY_SLACK) {
            return Ok(Handled::Later(wait));
        }
        let webhook = match self.webhooks.get(&delivery.webhook_id).await {
            Err(Error::NotFound { .. }) => {
                return self.bury(delivery, "the webhook was deleted").await;
            }
            other => other?,
        };
        if !webhook.active {
            return self.bury(delivery, "the webhook is disabled").await;
        }
        let _slot = match self.limits.try_acquire(&host_key(&webhook.target)) {
            Ok(slot) => slot,
            Err(defer) => {
                tracing::debug!(
                    defer_ms = defer.as_millis() as u64,
                    "host at its concurrency limit; deferred"
                );
                return Ok(Handled::Later(defer));
            }
        };
        let event = self.events.get(&delivery.event_id).await?;
        let number = delivery.attempts + 1;
        let at = self.clock.now();
        let result = self.attempt(&webhook, &event).await;
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
        self.deliveries
            .record_attempt(&DeliveryAttempt {
                delivery_id: delivery.id.clone(),
                attempt: number,
                at,
                status_code: result.status_code,
                error: result.error.clone(),
                latency_ms,
            })
            .await?;
        let now = self.clock.now();
        delivery.attempts = number;
        delivery.last_status_code = result.status_code;
        delivery.last_error = result.error.clone();
        delivery.last_latency_ms = Some(latency_ms);
        delivery.updated_at = now;
        let mut retry = None;
        let handled = match result.verdict {
            Verdict::Success => {
                delivery.status = DeliveryStatus::Succeeded;
                delivery.next_attempt_at = None;
                Handled::Done
            }
            Verdict::Gone => {
                delivery.status = DeliveryStatus::Dead;
                delivery.next_attempt_at = None;
                self.disable(&webhook).await?;
                Handled::Done
            }
            Verdict::Retry { retry_after } => match self.schedule.delay_before(number + 1) {
                Some(scheduled) => {
                    let delay = retry_after
                        .map_or(scheduled, |r| self.schedule.scale(r.min(MAX_RETRY_AFTER)));
                    delivery.status = DeliveryStatus::Retrying;
                    delivery.next_attempt_at =
                        Some(now + chrono::Duration::from_std(delay).unwrap_or_default());
                    retry = Some((
                        DeliveryJob::scheduled(delivery.id.clone(), number + 1),
                        delay,
                    ));
                    Handled::Done
                }
                None => {
                    delivery.status = DeliveryStatus::Dead;
                    delivery.next_attempt_at = None;
                    Handled::Done
                }
            },
        };
        self.deliveries.update(&delivery).await?;
        // The next attempt's job is sent before this one is acked: a crash in between leaves a
        // duplicate (dropped as stale), never a gap.
        if let Some((next, delay)) = retry {
            self.enqueue(&next, delay).await?;
        }
        Ok(handled)
    }

    async fn enqueue(&self, job: &DeliveryJob, delay: Duration) -> Result<()> {
        let body = serde_json::to_vec(job).map_err(|e| Error::unexpected(e.to_string()))?;
        let job = NewJob {
            body,
            delay: delay.min(MAX_SEND_DELAY),
            ..NewJob::default()
        };
        self.queue.send(&QueueName::Deliveries, job).await
    }

    async fn attempt(&self, webhook: &Webhook, event: &Event) -> AttemptResult {
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
        for (job, permit) in jobs.into_iter().zip(permits) {
            let (deliverer, queue, opts) =
                (self.deliverer.clone(), queue.clone(), self.opts.clone());
            self.tasks.spawn(async move {
                let report = handle_batch(vec![job], |j: DeliveryJob, _| deliverer.handle(j)).await;
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
