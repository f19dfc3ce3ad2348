//! Engine events -> session state (fenced runtime writes), message records and published
//! events. Status changes go to the store first and are published after, so a consumer that
//! reacts to an event and reads the session sees at least that state.

use openwa_core::Error as CoreError;
use openwa_core::apikey::hash_hex;
use openwa_core::content::{Content, MediaRef, MessageType};
use openwa_core::event::EventType;
use openwa_core::id::{MediaId, MessageId};
use openwa_core::message::{Direction, Failure, Message, MessageStatus, StatusUpdate};
use openwa_core::services::messages::media_key;
use openwa_core::session::{PairingCode, RuntimeUpdate, SessionStatus};
use serde_json::json;

use super::{Exit, SessionCtx};
use crate::engine::{EngineEvent, EngineSession, GroupChange, InboundMessage};

/// What the supervisor does after an event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The session is logged in and usable: snapshot now.
    LoggedIn,
}

/// The reason an event gives for the stream ending, if it is such an event.
pub(crate) fn end_reason(event: &EngineEvent) -> Option<String> {
    match event {
        EngineEvent::Disconnected { reason } => Some(format!("disconnected: {reason}")),
        EngineEvent::Failed { error } => Some(format!("engine failed: {error}")),
        _ => None,
    }
}

pub(crate) async fn handle(
    ctx: &SessionCtx,
    engine: &dyn EngineSession,
    event: EngineEvent,
) -> Result<Flow, Exit> {
    let status = |s| RuntimeUpdate {
        status: Some(s),
        ..Default::default()
    };
    match event {
        EngineEvent::Qr {
            payload,
            expires_at,
        } => {
            let qr = openwa_core::session::Qr {
                payload,
                expires_at,
            };
            let update = RuntimeUpdate {
                qr: Some(Some(qr.clone())),
                ..status(SessionStatus::Qr)
            };
            if *ctx.status.borrow() == SessionStatus::Qr {
                ctx.write_runtime(&update).await?;
            } else {
                ctx.set_status(update, json!({})).await?;
            }
            ctx.publisher
                .publish(
                    EventType::SessionQr,
                    json!({ "qr": qr.payload, "expires_at": qr.expires_at }),
                )
                .await;
        }
        EngineEvent::PairingCode { code } => {
            // A refreshed code for the phone the user asked about (see `control`).
            let pairing = ctx.pairing_phone().map(|phone| PairingCode {
                code: code.clone(),
                phone,
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(3),
            });
            let update = RuntimeUpdate {
                pairing_code: pairing.clone().map(Some),
                ..status(SessionStatus::Pairing)
            };
            ctx.set_status(update, json!({})).await?;
            ctx.publisher
                .publish(
                    EventType::SessionPairingCode,
                    json!({ "code": code, "phone": pairing.as_ref().map(|p| &p.phone), "expires_at": pairing.as_ref().map(|p| p.expires_at) }),
                )
                .await;
        }
        EngineEvent::Authenticated => {
            let update = RuntimeUpdate {
                qr: Some(None),
                pairing_code: Some(None),
                ..status(SessionStatus::Starting)
            };
            ctx.set_status(update, json!({ "authenticated": true }))
                .await?;
        }
        EngineEvent::Ready { me } => {
            let update = RuntimeUpdate {
                me: Some(Some(me)),
                qr: Some(None),
                pairing_code: Some(None),
                last_error: Some(None),
                ..status(SessionStatus::Connected)
            };
            ctx.set_status(update, json!({})).await?;
            return Ok(Flow::LoggedIn);
        }
        EngineEvent::State { state } => {
            tracing::debug!(%state, "WhatsApp Web state");
            if state == "CONFLICT" && !ctx.host.config.takeover_on_conflict {
                let update = RuntimeUpdate {
                    last_error: Some(Some("the account was opened on another computer".into())),
                    ..status(SessionStatus::Disconnected)
                };
                ctx.set_status(update, json!({ "state": state })).await?;
            }
        }
        EngineEvent::Message(inbound) => on_message(ctx, engine, inbound).await?,
        EngineEvent::Ack { wa_id, level } => on_ack(ctx, &wa_id, level).await?,
        EngineEvent::Revoked { wa_id } => {
            let message_id = known_id(ctx, &wa_id).await;
            ctx.publisher
                .publish(
                    EventType::MessageRevoked,
                    json!({ "wa_id": wa_id, "message_id": message_id }),
                )
                .await;
        }
        EngineEvent::Edited { wa_id, body } => {
            let message_id = known_id(ctx, &wa_id).await;
            let data = json!({ "wa_id": wa_id, "message_id": message_id, "body": body });
            ctx.publisher.publish(EventType::MessageEdited, data).await;
        }
        EngineEvent::Reaction {
            target,
            sender,
            emoji,
        } => {
            let message_id = known_id(ctx, &target).await;
            let data = json!({ "target": target, "message_id": message_id, "sender": sender, "emoji": emoji });
            ctx.publisher
                .publish(EventType::MessageReaction, data)
                .await;
        }
        EngineEvent::Group { chat, change } => {
            let (kind, data) = match change {
                GroupChange::Join { participants, by } => (
                    EventType::GroupJoin,
                    json!({ "participants": participants, "by": by }),
                ),
                GroupChange::Leave { participants, by } => (
                    EventType::GroupLeave,
                    json!({ "participants": participants, "by": by }),
                ),
                GroupChange::Update { field, value, by } => (
                    EventType::GroupUpdate,
                    json!({ "field": field, "value": value, "by": by }),
                ),
            };
            let mut data = data;
            data["chat_id"] = json!(chat);
            ctx.publisher.publish(kind, data).await;
        }
        EngineEvent::Call { from, video } => {
            ctx.publisher
                .publish(
                    EventType::CallReceived,
                    json!({ "from": from, "video": video }),
                )
                .await;
        }
        EngineEvent::Disconnected { reason } => {
            let update = RuntimeUpdate {
                last_error: Some(Some(reason)),
                ..status(SessionStatus::Disconnected)
            };
            ctx.set_status(update, json!({})).await?;
        }
        EngineEvent::LoggedOut => {
            let update = RuntimeUpdate {
                me: Some(None),
                qr: Some(None),
                pairing_code: Some(None),
                last_error: Some(Some("logged out".into())),
                ..status(SessionStatus::LoggedOut)
            };
            ctx.set_status(update, json!({})).await?;
            return Err(Exit::LoggedOut);
        }
        EngineEvent::Failed { error } => {
            let update = RuntimeUpdate {
                last_error: Some(Some(error.to_string())),
                ..status(SessionStatus::Failed)
            };
            ctx.set_status(update, json!({ "error_code": error.code() }))
                .await?;
        }
    }
    Ok(Flow::Continue)
}

/// Our gateway id for a WhatsApp id, when the message is in the store.
async fn known_id(ctx: &SessionCtx, wa_id: &openwa_core::jid::WaMessageId) -> Option<MessageId> {
    ctx.host
        .backend
        .messages
        .get_by_wa_id(&ctx.id, wa_id)
        .await
        .ok()
        .map(|m| m.id)
}

/// Moves an outbound message forward by its ack (never back; the store enforces it).
async fn on_ack(
    ctx: &SessionCtx,
    wa_id: &openwa_core::jid::WaMessageId,
    level: i8,
) -> Result<(), Exit> {
    let Some(next) = MessageStatus::from_ack(level) else {
        return Ok(());
    };
    let messages = &ctx.host.backend.messages;
    // A recent send of this run is matched by its key: its `sent` write may not be visible yet.
    let recent = ctx.recent_send(wa_id.inner());
    let lookup = match &recent {
        Some(id) => messages.get(&ctx.id, id).await,
        None => messages.get_by_wa_id(&ctx.id, wa_id).await,
    };
    let message = match lookup {
        Ok(m) => m,
        // Not sent through the gateway (e.g. from the phone): nothing to update.
        Err(CoreError::NotFound { .. }) => return Ok(()),
        Err(error) => {
            tracing::warn!(%error, %wa_id, "ack not applied");
            return Ok(());
        }
    };
    if !message.status.can_become(next) {
        return Ok(());
    }
    if !ctx.holds_lease() {
        return Err(Exit::Lost);
    }
    let failure = (next == MessageStatus::Failed).then(|| Failure {
        code: "ack_error".into(),
        message: "WhatsApp reported an error".into(),
    });
    let update = StatusUpdate {
        status: next,
        // Still `sending` (the ack overtook the `sent` write): record the WhatsApp id now,
        // since the `sent` update will not apply after this one.
        wa_id: (message.wa_id.is_none()).then(|| wa_id.clone()),
        failure,
        at: ctx.host.backend.clock.now(),
    };
    match messages.update_status(&ctx.id, &message.id, &update).await {
        Ok(stored) => {
            let kind = if next == MessageStatus::Failed {
                EventType::MessageFailed
            } else {
                EventType::MessageAck
            };
            let data = json!({ "message_id": stored.id, "wa_id": wa_id, "status": stored.status, "ack": level, "chat_id": stored.chat_id });
            ctx.publisher.publish(kind, data).await;
        }
        Err(error) => tracing::warn!(%error, %wa_id, "ack not stored"),
    }
    Ok(())
}

/// Stores an inbound message (media into the blob store) and publishes `message.received`.
async fn on_message(
    ctx: &SessionCtx,
    engine: &dyn EngineSession,
    inbound: InboundMessage,
) -> Result<(), Exit> {
    let backend = &ctx.host.backend;
    // Our own sends come back through the stream too; they are recorded already.
    if backend
        .messages
        .get_by_wa_id(&ctx.id, &inbound.wa_id)
        .await
        .is_ok()
    {
        return Ok(());
    }
    if !ctx.holds_lease() {
        return Err(Exit::Lost);
    }
    let media = match &inbound.media {
        Some(payload) if inbound.kind.is_media() => {
            let id = MediaId::generate();
            let size = payload.bytes.len() as u64;
            let sha256 = hash_hex(&payload.bytes);
            match backend
                .blobs
                .put(&media_key(&id), payload.bytes.clone(), &payload.mimetype)
                .await
            {
                Ok(_) => Some(MediaRef {
                    media_id: id,
                    mimetype: payload.mimetype.clone(),
                    filename: payload.filename.clone(),
                    size,
                    sha256,
                }),
                Err(error) => {
                    tracing::warn!(%error, wa_id = %inbound.wa_id, "inbound media not stored");
                    None
                }
            }
        }
        _ => None,
    };
    let now = backend.clock.now();
    let message = Message {
        id: MessageId::generate(),
        wa_id: Some(inbound.wa_id.clone()),
        session_id: ctx.id.clone(),
        chat_id: inbound.chat.clone(),
        direction: if inbound.from_me {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        author: inbound.author.clone(),
        kind: inbound.kind,
        content: content_of(&inbound, media),
        reply_to: inbound.quoted.clone(),
        mentions: inbound.mentions.clone(),
        status: if inbound.from_me {
            MessageStatus::Sent
        } else {
            MessageStatus::Received
        },
        failure: None,
        idempotency_key: None,
        request_fingerprint: None,
        created_at: inbound.timestamp,
        updated_at: now,
    };
    if let Err(error) = backend.messages.insert(&message).await {
        tracing::warn!(%error, wa_id = %inbound.wa_id, "inbound message not stored");
    }
    let mut data = serde_json::to_value(&message).unwrap_or_default();
    data["from_me"] = json!(inbound.from_me);
    data["is_forwarded"] = json!(inbound.is_forwarded);
    ctx.publisher
        .publish(EventType::MessageReceived, data)
        .await;
    if ctx.config().mark_read
        && !inbound.from_me
        && let Err(error) = engine.mark_read(&inbound.chat).await
    {
        tracing::debug!(%error, "mark read failed");
    }
    Ok(())
}

/// The stored content for an inbound message. Kinds the record cannot express fully (or media
/// whose bytes did not arrive) keep their text; `kind` still says what it was.
fn content_of(m: &InboundMessage, media: Option<MediaRef>) -> Content {
    let caption = m
        .caption
        .clone()
        .or_else(|| m.body.clone().filter(|_| m.kind.is_media()));
    let text = || Content::Text {
        body: m
            .body
            .clone()
            .or_else(|| m.caption.clone())
            .unwrap_or_default(),
        link_preview: false,
    };
    match (m.kind, media) {
        (MessageType::Image, Some(media)) => Content::Image { media, caption },
        (MessageType::Video, Some(media)) => Content::Video { media, caption },
        (MessageType::Document, Some(media)) => Content::Document { media, caption },
        (MessageType::Audio, Some(media)) => Content::Audio { media },
        (MessageType::Voice, Some(media)) => Content::Voice { media },
        (MessageType::Sticker, Some(media)) => Content::Sticker { media },
        (MessageType::Location, _) => match &m.location {
            Some((latitude, longitude, name)) => Content::Location {
                latitude: *latitude,
                longitude: *longitude,
                name: name.clone(),
                address: None,
            },
            None => text(),
        },
        _ => text(),
    }
}
