//! The Message record and the send command/job that produce outbound ones.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::content::{Content, MessageType};
use crate::error::Error;
use crate::id::{MessageId, SessionId};
use crate::jid::{ChatId, WaMessageId};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// Delivery status. Outbound messages move forward through this order and never back
/// (an ack for "delivered" that arrives after "read" is ignored); `failed` is terminal.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
    /// Inbound messages are simply `received`.
    Received,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 8] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Read,
        Self::Played,
        Self::Failed,
        Self::Received,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
            Self::Received => "received",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| Error::invalid("status", format!("unknown message status {raw:?}")))
    }

    /// Whether moving from `self` to `next` is progress. Terminal states accept nothing.
    pub fn can_become(self, next: MessageStatus) -> bool {
        use MessageStatus::*;
        match (self, next) {
            (Failed | Received | Played, _) => false,
            (_, Received) => false,
            (Queued | Sending, Failed) => true,
            (_, Failed) => false,
            (a, b) => b > a,
        }
    }

    /// Status for a WhatsApp ack level (1 server, 2 device, 3 read, 4 played).
    pub fn from_ack(level: i8) -> Option<Self> {
        match level {
            1 => Some(Self::Sent),
            2 => Some(Self::Delivered),
            3 => Some(Self::Read),
            4 => Some(Self::Played),
            -1 => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Why a send failed, as a stable code plus a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Failure {
    /// e.g. `session_logged_out`, `recipient_not_on_whatsapp`, `media_unavailable`, `engine_error`.
    pub code: String,
    pub message: String,
}

/// A message the gateway knows about, in either direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: MessageId,
    /// WhatsApp's id, once known.
    pub wa_id: Option<WaMessageId>,
    pub session_id: SessionId,
    pub chat_id: ChatId,
    pub direction: Direction,
    /// Group messages: who wrote it (inbound).
    pub author: Option<ChatId>,
    #[serde(rename = "type")]
    pub kind: MessageType,
    pub content: Content,
    pub reply_to: Option<WaMessageId>,
    pub mentions: Vec<ChatId>,
    pub status: MessageStatus,
    pub failure: Option<Failure>,
    /// Client-supplied key that makes a send idempotent.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the canonical request, to tell a replay from a key reused for another request.
    #[serde(skip)]
    pub request_fingerprint: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated request to send one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendCommand {
    pub session_id: SessionId,
    pub to: ChatId,
    pub content: Content,
    pub reply_to: Option<WaMessageId>,
    pub mentions: Vec<ChatId>,
    pub idempotency_key: Option<IdempotencyKey>,
}

impl SendCommand {
    pub const MAX_MENTIONS: usize = 256;

    pub fn validate(&self) -> Result<(), Error> {
        self.content.validate()?;
        if self.mentions.len() > Self::MAX_MENTIONS {
            return Err(Error::invalid("mentions", "at most 256 mentions"));
        }
        if self.content.kind() == MessageType::Reaction
            && (self.reply_to.is_some() || !self.mentions.is_empty())
        {
            return Err(Error::invalid(
                "reply_to",
                "a reaction cannot reply or mention",
            ));
        }
        Ok(())
    }
}

/// The client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What goes on a session's send queue. The runner loads the message by id, so the job stays
/// small and the store is the one truth about content and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendJob {
    pub message_id: MessageId,
    pub session_id: SessionId,
    pub chat_id: ChatId,
}

/// A status change of a stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub status: MessageStatus,
    pub wa_id: Option<WaMessageId>,
    pub failure: Option<Failure>,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageStatus::*;

    #[test]
    fn statuses_only_move_forward() {
        assert!(Queued.can_become(Sending));
        assert!(Sending.can_become(Sent));
        assert!(Sent.can_become(Read));
        assert!(!Read.can_become(Delivered));
        assert!(!Sent.can_become(Sent));
        assert!(!Failed.can_become(Sent));
        assert!(Sending.can_become(Failed));
        assert!(!Delivered.can_become(Failed));
    }

    #[test]
    fn ack_levels_map_to_statuses() {
        assert_eq!(MessageStatus::from_ack(1), Some(Sent));
        assert_eq!(MessageStatus::from_ack(4), Some(Played));
        assert_eq!(MessageStatus::from_ack(0), None);
    }

    #[test]
    fn idempotency_keys_must_be_visible_ascii() {
        assert!(IdempotencyKey::parse("order-42").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }
}
