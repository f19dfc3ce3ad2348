//! Webhook subscriptions as the API sees them: create (secret shown once), list, get, update,
//! delete, rotate the secret, send a test event, and read or redeliver deliveries.
//!
//! Access: managing needs `operator`, reading needs `viewer`. A key limited to some sessions
//! sees only webhooks of those sessions (others are `NotFound`, like sessions); webhooks for all
//! sessions need a key that is not limited. Every target URL passes the [`UrlGuard`] at
//! creation and on every change (the deliver worker checks it again at every attempt).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration as ChronoDuration;

use crate::apikey::Role;
use crate::auth::Principal;
use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::event::{Event, EventType};
use crate::id::{DeliveryId, SessionId, WebhookId};
use crate::page::{Page, PageRequest};
use crate::ports::{Backend, DeliveryStore, EventStore, JobQueue, NewJob, QueueName, WebhookStore};
use crate::services::AuditLog;
use crate::webhook::schedule::delivery_id_for;
use crate::webhook::{
    Delivery, DeliveryAttempt, DeliveryJob, DeliveryStatus, EventPattern, UrlGuard, Webhook,
    WebhookSecret, WebhookTarget, headers,
};

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_GRACE_HOURS: i64 = 24;
/// At most this many deliveries are re-queued by one range redelivery.
pub const MAX_RANGE_REDELIVERIES: u32 = 10_000;
const MAX_PATTERNS: usize = 32;

/// What a new subscription asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// One session, or all sessions when `None` (needs an unrestricted key).
    pub session_id: Option<SessionId>,
    pub target: WebhookTarget,
    pub events: Vec<EventPattern>,
    pub headers: BTreeMap<String, String>,
    pub hub_signature: bool,
    /// A caller-chosen secret; generated when absent.
    pub secret: Option<WebhookSecret>,
}

/// A partial update; absent fields stay as they are. The session filter cannot change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    pub target: Option<WebhookTarget>,
    pub events: Option<Vec<EventPattern>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub hub_signature: Option<bool>,
    /// `Some(true)` re-enables a webhook disabled by a 410 and clears the reason.
    pub active: Option<bool>,
}

#[derive(Clone)]
pub struct WebhookService {
    webhooks: Arc<dyn WebhookStore>,
    deliveries: Arc<dyn DeliveryStore>,
    events: Arc<dyn EventStore>,
    queue: Arc<dyn JobQueue>,
    guard: Arc<dyn UrlGuard>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
}

impl WebhookService {
    pub fn new(backend: &Backend, guard: Arc<dyn UrlGuard>) -> Self {
        Self {
            webhooks: backend.webhooks.clone(),
            deliveries: backend.deliveries.clone(),
            events: backend.events.clone(),
            queue: backend.queue.clone(),
            guard,
            audit: AuditLog::new(backend.audit.clone(), backend.clock.clone()),
            clock: backend.clock.clone(),
        }
    }

    /// Creates a subscription. The returned secret is the only time it is shown.
    #[tracing::instrument(skip_all, fields(session_id = ?new.session_id))]
    pub async fn create(
        &self,
        who: &Principal,
        new: NewWebhook,
    ) -> Result<(Webhook, WebhookSecret)> {
        who.require(Role::Operator)?;
        match &new.session_id {
            Some(s) => who.check_session(s)?,
            None if who.allowed_sessions.is_some() => {
                return Err(Error::forbidden(
                    "webhooks for all sessions need a key that is not limited to sessions",
                ));
            }
            None => {}
        }
        let events = validate_patterns(new.events)?;
        let headers = headers::validate(&new.headers)?;
        self.check_target(&new.target).await?;
        let secret = new.secret.unwrap_or_else(WebhookSecret::generate);
        let now = self.clock.now();
        let webhook = Webhook {
            id: WebhookId::generate(),
            session_id: new.session_id,
            target: new.target,
            events,
            secret: Some(secret.clone()),
            previous_secret: None,
            previous_secret_until: None,
            headers,
            hub_signature: new.hub_signature,
            active: true,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        };
        self.webhooks.create(&webhook).await?;
        self.record(who, "webhook.create", &webhook).await;
        Ok((webhook, secret))
    }

    /// Newest first. For a key limited to sessions, all-session webhooks and other sessions'
    /// webhooks are left out of each page (a page may then hold fewer than `limit` items).
    pub async fn list(&self, who: &Principal, page: &PageRequest) -> Result<Page<Webhook>> {
        who.require(Role::Viewer)?;
        let scope = match &who.allowed_sessions {
            Some(allowed) if allowed.len() == 1 => allowed.iter().next(),
            _ => None,
        };
        let mut found = self.webhooks.list(scope, page).await?;
        found.items.retain(|w| visible(who, w));
        Ok(found)
    }

    pub async fn get(&self, who: &Principal, id: &WebhookId) -> Result<Webhook> {
        who.require(Role::Viewer)?;
        self.visible_webhook(who, id).await
    }

    #[tracing::instrument(skip_all, fields(webhook_id = %id))]
    pub async fn update(
        &self,
        who: &Principal,
        id: &WebhookId,
        patch: WebhookPatch,
    ) -> Result<Webhook> {
        who.require(Role::Operator)?;
        let mut webhook = self.visible_webhook(who, id).await?;
        if let Some(target) = patch.target {
            self.check_target(&target).await?;
            webhook.target = target;
        }
        if let Some(events) = patch.events {
            webhook.events = validate_patterns(events)?;
        }
        if let Some(h) = patch.headers {
            webhook.headers = headers::validate(&h)?;
        }
        if let Some(hub) = patch.hub_signature {
            webhook.hub_signature = hub;
        }
        if let Some(active) = patch.active {
            webhook.active = active;
            if active {
                webhook.disabled_reason = None;
            } else if webhook.disabled_reason.is_none() {
                webhook.disabled_reason = Some("disabled through the API".into());
            }
        }
        webhook.updated_at = self.clock.now();
        self.webhooks.update(&webhook).await?;
        self.record(who, "webhook.update", &webhook).await;
        Ok(webhook)
    }

    #[tracing::instrument(skip_all, fields(webhook_id = %id))]
    pub async fn delete(&self, who: &Principal, id: &WebhookId) -> Result<()> {
        who.require(Role::Operator)?;
        let webhook = self.visible_webhook(who, id).await?;
        self.webhooks.delete(id).await?;
        self.record(who, "webhook.delete", &webhook).await;
        Ok(())
    }

    /// Replaces the signing secret. The old one keeps signing (alongside the new) for
    /// [`ROTATION_GRACE_HOURS`], so receivers can switch without dropping deliveries.
    #[tracing::instrument(skip_all, fields(webhook_id = %id))]
    pub async fn rotate_secret(
        &self,
        who: &Principal,
        id: &WebhookId,
    ) -> Result<(Webhook, WebhookSecret)> {
        who.require(Role::Operator)?;
        let mut webhook = self.visible_webhook(who, id).await?;
        let now = self.clock.now();
        let fresh = WebhookSecret::generate();
        webhook.previous_secret = webhook.secret.replace(fresh.clone());
        webhook.previous_secret_until = webhook
            .previous_secret
            .as_ref()
            .map(|_| now + ChronoDuration::hours(ROTATION_GRACE_HOURS));
        webhook.updated_at = now;
        self.webhooks.update(&webhook).await?;
        self.record(who, "webhook.rotate_secret", &webhook).await;
        Ok((webhook, fresh))
    }

    /// Sends a synthetic `webhook.test` event to this webhook only (filters are not applied), so
    /// receivers can tell it apart from real traffic.
    #[tracing::instrument(skip_all, fields(webhook_id = %id))]
    pub async fn test(&self, who: &Principal, id: &WebhookId) -> Result<Delivery> {
        who.require(Role::Operator)?;
        let webhook = self.visible_webhook(who, id).await?;
        if !webhook.active {
            return Err(Error::conflict(
                "the webhook is disabled; re-enable it before testing",
            ));
        }
        let now = self.clock.now();
        let data = serde_json::json!({"test": true, "webhook_id": webhook.id});
        let event = Event::new(
            EventType::WebhookTest,
            webhook.session_id.clone(),
            now,
            data,
        );
        self.events.put_if_absent(&event).await?;
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
        self.deliveries.create_if_absent(&delivery).await?;
        self.enqueue(DeliveryJob::scheduled(delivery.id.clone(), 1))
            .await?;
        self.record(who, "webhook.test", &webhook).await;
        Ok(delivery)
    }

    /// The webhook's deliveries, newest first, optionally of one status.
    pub async fn deliveries(
        &self,
        who: &Principal,
        id: &WebhookId,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> Result<Page<Delivery>> {
        who.require(Role::Viewer)?;
        self.visible_webhook(who, id).await?;
        self.deliveries.list(id, status, page).await
    }

    /// One delivery with every attempt made so far.
    pub async fn delivery(
        &self,
        who: &Principal,
        id: &WebhookId,
        delivery: &DeliveryId,
    ) -> Result<(Delivery, Vec<DeliveryAttempt>)> {
        who.require(Role::Viewer)?;
        let d = self.owned_delivery(who, id, delivery).await?;
        let attempts = self.deliveries.attempts(delivery).await?;
        Ok((d, attempts))
    }

    /// Attempts one delivery once more, now. If that attempt fails, the delivery goes on with
    /// what is left of its schedule; a dead delivery (out of attempts) is dead again.
    #[tracing::instrument(skip_all, fields(webhook_id = %id, delivery_id = %delivery))]
    pub async fn redeliver(
        &self,
        who: &Principal,
        id: &WebhookId,
        delivery: &DeliveryId,
    ) -> Result<Delivery> {
        who.require(Role::Operator)?;
        let webhook = self.active_webhook(who, id).await?;
        let mut d = self.owned_delivery(who, id, delivery).await?;
        d = self.requeue(d).await?;
        self.audit
            .record(
                Some(who),
                "webhook.redeliver",
                format!("delivery:{}", d.id),
                webhook.session_id,
                "ok",
            )
            .await;
        Ok(d)
    }

    /// Redelivers every dead or retrying delivery of the webhook created in `[since, until)`
    /// (up to [`MAX_RANGE_REDELIVERIES`]); returns how many were queued.
    #[tracing::instrument(skip_all, fields(webhook_id = %id))]
    pub async fn redeliver_range(
        &self,
        who: &Principal,
        id: &WebhookId,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<u32> {
        who.require(Role::Operator)?;
        if since >= until {
            return Err(Error::invalid("since", "must be before until"));
        }
        let webhook = self.active_webhook(who, id).await?;
        let mut queued = 0;
        for status in [DeliveryStatus::Dead, DeliveryStatus::Retrying] {
            let found = self
                .deliveries
                .in_range(id, status, since, until, MAX_RANGE_REDELIVERIES - queued)
                .await?;
            for d in found {
                self.requeue(d).await?;
                queued += 1;
            }
        }
        self.audit
            .record(
                Some(who),
                "webhook.redeliver_range",
                format!("webhook:{id}"),
                webhook.session_id,
                "ok",
            )
            .await;
        Ok(queued)
    }

    async fn requeue(&self, mut d: Delivery) -> Result<Delivery> {
        let now = self.clock.now();
        d.status = DeliveryStatus::Pending;
        d.next_attempt_at = Some(now);
        d.updated_at = now;
        self.deliveries.update(&d).await?;
        self.enqueue(DeliveryJob::manual(d.id.clone())).await?;
        Ok(d)
    }

    async fn enqueue(&self, job: DeliveryJob) -> Result<()> {
        let body = serde_json::to_vec(&job).map_err(|e| Error::unexpected(e.to_string()))?;
        let job = NewJob {
            body,
            ..NewJob::default()
        };
        match self.queue.send(&QueueName::Deliveries, job.clone()).await {
            Err(Error::NotFound { .. }) => {
                self.queue.ensure(&QueueName::Deliveries).await?;
                self.queue.send(&QueueName::Deliveries, job).await
            }
            other => other,
        }
    }

    async fn check_target(&self, target: &WebhookTarget) -> Result<()> {
        match target {
            WebhookTarget::Http { url } => self.guard.check(url).await,
            // Queue URLs are reached through the AWS SDK's own endpoint, not fetched.
            WebhookTarget::Sqs { .. } => Ok(()),
        }
    }

    async fn visible_webhook(&self, who: &Principal, id: &WebhookId) -> Result<Webhook> {
        let webhook = self.webhooks.get(id).await?;
        if visible(who, &webhook) {
            Ok(webhook)
        } else {
            Err(Error::NotFound {
                resource: "webhook",
            })
        }
    }

    async fn active_webhook(&self, who: &Principal, id: &WebhookId) -> Result<Webhook> {
        let webhook = self.visible_webhook(who, id).await?;
        if webhook.active {
            Ok(webhook)
        } else {
            Err(Error::conflict(
                "the webhook is disabled; re-enable it first",
            ))
        }
    }

    async fn owned_delivery(
        &self,
        who: &Principal,
        id: &WebhookId,
        delivery: &DeliveryId,
    ) -> Result<Delivery> {
        self.visible_webhook(who, id).await?;
        let d = self.deliveries.get(delivery).await?;
        if &d.webhook_id == id {
            Ok(d)
        } else {
            Err(Error::NotFound {
                resource: "delivery",
            })
        }
    }

    async fn record(&self, who: &Principal, action: &str, w: &Webhook) {
        self.audit
            .record(
                Some(who),
                action,
                format!("webhook:{}", w.id),
                w.session_id.clone(),
                "ok",
            )
            .await;
    }
}

/// Whether the caller may know the webhook exists.
fn visible(who: &Principal, w: &Webhook) -> bool {
    match &w.session_id {
        Some(s) => who.can_see(s),
        None => who.allowed_sessions.is_none(),
    }
}

fn validate_patterns(mut events: Vec<EventPattern>) -> Result<Vec<EventPattern>> {
    if events.is_empty() || events.len() > MAX_PATTERNS {
        return Err(Error::invalid(
            "events",
            format!("must list 1 to {MAX_PATTERNS} event filters"),
        ));
    }
    events.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    events.dedup();
    Ok(events)
}
