//! The event envelope every consumer sees (webhooks, SQS targets, the events queue).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;
use crate::id::{EventId, SessionId};
use chrono::{DateTime, Utc};

/// Dotted event types.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum EventType {
    #[serde(rename = "session.status")]
    SessionStatus,
    #[serde(rename = "session.qr")]
    SessionQr,
    #[serde(rename = "session.pairing_code")]
    SessionPairingCode,
    #[serde(rename = "message.received")]
    MessageReceived,
    #[serde(rename = "message.queued")]
    MessageQueued,
    #[serde(rename = "message.sent")]
    MessageSent,
    #[serde(rename = "message.ack")]
    MessageAck,
    #[serde(rename = "message.failed")]
    MessageFailed,
    #[serde(rename = "message.revoked")]
    MessageRevoked,
    #[serde(rename = "message.edited")]
    MessageEdited,
    #[serde(rename = "message.reaction")]
    MessageReaction,
    #[serde(rename = "group.join")]
    GroupJoin,
    #[serde(rename = "group.leave")]
    GroupLeave,
    #[serde(rename = "group.update")]
    GroupUpdate,
    #[serde(rename = "call.received")]
    CallReceived,
    /// Operational: a webhook was disabled (e.g. its endpoint answered 410).
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
    /// A test event sent to one webhook on request (`POST /v1/webhooks/{id}/test`).
    #[serde(rename = "webhook.test")]
    WebhookTest,
    /// A send command from the SQS ingress queue was refused (malformed, unknown session,
    /// invalid); retrying it cannot help, so this event is its only answer.
    #[serde(rename = "ingress.rejected")]
    IngressRejected,
}

impl EventType {
    pub const ALL: [EventType; 18] = [
        Self::SessionStatus,
        Self::SessionQr,
        Self::SessionPairingCode,
        Self::MessageReceived,
        Self::MessageQueued,
        Self::MessageSent,
        Self::MessageAck,
        Self::MessageFailed,
        Self::MessageRevoked,
        Self::MessageEdited,
        Self::MessageReaction,
        Self::GroupJoin,
        Self::GroupLeave,
        Self::GroupUpdate,
        Self::CallReceived,
        Self::WebhookDisabled,
        Self::WebhookTest,
        Self::IngressRejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionStatus => "session.status",
            Self::SessionQr => "session.qr",
            Self::SessionPairingCode => "session.pairing_code",
            Self::MessageReceived => "message.received",
            Self::MessageQueued => "message.queued",
            Self::MessageSent => "message.sent",
            Self::MessageAck => "message.ack",
            Self::MessageFailed => "message.failed",
            Self::MessageRevoked => "message.revoked",
            Self::MessageEdited => "message.edited",
            Self::MessageReaction => "message.reaction",
            Self::GroupJoin => "group.join",
            Self::GroupLeave => "group.leave",
            Self::GroupUpdate => "group.update",
            Self::CallReceived => "call.received",
            Self::WebhookDisabled => "webhook.disabled",
            Self::WebhookTest => "webhook.test",
            Self::IngressRejected => "ingress.rejected",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == raw)
            .ok_or_else(|| Error::invalid("type", format!("unknown event type {raw:?}")))
    }
}

/// `{id, type, session_id, occurred_at, data, metadata}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub session_id: Option<SessionId>,
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
    /// The session's metadata, echoed so receivers can route without a lookup.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Event {
    pub fn new(
        kind: EventType,
        session_id: Option<SessionId>,
        occurred_at: DateTime<Utc>,
        data: serde_json::Value,
    ) -> Self {
        Self {
            id: EventId::generate(),
            kind,
            session_id,
            occurred_at,
            data,
            metadata: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_serialise_to_their_dotted_names() {
        for t in EventType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
            assert_eq!(EventType::parse(t.as_str()).unwrap(), t);
        }
    }

    #[test]
    fn every_event_type_is_listed_once() {
        let distinct: std::collections::BTreeSet<_> = EventType::ALL.into_iter().collect();
        assert_eq!(distinct.len(), EventType::ALL.len());
        assert!(EventType::ALL.contains(&EventType::WebhookTest));
    }
}
