//! The expansion step: store each event once, then one delivery (and one delivery job) per
//! active subscription that wants it. Works on a whole batch of events at a time.
//!
//! A batch costs one subscription lookup ([`WebhookStore::active_for_sessions`], matched per
//! event in memory), one write of all its events and deliveries
//! ([`DeliveryStore::create_expansions`]; on DynamoDB one transaction per 100 items) and one
//! batched send of the delivery jobs ([`JobQueue::send_batch`], 10 per call on SQS). Each job
//! carries the subscription's id and the event, so the deliver worker need not read them back.
//!
//! Idempotent on event id. An event is stored only if absent; each delivery id is derived from
//! (webhook, event) and created only if absent, so a redelivered event finds the deliveries of
//! its first run instead of making new ones. A redelivered event (received before) re-enqueues
//! the jobs of deliveries that have not been attempted yet: the first run may have died between
//! creating a delivery and enqueueing its job. That can queue a job twice, which the deliver
//! worker tolerates (at-least-once); a duplicate copy received for the first time queues
//! nothing. A job that could not be sent fails its event alone, whose message then comes back
//! (received before) and sends it again; so does an event the store refuses (the batch is then
//! written event by event).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::event::Event;
use openwa_core::id::{DeliveryId, SessionId};
use openwa_core::ports::store::{Expansion, ExpansionStored};
use openwa_core::ports::{DeliveryStore, EventStore, JobQueue, NewJob, QueueName, WebhookStore};
use openwa_core::webhook::schedule::delivery_id_for;
use openwa_core::webhook::{Delivery, DeliveryJob, DeliveryStatus, Webhook};

/// The ports fan-out needs.
#[derive(Clone)]
pub struct Fanout {
    pub webhooks: Arc<dyn WebhookStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub events: Arc<dyn EventStore>,
    pub queue: Arc<dyn JobQueue>,
    pub clock: Arc<dyn openwa_core::clock::Clock>,
}

/// What one event turned into.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expanded {
    /// The event had been stored before (a redelivery).
    pub seen_before: bool,
    /// Deliveries created by this run.
    pub created: usize,
    /// Delivery jobs enqueued by this run.
    pub enqueued: usize,
}

/// One event of a batch.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub event: Event,
    /// Its queue message was received before (receive count above 1): only then may an earlier
    /// run of it have died between creating a delivery and enqueueing its job.
    pub received_before: bool,
}

impl Fanout {
    pub fn from_backend(backend: &openwa_core::ports::Backend) -> Self {
        Self {
            webhooks: backend.webhooks.clone(),
            deliveries: backend.deliveries.clone(),
            events: backend.events.clone(),
            queue: backend.queue.clone(),
            clock: backend.clock.clone(),
        }
    }

    /// Handles one event from the events queue, assuming an earlier run may have stopped
    /// part-way (see [`expand_received`](Self::expand_received)).
    pub async fn expand(&self, event: Event) -> Result<Expanded> {
        self.expand_received(event, true).await
    }

    /// Handles one event. `received_before` says whether this queue message was received
    /// before (its receive count is above 1): only then may an earlier run of it have died
    /// between creating a delivery and enqueueing its job, so only then are the jobs of
    /// never-attempted deliveries sent again. A copy received for the first time (an SQS
    /// duplicate, or the event published twice) leaves them to the run that created them, so
    /// it adds no delivery jobs; if that run died, its own message comes back with a higher
    /// receive count and repairs them.
    pub async fn expand_received(&self, event: Event, received_before: bool) -> Result<Expanded> {
        let incoming = Incoming {
            event,
            received_before,
        };
        self.expand_batch(vec![incoming])
            .await
            .pop()
            .unwrap_or_else(|| Err(Error::unexpected("fan-out returned no result")))
    }

    /// Handles a batch of events: one result per event, in order. A failure of the lookup or
    /// of the write fails every event (running the batch again is safe); a job that could not
    /// be sent fails only its event.
    #[tracing::instrument(skip_all, fields(events = batch.len()))]
    pub async fn expand_batch(&self, batch: Vec<Incoming>) -> Vec<Result<Expanded>> {
        match self.try_expand(&batch).await {
            Ok(results) => results,
            Err(error) => batch.iter().map(|_| Err(error.clone())).collect(),
        }
    }

    async fn try_expand(&self, batch: &[Incoming]) -> Result<Vec<Result<Expanded>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let sessions: Vec<SessionId> = batch
            .iter()
            .filter_map(|i| i.event.session_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let subscriptions = self.webhooks.active_for_sessions(&sessions).await?;
        let now = self.clock.now();
        let expansions: Vec<Expansion> = batch
            .iter()
            .map(|i| Expansion {
                event: i.event.clone(),
                deliveries: subscriptions
                    .iter()
                    .filter(|w| w.wants(i.event.session_id.as_ref(), i.event.kind))
                    .map(|w| new_delivery(w, &i.event, now))
                    .collect(),
            })
            .collect();
        let stored = self.store(&expansions).await?;

        let mut out = vec![Expanded::default(); batch.len()];
        let mut failed: Vec<Option<Error>> = vec![None; batch.len()];
        // (event index, delivery) of every job to send.
        let mut jobs: Vec<(usize, &Delivery)> = Vec::new();
        let mut recheck: Vec<(usize, &Delivery)> = Vec::new();
        for (i, (x, s)) in expansions.iter().zip(stored).enumerate() {
            let s = match s {
                Ok(s) => s,
                Err(error) => {
                    failed[i] = Some(error);
                    continue;
                }
            };
            out[i].seen_before = !s.event_new;
            for (d, created) in x.deliveries.iter().zip(&s.created) {
                if *created {
                    out[i].created += 1;
                    jobs.push((i, d));
                } else if !s.event_new && batch[i].received_before {
                    recheck.push((i, d));
                }
            }
        }
        if !recheck.is_empty() {
            // Only a delivery never attempted may have lost its job; others have a schedule
            // of their own.
            let ids: Vec<DeliveryId> = recheck.iter().map(|(_, d)| d.id.clone()).collect();
            let current: HashMap<DeliveryId, Delivery> = self
                .deliveries
                .get_many(&ids)
                .await?
                .into_iter()
                .map(|d| (d.id.clone(), d))
                .collect();
            jobs.extend(recheck.into_iter().filter(|(_, d)| {
                current
                    .get(&d.id)
                    .is_some_and(|c| c.status == DeliveryStatus::Pending && c.attempts == 0)
            }));
        }

        let mut results: Vec<Result<Expanded>> = out
            .into_iter()
            .zip(failed)
            .map(|(x, failed)| failed.map_or(Ok(x), Err))
            .collect();
        if jobs.is_empty() {
            return Ok(results);
        }
        let bodies = jobs
            .iter()
            .map(|(i, d)| job_for(d, &expansions[*i].event))
            .collect::<Result<Vec<_>>>()?;
        let sent = self.queue.send_batch(&QueueName::Deliveries, bodies).await;
        for ((i, _), result) in jobs.iter().zip(sent) {
            match result {
                Ok(()) => {
                    if let Ok(x) = &mut results[*i] {
                        x.enqueued += 1;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, event_id = %expansions[*i].event.id, "a delivery job was not sent");
                    results[*i] = Err(error);
                }
            }
        }
        for (i, r) in results.iter().enumerate() {
            if let Ok(x) = r {
                tracing::debug!(
                    event_id = %expansions[i].event.id,
                    created = x.created,
                    enqueued = x.enqueued,
                    seen_before = x.seen_before,
                    "event expanded"
                );
            }
        }
        Ok(results)
    }
}

impl Fanout {
    /// Writes the batch's events and deliveries in one go; if that fails, event by event, so an
    /// event the store refuses (too large, say) fails alone instead of taking its batch with
    /// it. One result per expansion, in order.
    async fn store(&self, expansions: &[Expansion]) -> Result<Vec<Result<ExpansionStored>>> {
        let whole = self.deliveries.create_expansions(expansions).await;
        let error = match whole {
            Ok(stored) if stored.len() == expansions.len() => {
                return Ok(stored.into_iter().map(Ok).collect());
            }
            Ok(_) => {
                return Err(Error::unexpected(
                    "the delivery store answered for a different number of events",
                ));
            }
            Err(error) if expansions.len() > 1 => error,
            Err(error) => return Err(error),
        };
        tracing::warn!(%error, "writing the batch failed; writing event by event");
        let mut each = Vec::with_capacity(expansions.len());
        for x in expansions {
            let one = self
                .deliveries
                .create_expansions(std::slice::from_ref(x))
                .await
                .and_then(|mut s| {
                    s.pop()
                        .ok_or_else(|| Error::unexpected("the delivery store answered nothing"))
                });
            each.push(one);
        }
        Ok(each)
    }
}

/// The delivery of `event` to `webhook`, due now.
fn new_delivery(webhook: &Webhook, event: &Event, now: Timestamp) -> Delivery {
    Delivery {
        id: delivery_id_for(&webhook.id, &event.id),
        webhook_id: webhook.id.clone(),
        event_id: event.id.clone(),
        event_type: event.kind,
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_status_code: None,
        last_error: None,
        last_latency_ms: None,
        next_attempt_at: Some(now),
        created_at: now,
        updated_at: now,
    }
}

/// The job of a delivery's first attempt, carrying the event.
fn job_for(delivery: &Delivery, event: &Event) -> Result<NewJob> {
    let job = DeliveryJob::scheduled(delivery.id.clone(), 1)
        .carrying(delivery.webhook_id.clone(), event.clone());
    let body = serde_json::to_vec(&job).map_err(|e| Error::unexpected(e.to_string()))?;
    Ok(NewJob {
        body,
        ..NewJob::default()
    })
}
