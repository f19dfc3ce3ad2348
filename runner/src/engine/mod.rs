//! The engine port: what the runner needs from "a WhatsApp session", independent of how it is
//! driven. The Chromium engine (WhatsApp Web in headless Chromium + the bridge script) is the
//! production implementation; tests may use a scripted fake.
//!
//! Contract highlights:
//! - `Engine::start` launches a session and returns a handle plus a stream of [`EngineEvent`]s.
//!   The stream ends when the session stops or dies; the last event then says why
//!   (`Disconnected`, `LoggedOut` or `Failed`).
//! - `EngineSession::send` is **idempotent on `OutgoingMessage::wa_key`**: before sending, the
//!   engine looks for a message with that key in the chat and, if it exists, returns its id with
//!   `already_sent = true` instead of sending again. The key is derived from the gateway message
//!   id (see [`wa_key_for`]), so a job redelivered after a crash cannot produce a second message.
//! - Where the login lives depends on the engine's [`IsolationMode`]: in `Process` mode in the
//!   session's profile directory (the runner snapshots the directory after `stop`); in
//!   `Context` mode only in the live page, so the runner asks the session for an
//!   [`AuthDump`] (`EngineSession::export_auth`) before stopping it and hands the latest dump
//!   back in [`SessionSpec::auth_dump`] at every start.

pub mod chromium;
pub mod fake;

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use openwa_core::content::{Content, MessageType};
use openwa_core::id::{MessageId, SessionId};
use openwa_core::jid::{ChatId, WaMessageId};
use openwa_core::session::Me;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

pub use crate::config::IsolationMode;

/// A session's login exported from a live page (context mode): the engine's own encoding of
/// the origin's IndexedDB and Local Storage. It is the login itself, so it is never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthDump(Vec<u8>);

impl AuthDump {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl std::fmt::Debug for AuthDump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthDump({} bytes)", self.0.len())
    }
}

/// How to start one session.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub session_id: SessionId,
    /// The browser profile directory (restored from a snapshot before start, if any). Process
    /// mode only; a context-mode session has no profile of its own.
    pub profile_dir: PathBuf,
    /// Context mode: the login to restore into the fresh browser context before WhatsApp Web
    /// loads (`None`: start unlinked). Ignored in process mode.
    pub auth_dump: Option<AuthDump>,
    /// Outbound proxy for the browser.
    pub proxy: Option<String>,
    /// WhatsApp Web URL: the real one in production, the simulator's in sandbox and tests.
    pub wa_url: String,
    /// On `CONFLICT` (the account opened elsewhere), take the session back automatically.
    pub takeover_on_conflict: bool,
}

/// Media bytes resolved from the blob store for a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPayload {
    pub mimetype: String,
    pub filename: Option<String>,
    pub bytes: Vec<u8>,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub message_id: MessageId,
    /// The WhatsApp message key id to use; derived from `message_id` with [`wa_key_for`].
    pub wa_key: String,
    pub chat: ChatId,
    pub content: Content,
    pub media: Option<MediaPayload>,
    pub reply_to: Option<WaMessageId>,
    pub mentions: Vec<ChatId>,
}

/// The outcome of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    pub wa_id: WaMessageId,
    /// The message already existed (a redelivered job); nothing was sent now.
    pub already_sent: bool,
}

/// Derives WhatsApp's message key id from the gateway message id: upper-case hex like the ids
/// WhatsApp Web generates, stable for a given gateway id.
pub fn wa_key_for(id: &MessageId) -> String {
    let digest = Sha256::digest(id.as_str().as_bytes());
    let mut key = String::from("3EB0");
    for b in &digest[..14] {
        key.push_str(&format!("{b:02X}"));
    }
    key
}

/// An inbound message, normalised from the page's model.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub wa_id: WaMessageId,
    pub chat: ChatId,
    /// The sender in groups.
    pub author: Option<ChatId>,
    pub from_me: bool,
    pub timestamp: DateTime<Utc>,
    pub kind: MessageType,
    pub body: Option<String>,
    pub caption: Option<String>,
    pub media: Option<MediaPayload>,
    pub location: Option<(f64, f64, Option<String>)>,
    pub quoted: Option<WaMessageId>,
    pub mentions: Vec<ChatId>,
    pub is_forwarded: bool,
    /// The page's serialized model, for fields not modelled above.
    pub raw: serde_json::Value,
}

/// Group membership and settings changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    Join {
        participants: Vec<ChatId>,
        by: Option<ChatId>,
    },
    Leave {
        participants: Vec<ChatId>,
        by: Option<ChatId>,
    },
    Update {
        field: String,
        value: String,
        by: Option<ChatId>,
    },
}

/// What happens in a session, as the engine reports it.
// `Message` is large, but events are moved through a channel one at a time; boxing it would
// only add an allocation per message and noise at every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// A QR code to scan; replaces the previous one.
    Qr {
        payload: String,
        expires_at: DateTime<Utc>,
    },
    /// A pairing code to type on the phone.
    PairingCode {
        code: String,
    },
    /// The login was accepted; syncing.
    Authenticated,
    /// Synced and usable.
    Ready {
        me: Me,
    },
    /// A raw WhatsApp Web state change (`CONNECTED`, `TIMEOUT`, `CONFLICT`, …).
    State {
        state: String,
    },
    Message(InboundMessage),
    /// Ack level: -1 error, 1 server, 2 device, 3 read, 4 played.
    Ack {
        wa_id: WaMessageId,
        level: i8,
    },
    Revoked {
        wa_id: WaMessageId,
    },
    Edited {
        wa_id: WaMessageId,
        body: String,
    },
    Reaction {
        target: WaMessageId,
        sender: ChatId,
        emoji: String,
    },
    Group {
        chat: ChatId,
        change: GroupChange,
    },
    Call {
        from: ChatId,
        video: bool,
    },
    /// The connection dropped; the engine is reconnecting (or gave up, if the stream ends).
    Disconnected {
        reason: String,
    },
    /// The device was logged out (from the phone or by `logout`); the login is gone.
    LoggedOut,
    /// The session cannot go on: e.g. the page's module surface changed. The stream ends.
    Failed {
        error: EngineError,
    },
}

/// Engine errors, by what the caller should do about them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// WhatsApp Web's in-page surface is not what the bridge expects.
    #[error("WhatsApp Web {version}: module {module} is missing or changed ({detail})")]
    SurfaceChanged {
        version: String,
        module: String,
        detail: String,
    },
    /// The session is not logged in / not ready for this operation.
    #[error("session not ready: {0}")]
    NotReady(String),
    /// The recipient is not on WhatsApp or the chat cannot be found.
    #[error("recipient unavailable: {0}")]
    Recipient(String),
    /// The send was attempted and WhatsApp refused it.
    #[error("send rejected: {0}")]
    Rejected(String),
    /// The browser or page died or hung; restarting the session may help.
    #[error("browser failure: {0}")]
    Browser(String),
    /// Timed out waiting for the page.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl EngineError {
    /// A stable reason code for `message.failed` events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SurfaceChanged { .. } => "engine_surface_changed",
            Self::NotReady(_) => "session_not_ready",
            Self::Recipient(_) => "recipient_unavailable",
            Self::Rejected(_) => "send_rejected",
            Self::Browser(_) => "engine_browser_failure",
            Self::Timeout(_) => "engine_timeout",
        }
    }

    /// Whether the same operation may succeed after a restart or a wait.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::NotReady(_) | Self::Browser(_) | Self::Timeout(_)
        )
    }
}

/// Starts sessions.
#[async_trait]
pub trait Engine: Send + Sync {
    async fn start(
        &self,
        spec: SessionSpec,
    ) -> Result<(Box<dyn EngineSession>, mpsc::Receiver<EngineEvent>), EngineError>;

    /// Where this engine keeps a session's login, which decides how it is snapshotted (see
    /// the module docs).
    fn isolation(&self) -> IsolationMode {
        IsolationMode::Process
    }
}

/// A running session.
#[async_trait]
pub trait EngineSession: Send + Sync {
    /// Sends, unless a message with `msg.wa_key` already exists in the chat (see module docs).
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, EngineError>;
    /// Asks for a pairing code for linking by phone number (while unpaired).
    async fn request_pairing_code(&self, phone: &ChatId) -> Result<String, EngineError>;
    /// Whether a phone number is on WhatsApp; its chat id if so.
    async fn check_number(&self, phone: &ChatId) -> Result<Option<ChatId>, EngineError>;
    /// Marks a chat read.
    async fn mark_read(&self, chat: &ChatId) -> Result<(), EngineError>;
    /// Logs the device out (the login is gone afterwards).
    async fn logout(&self) -> Result<(), EngineError>;
    /// Stops gracefully: the profile is flushed to disk, so a snapshot taken afterwards is whole.
    async fn stop(&self) -> Result<(), EngineError>;
    /// Context mode: the login dumped from the live page (before `stop`). Engines that keep
    /// the login in the profile directory refuse.
    async fn export_auth(&self) -> Result<AuthDump, EngineError> {
        Err(EngineError::NotReady(
            "this engine keeps the login in its profile directory; snapshot the directory".into(),
        ))
    }
    /// OS process ids belonging to this session (for memory metrics), if any.
    fn pids(&self) -> Vec<u32>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wa_keys_are_stable_upper_hex_and_differ_per_message() {
        let a = MessageId::generate();
        let b = MessageId::generate();
        assert_eq!(wa_key_for(&a), wa_key_for(&a));
        assert_ne!(wa_key_for(&a), wa_key_for(&b));
        let key = wa_key_for(&a);
        assert_eq!(key.len(), 32);
        assert!(
            key.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        assert!(WaMessageId::outgoing(&ChatId::parse("15550109999").unwrap(), &key).is_ok());
    }
}
