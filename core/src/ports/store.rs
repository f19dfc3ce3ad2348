//! Store ports, one per aggregate. Every method documents the error variants it returns, since
//! callers decide on them (`NotFound` -> 404, `Conflict` -> retry or 409, `StaleEpoch` -> stop).

use async_trait::async_trait;

use crate::apikey::ApiKey;
use crate::audit::{AuditEntry, AuditFilter};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::event::Event;
use crate::id::{ApiKeyId, DeliveryId, EventId, MessageId, SessionId, WebhookId};
use crate::jid::{ChatId, WaMessageId};
use crate::message::{Direction, Message, MessageStatus, StatusUpdate};
use crate::page::{Page, PageRequest};
use crate::session::{RuntimeUpdate, Session, SessionStatus};
use crate::webhook::{Delivery, DeliveryAttempt, DeliveryStatus, Webhook};

/// Restricts a session listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only these sessions (the caller's key allowlist).
    pub only: Option<std::collections::BTreeSet<SessionId>>,
    pub status: Option<SessionStatus>,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// `Conflict` if the id exists.
    async fn create(&self, session: &Session) -> Result<()>;
    /// `NotFound` if absent.
    async fn get(&self, id: &SessionId) -> Result<Session>;
    /// Newest first.
    async fn list(&self, filter: &SessionFilter, page: &PageRequest) -> Result<Page<Session>>;
    /// Replaces the user-controlled fields (name, desired, config) if `session.version` is still
    /// the stored version; returns the stored session with the version incremented.
    /// `Conflict` on a version mismatch, `NotFound` if absent.
    async fn update(&self, session: &Session) -> Result<Session>;
    /// `NotFound` if absent.
    async fn delete(&self, id: &SessionId) -> Result<()>;

    /// Ids of sessions that want to run and have no live lease at `now`, oldest lease first.
    async fn claimable(&self, now: Timestamp, limit: u32) -> Result<Vec<SessionId>>;
    /// Takes the lease for `owner` until `until`, incrementing the epoch. `Conflict` if another
    /// owner holds a live lease or the session is not desired running; `NotFound` if absent.
    async fn claim(
        &self,
        id: &SessionId,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Session>;
    /// Extends the lease. `StaleEpoch` if `epoch` is no longer current or the lease was lost.
    async fn renew(&self, id: &SessionId, owner: &str, epoch: u64, until: Timestamp) -> Result<()>;
    /// Gives the lease up (epoch is kept). `StaleEpoch` if not held with that epoch.
    async fn release(&self, id: &SessionId, owner: &str, epoch: u64) -> Result<()>;
    /// Writes runner-reported state. `StaleEpoch` unless `epoch` is the current lease epoch.
    async fn update_runtime(
        &self,
        id: &SessionId,
        epoch: u64,
        update: &RuntimeUpdate,
    ) -> Result<Session>;
}

/// Outcome of an idempotent insert.
// Returned once per insert and matched at once; boxing the message would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// A message with the same (session, idempotency key) exists; here it is.
    Existing(Message),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    pub chat_id: Option<ChatId>,
    pub direction: Option<Direction>,
    pub status: Option<MessageStatus>,
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Inserts the message. When it carries an idempotency key already used in the session,
    /// nothing is written and the existing message is returned. `Conflict` if the id exists.
    async fn insert(&self, message: &Message) -> Result<Inserted>;
    /// `NotFound` if absent (or in another session).
    async fn get(&self, session: &SessionId, id: &MessageId) -> Result<Message>;
    /// `NotFound` if no message of the session has that WhatsApp id.
    async fn get_by_wa_id(&self, session: &SessionId, wa_id: &WaMessageId) -> Result<Message>;
    /// Newest first.
    async fn list(
        &self,
        session: &SessionId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Page<Message>>;
    /// Applies a status change if it is progress (see `MessageStatus::can_become`); otherwise
    /// leaves the message as it is. Returns the stored message either way. `NotFound` if absent.
    async fn update_status(
        &self,
        session: &SessionId,
        id: &MessageId,
        update: &StatusUpdate,
    ) -> Result<Message>;
    /// Removes every message of a session (session deletion).
    async fn delete_session(&self, session: &SessionId) -> Result<u64>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// `Conflict` if the id or hash exists.
    async fn create(&self, key: &ApiKey) -> Result<()>;
    async fn get(&self, id: &ApiKeyId) -> Result<ApiKey>;
    /// The key whose secret hashes to `hash`, if any (revoked and expired keys included).
    async fn find_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;
    /// Newest first.
    async fn list(&self, page: &PageRequest) -> Result<Page<ApiKey>>;
    /// Sets `revoked_at` (first revocation wins). `NotFound` if absent.
    async fn revoke(&self, id: &ApiKeyId, at: Timestamp) -> Result<ApiKey>;
    /// Records use; best effort, may be coarse.
    async fn touch(&self, id: &ApiKeyId, at: Timestamp) -> Result<()>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append(&self, entry: &AuditEntry) -> Result<()>;
    /// Newest first.
    async fn list(&self, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>>;
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create(&self, webhook: &Webhook) -> Result<()>;
    async fn get(&self, id: &WebhookId) -> Result<Webhook>;
    /// Newest first; `session` restricts to subscriptions of that session plus all-session ones.
    async fn list(&self, session: Option<&SessionId>, page: &PageRequest) -> Result<Page<Webhook>>;
    /// Every active subscription that may want events of `session` (fan-out's lookup).
    async fn active_for(&self, session: Option<&SessionId>) -> Result<Vec<Webhook>>;
    /// Replaces the stored webhook. `NotFound` if absent.
    async fn update(&self, webhook: &Webhook) -> Result<()>;
    async fn delete(&self, id: &WebhookId) -> Result<()>;
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Creates the delivery unless one exists for the same (webhook, event): fan-out is
    /// idempotent on event id. Returns whether it was created.
    async fn create_if_absent(&self, delivery: &Delivery) -> Result<bool>;
    async fn get(&self, id: &DeliveryId) -> Result<Delivery>;
    /// Replaces the stored delivery. `NotFound` if absent.
    async fn update(&self, delivery: &Delivery) -> Result<()>;
    /// Appends an attempt to the delivery log.
    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<()>;
    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<DeliveryAttempt>>;
    /// Newest first, optionally only one status.
    async fn list(
        &self,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> Result<Page<Delivery>>;
    /// Deliveries of a webhook in `status` created in `[since, until)`.
    async fn in_range(
        &self,
        webhook: &WebhookId,
        status: DeliveryStatus,
        since: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the event unless its id exists; returns whether it was new.
    async fn put_if_absent(&self, event: &Event) -> Result<bool>;
    async fn get(&self, id: &EventId) -> Result<Event>;
}
