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

/// A send the API accepted: the message and what is written with it, all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Acceptance {
    /// The outbound message, `queued`.
    pub message: Message,
    /// The send's audit entry.
    pub audit: AuditEntry,
    /// The `message.queued` event. The store publishes it through its outbox onto the events
    /// queue, with the session's metadata attached on the way (the caller leaves it empty).
    pub event: Event,
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Inserts the message. When it carries an idempotency key already used in the session,
    /// nothing is written and the existing message is returned. `Conflict` if the id exists.
    async fn insert(&self, message: &Message) -> Result<Inserted>;
    /// Stores an accepted send in one atomic write: the message (idempotent like
    /// [`insert`](Self::insert)), its audit entry, and its event in the store's outbox, from
    /// where it reaches the events queue even if the caller dies right after this returns.
    /// The session's existence is checked in the same write: `NotFound` (resource `session`)
    /// if it does not exist. On `Existing` nothing is written. `Conflict` if the id exists.
    async fn accept(&self, acceptance: &Acceptance) -> Result<Inserted>;
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
    /// Every active subscription that may want events of any of `sessions` or of no session
    /// (fan-out's lookup for a batch), each once: the union of [`active_for`](Self::active_for)
    /// over them. The default asks `active_for` once per session.
    async fn active_for_sessions(&self, sessions: &[SessionId]) -> Result<Vec<Webhook>> {
        let mut out: Vec<Webhook> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let lookups: Vec<Option<&SessionId>> = if sessions.is_empty() {
            vec![None]
        } else {
            sessions.iter().map(Some).collect()
        };
        for session in lookups {
            for w in self.active_for(session).await? {
                if seen.insert(w.id.clone()) {
                    out.push(w);
                }
            }
        }
        Ok(out)
    }
    /// The webhooks of `ids` that exist, each once, read fresh (strongly consistent): absent
    /// ids are simply missing from the result, in no particular order. The default reads them
    /// one at a time.
    async fn get_many(&self, ids: &[WebhookId]) -> Result<Vec<Webhook>> {
        let unique: std::collections::BTreeSet<&WebhookId> = ids.iter().collect();
        let mut out = Vec::with_capacity(unique.len());
        for id in unique {
            match self.get(id).await {
                Ok(w) => out.push(w),
                Err(crate::error::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
    /// Replaces the stored webhook. `NotFound` if absent.
    async fn update(&self, webhook: &Webhook) -> Result<()>;
    async fn delete(&self, id: &WebhookId) -> Result<()>;
}

/// One event of a fan-out batch and the deliveries it expands into (one per subscription that
/// wants it; each delivery's `event_id` is the event's).
#[derive(Debug, Clone, PartialEq)]
pub struct Expansion {
    pub event: Event,
    pub deliveries: Vec<Delivery>,
}

/// What [`DeliveryStore::create_expansions`] did with one [`Expansion`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpansionStored {
    /// The event was stored now (it was not before).
    pub event_new: bool,
    /// Per delivery of the expansion, in order: whether it was created now.
    pub created: Vec<bool>,
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Creates the delivery unless one exists for the same (webhook, event): fan-out is
    /// idempotent on event id. Returns whether it was created.
    async fn create_if_absent(&self, delivery: &Delivery) -> Result<bool>;
    /// Fan-out's write for a batch of events: for every expansion, what
    /// [`EventStore::put_if_absent`] does for its event and [`create_if_absent`](Self::create_if_absent)
    /// for each of its deliveries, in as few writes as the backend allows (events and
    /// deliveries live in one store in both backends). Returns one [`ExpansionStored`] per
    /// expansion, in order. `Conflict` as `create_if_absent`; on any error some items may have
    /// been written, and running the batch again completes it.
    async fn create_expansions(&self, batch: &[Expansion]) -> Result<Vec<ExpansionStored>>;
    async fn get(&self, id: &DeliveryId) -> Result<Delivery>;
    /// The deliveries of `ids` that exist, each once, read fresh (strongly consistent): absent
    /// ids are simply missing from the result, in no particular order. The default reads them
    /// one at a time.
    async fn get_many(&self, ids: &[DeliveryId]) -> Result<Vec<Delivery>> {
        let unique: std::collections::BTreeSet<&DeliveryId> = ids.iter().collect();
        let mut out = Vec::with_capacity(unique.len());
        for id in unique {
            match self.get(id).await {
                Ok(d) => out.push(d),
                Err(crate::error::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
    /// Replaces the stored delivery. `NotFound` if absent.
    async fn update(&self, delivery: &Delivery) -> Result<()>;
    /// Appends an attempt to the delivery log.
    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<()>;
    /// Appends `attempt` to the delivery log and replaces the stored delivery in one atomic
    /// write: both or neither. `NotFound` if the delivery is absent (nothing is written).
    async fn record_outcome(&self, attempt: &DeliveryAttempt, delivery: &Delivery) -> Result<()>;
    /// [`record_outcome`](Self::record_outcome) for several deliveries in as few writes as the
    /// backend allows: one result per outcome, in order (`NotFound` for an absent delivery,
    /// with nothing written for it). The default records them one at a time.
    async fn record_outcomes(&self, outcomes: &[(DeliveryAttempt, Delivery)]) -> Vec<Result<()>> {
        let mut out = Vec::with_capacity(outcomes.len());
        for (attempt, delivery) in outcomes {
            out.push(self.record_outcome(attempt, delivery).await);
        }
        out
    }
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
