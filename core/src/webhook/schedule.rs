//! When deliveries are attempted, what a delivery job carries, and how delivery ids are derived.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Webhook, WebhookSecret};
use crate::event::Event;
use crate::id::{DeliveryId, EventId, WebhookId};

/// Attempt `n` (1-based) waits `STANDARD[n - 1]` after the previous failure; after the last
/// attempt fails the delivery is dead-lettered.
pub const STANDARD_DELAYS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// The retry schedule, optionally compressed by a factor so tests run the real schedule in
/// seconds (`scaled(0.001)` turns 10 h into 36 s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySchedule {
    /// Multiplies every delay, including `Retry-After` values.
    factor: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::standard()
    }
}

impl RetrySchedule {
    pub fn standard() -> Self {
        Self { factor: 1.0 }
    }

    /// The standard schedule with every delay multiplied by `factor` (clamped to `0..=1`).
    pub fn scaled(factor: f64) -> Self {
        Self {
            factor: if factor.is_finite() {
                factor.clamp(0.0, 1.0)
            } else {
                1.0
            },
        }
    }

    pub fn max_attempts(&self) -> u32 {
        STANDARD_DELAYS.len() as u32
    }

    /// The (scaled) wait before attempt `attempt` (1-based); `None` past the last attempt.
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        let i = usize::try_from(attempt.checked_sub(1)?).ok()?;
        STANDARD_DELAYS.get(i).map(|d| self.scale(*d))
    }

    /// Applies the factor to any wait (a receiver's `Retry-After`).
    pub fn scale(&self, d: Duration) -> Duration {
        d.mul_f64(self.factor)
    }
}

/// The body of a job on `QueueName::Deliveries`: which delivery to attempt, and what the worker
/// would otherwise read back for it.
///
/// Jobs from fan-out and retries carry the subscription's id and the event itself, so a batch
/// of jobs costs the worker one read of its deliveries and one of its webhooks, and no read of
/// the events. Both are optional: jobs queued by older versions, by the webhook test and by
/// redeliveries through the API carry neither, and the worker reads what is missing. A job
/// never carries a signing secret (the worker reads the subscription fresh for every batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub delivery_id: DeliveryId,
    /// A redelivery asked for through the API: one attempt now, whatever the schedule says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
    /// The attempt this job is for (scheduled jobs). A job whose attempt has already been made
    /// is stale (a duplicate) and is dropped, so duplicates never multiply along the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The delivery's subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<WebhookId>,
    /// The event to deliver (the worker checks it is the delivery's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
}

impl DeliveryJob {
    /// The job for attempt `attempt` of a delivery on its schedule.
    pub fn scheduled(delivery_id: DeliveryId, attempt: u32) -> Self {
        Self {
            delivery_id,
            manual: false,
            attempt: Some(attempt),
            webhook_id: None,
            event: None,
        }
    }

    /// The same job carrying the delivery's subscription id and event, so the worker need not
    /// read them back.
    pub fn carrying(mut self, webhook_id: WebhookId, event: Event) -> Self {
        self.webhook_id = Some(webhook_id);
        self.event = Some(event);
        self
    }

    /// A redelivery asked for through the API.
    pub fn manual(delivery_id: DeliveryId) -> Self {
        Self {
            delivery_id,
            manual: true,
            attempt: None,
            webhook_id: None,
            event: None,
        }
    }
}

/// The delivery id of `event` to `webhook`, the same every time it is computed: a fan-out that
/// runs twice for one event finds the delivery it made the first time (and can re-enqueue its
/// job if the first run died before enqueueing). The ULID's time part is the event's, so
/// deliveries sort like their events.
pub fn delivery_id_for(webhook: &WebhookId, event: &EventId) -> DeliveryId {
    let millis = event
        .as_str()
        .strip_prefix("evt_")
        .and_then(|u| ulid::Ulid::from_string(u).ok())
        .map_or(0, |u| u.timestamp_ms());
    let hash = Sha256::new()
        .chain_update(webhook.as_str())
        .chain_update(b"|")
        .chain_update(event.as_str())
        .finalize();
    let mut random = [0u8; 16];
    random.copy_from_slice(&hash[..16]);
    let ulid = ulid::Ulid::from_parts(millis, u128::from_be_bytes(random));
    DeliveryId::parse(&format!("dlv_{ulid}"))
        .unwrap_or_else(|_| unreachable!("a ULID always parses"))
}

impl Webhook {
    /// The secrets that sign at `now`: the current one, plus the previous one until its grace
    /// period ends.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&WebhookSecret> {
        let previous = self
            .previous_secret
            .as_ref()
            .filter(|_| self.previous_secret_until.is_some_and(|until| until > now));
        self.secret.iter().chain(previous).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_eight_attempts_then_nothing() {
        let s = RetrySchedule::standard();
        assert_eq!(s.delay_before(1), Some(Duration::ZERO));
        assert_eq!(s.delay_before(2), Some(Duration::from_secs(5)));
        assert_eq!(s.delay_before(8), Some(Duration::from_secs(36_000)));
        assert_eq!(s.delay_before(9), None);
        assert_eq!(s.delay_before(0), None);
        assert_eq!(
            RetrySchedule::scaled(0.001).delay_before(7),
            Some(Duration::from_secs(36))
        );
    }

    #[test]
    fn delivery_ids_are_stable_per_webhook_and_event() {
        let (w1, w2, e) = (
            WebhookId::generate(),
            WebhookId::generate(),
            EventId::generate(),
        );
        assert_eq!(delivery_id_for(&w1, &e), delivery_id_for(&w1, &e));
        assert_ne!(delivery_id_for(&w1, &e), delivery_id_for(&w2, &e));
    }

    #[test]
    fn a_carrying_job_round_trips_with_its_event_and_never_a_secret() {
        let event = Event::new(
            crate::event::EventType::MessageReceived,
            None,
            Utc::now(),
            serde_json::json!({"body": "hi"}),
        );
        let webhook = WebhookId::generate();
        let job = DeliveryJob::scheduled(delivery_id_for(&webhook, &event.id), 1)
            .carrying(webhook.clone(), event.clone());
        let body = serde_json::to_vec(&job).unwrap();
        let back: DeliveryJob = serde_json::from_slice(&body).unwrap();
        assert_eq!(back, job);
        assert_eq!(back.event.as_ref(), Some(&event));
        assert_eq!(back.webhook_id.as_ref(), Some(&webhook));
        assert!(!String::from_utf8_lossy(&body).contains("whsec_"));
    }

    #[test]
    fn delivery_jobs_round_trip_and_default_to_scheduled() {
        let job: DeliveryJob =
            serde_json::from_str(r#"{"delivery_id":"dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV"}"#).unwrap();
        assert!(!job.manual);
        assert_eq!(
            serde_json::from_slice::<DeliveryJob>(&serde_json::to_vec(&job).unwrap()).unwrap(),
            job
        );
    }
}
