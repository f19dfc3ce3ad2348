//! The per-event step: store the event once, then one delivery (and one delivery job) per
//! active subscription that wants it.
//!
//! Idempotent on event id. The event is stored with `put_if_absent`; each delivery id is derived
//! from (webhook, event) and created with `create_if_absent`, so a redelivered event finds the
//! deliveries of its first run instead of making new ones. A redelivered event (received
//! before) re-enqueues the jobs of deliveries that have not been attempted yet: the first run
//! may have died between creating a delivery and enqueueing its job. That can queue a job twice,
//! which the deliver worker tolerates (at-least-once); a duplicate copy received for the first
//! time queues nothing.

use std::sync::Arc;

use openwa_core::error::{Error, Result};
use openwa_core::event::Event;
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
    #[tracing::instrument(skip_all, fields(event_id = %event.id, event_type = event.kind.as_str()))]
    pub async fn expand_received(&self, event: Event, received_before: bool) -> Result<Expanded> {
        let seen_before = !self.events.put_if_absent(&event).await?;
        let mut out = Expanded {
            seen_before,
            ..Expanded::default()
        };
        let session = event.session_id.as_ref();
        let subscribers: Vec<Webhook> = self
            .webhooks
            .active_for(session)
            .await?
            .into_iter()
            .filter(|w| w.wants(session, event.kind))
            .collect();
        for webhook in subscribers {
            let now = self.clock.now();
            let delivery = Delivery {
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
            };
            let enqueue = if self.deliveries.create_if_absent(&delivery).await? {
                out.created += 1;
                true
            } else {
                // Only a delivery never attempted may have lost its job; others have a
                // schedule of their own.
                seen_before
                    && received_before
                    && self
                        .deliveries
                        .get(&delivery.id)
                        .await
                        .is_ok_and(|d| d.status == DeliveryStatus::Pending && d.attempts == 0)
            };
            if enqueue {
                self.enqueue(&delivery).await?;
                out.enqueued += 1;
            }
        }
        tracing::debug!(
            created = out.created,
            enqueued = out.enqueued,
            seen_before,
            "event expanded"
        );
        Ok(out)
    }

    async fn enqueue(&self, delivery: &Delivery) -> Result<()> {
        let job = DeliveryJob::scheduled(delivery.id.clone(), 1);
        let body = serde_json::to_vec(&job).map_err(|e| Error::unexpected(e.to_string()))?;
        self.queue
            .send(
                &QueueName::Deliveries,
                NewJob {
                    body,
                    ..NewJob::default()
                },
            )
            .await
    }
}
