//! Accepting sends and reading messages.
//!
//! Accepting a send: validate, check the session, persist the message as `queued` with a
//! conditional write on the idempotency key, enqueue one job on the session's FIFO queue (group
//! = chat, dedup id = message id). A replay of the same key + same request returns the first
//! message; the same key with another request is `IdempotencyMismatch`. If the process died
//! between the write and the enqueue, the replay enqueues again; the dedup id keeps that from
//! sending twice. The message, its audit entry and its `message.queued` event are one atomic
//! write ([`MessageStore::accept`]): the event leaves through the store's outbox, so an accepted
//! send always has both, and the session is checked in that same write (no separate read).

use std::sync::Arc;

use crate::apikey::{Role, hash_hex};
use crate::audit::AuditEntry;
use crate::auth::Principal;
use crate::clock::Clock;
use crate::content::{MAX_MEDIA_BYTES, MediaRef};
use crate::error::{Error, Result};
use crate::event::{Event, EventType};
use crate::id::{MediaId, MessageId, SessionId};
use crate::message::{Direction, Message, MessageStatus, SendCommand, SendJob};
use crate::page::{Page, PageRequest};
use crate::ports::{
    Acceptance, BlobStore, Inserted, JobQueue, MessageFilter, MessageStore, NewJob, QueueName,
    SessionStore,
};

/// The result of accepting a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    pub message: Message,
    /// True when an earlier request with the same idempotency key produced this message.
    pub replayed: bool,
}

#[derive(Clone)]
pub struct MessageService {
    sessions: Arc<dyn SessionStore>,
    messages: Arc<dyn MessageStore>,
    queue: Arc<dyn JobQueue>,
    blobs: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
}

/// Where uploaded and inline media live in the blob store.
pub fn media_key(id: &MediaId) -> String {
    format!("media/{id}")
}

impl MessageService {
    pub fn new(
        sessions: Arc<dyn SessionStore>,
        messages: Arc<dyn MessageStore>,
        queue: Arc<dyn JobQueue>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            sessions,
            messages,
            queue,
            blobs,
            clock,
        }
    }

    #[tracing::instrument(skip_all, fields(session_id = %cmd.session_id, kind = cmd.content.kind().as_str()))]
    pub async fn send(&self, who: &Principal, cmd: SendCommand) -> Result<SendOutcome> {
        who.require(Role::Operator)?;
        who.check_session(&cmd.session_id)?;
        cmd.validate()?;

        let now = self.clock.now();
        let message = Message {
            id: MessageId::generate(),
            wa_id: None,
            session_id: cmd.session_id.clone(),
            chat_id: cmd.to.clone(),
            direction: Direction::Outbound,
            author: None,
            kind: cmd.content.kind(),
            content: cmd.content.clone(),
            reply_to: cmd.reply_to.clone(),
            mentions: cmd.mentions.clone(),
            status: MessageStatus::Queued,
            failure: None,
            idempotency_key: cmd.idempotency_key.as_ref().map(|k| k.as_str().to_owned()),
            request_fingerprint: Some(fingerprint(&cmd)),
            created_at: now,
            updated_at: now,
        };
        let event = Event::new(
            EventType::MessageQueued,
            Some(message.session_id.clone()),
            now,
            serde_json::to_value(&message)
                .map_err(|e| Error::unexpected(format!("message does not serialise: {e}")))?,
        );
        let audit = AuditEntry::new(
            Some(who),
            "message.send",
            format!("message:{}", message.id),
            Some(message.session_id.clone()),
            "ok",
            now,
        );
        // One write: the message, its audit entry and its event (through the store's outbox),
        // checked against the session's existence (404 for an unknown session, nothing written).
        let acceptance = Acceptance {
            message,
            audit,
            event,
        };
        let (message, replayed) = match self.messages.accept(&acceptance).await? {
            Inserted::Created => (acceptance.message, false),
            Inserted::Existing(existing) => {
                if existing.request_fingerprint != acceptance.message.request_fingerprint {
                    return Err(Error::IdempotencyMismatch);
                }
                (existing, true)
            }
        };
        // Enqueue on first acceptance, and again on a replay that finds the message still
        // queued (the first attempt may have died before enqueueing; dedup absorbs repeats).
        if !replayed || message.status == MessageStatus::Queued {
            self.enqueue(&message).await?;
        }
        Ok(SendOutcome { message, replayed })
    }

    async fn enqueue(&self, message: &Message) -> Result<()> {
        let job = SendJob {
            message_id: message.id.clone(),
            session_id: message.session_id.clone(),
            chat_id: message.chat_id.clone(),
        };
        let body = serde_json::to_vec(&job).map_err(|e| Error::unexpected(e.to_string()))?;
        let queue = QueueName::Send(message.session_id.clone());
        let new_job = || NewJob {
            body: body.clone(),
            group: Some(message.chat_id.to_string()),
            dedup_id: Some(message.id.to_string()),
            delay: std::time::Duration::ZERO,
        };
        match self.queue.send(&queue, new_job()).await {
            // A session created before its queue existed (or whose queue was lost): heal it.
            Err(Error::NotFound { .. }) => {
                self.queue.ensure(&queue).await?;
                self.queue.send(&queue, new_job()).await
            }
            other => other,
        }
    }

    /// Stores media bytes and returns the reference a send can carry.
    #[tracing::instrument(skip_all, fields(size = bytes.len(), mimetype))]
    pub async fn store_media(
        &self,
        who: &Principal,
        bytes: Vec<u8>,
        mimetype: &str,
        filename: Option<String>,
    ) -> Result<MediaRef> {
        who.require(Role::Operator)?;
        if bytes.is_empty() {
            return Err(Error::invalid("media", "is empty"));
        }
        if bytes.len() > MAX_MEDIA_BYTES {
            return Err(Error::TooLarge {
                message: format!("media is larger than {MAX_MEDIA_BYTES} bytes"),
            });
        }
        let mime_ok = mimetype.len() <= 127
            && mimetype
                .split_once('/')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
            && mimetype.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if !mime_ok {
            return Err(Error::invalid(
                "mimetype",
                "must be a type/subtype media type",
            ));
        }
        let id = MediaId::generate();
        let sha256 = hash_hex(&bytes);
        let meta = self.blobs.put(&media_key(&id), bytes, mimetype).await?;
        Ok(MediaRef {
            media_id: id,
            mimetype: mimetype.to_owned(),
            filename,
            size: meta.size,
            sha256,
        })
    }

    pub async fn get(
        &self,
        who: &Principal,
        session: &SessionId,
        id: &MessageId,
    ) -> Result<Message> {
        who.require(Role::Viewer)?;
        who.check_session(session)?;
        self.messages.get(session, id).await
    }

    pub async fn list(
        &self,
        who: &Principal,
        session: &SessionId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Page<Message>> {
        who.require(Role::Viewer)?;
        who.check_session(session)?;
        self.sessions.get(session).await?;
        self.messages.list(session, filter, page).await
    }
}

/// SHA-256 over the canonical JSON of what the send asks for (not the key or session). Media
/// counts by content hash, not by the id it was stored under, so re-sending the same inline
/// bytes with the same key is a replay.
fn fingerprint(cmd: &SendCommand) -> String {
    let mut content = serde_json::to_value(&cmd.content).unwrap_or_default();
    if let Some(media) = content.get_mut("media").and_then(|m| m.as_object_mut()) {
        media.remove("media_id");
    }
    let canonical = serde_json::json!({
        "to": cmd.to,
        "content": content,
        "reply_to": cmd.reply_to,
        "mentions": cmd.mentions,
    });
    hash_hex(canonical.to_string().as_bytes())
}
