//! The page <-> network WebSocket protocol (JSON text frames, one object per frame, tagged by
//! `type`). The simulated page speaks it the way the real app speaks to WhatsApp's servers.
//!
//! Requests that expect an answer carry a numeric `req`; the server answers each with
//! `{"type":"reply","req":n,"result":...}` or `{"type":"reply","req":n,"error":"..."}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The login record a paired page keeps in IndexedDB + Local Storage and presents on connect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginRecord {
    pub phone: String,
    pub device: u32,
    pub token: String,
}

/// Frames from a page to the network.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First frame after the socket opens.
    Hello {
        client_id: String,
        /// Public keys for the QR payload: noise, identity, adv secret (base64).
        keys: [String; 3],
        #[serde(default)]
        login: Option<LoginRecord>,
    },
    /// `Cmd.refreshQR()`: start a new round of refs.
    RefreshQr,
    /// An RPC call (see [`Call`]).
    Call {
        req: u64,
        #[serde(flatten)]
        call: Call,
    },
}

/// RPC calls a page makes; each gets a `reply`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Call {
    /// Send a message; `msg` holds WhatsApp Web attribute names (`id.id`, `to`, `type`, ...).
    Send { msg: Value },
    /// React to a message (empty `text` removes the reaction).
    React { msg_id: String, text: String },
    /// Edit the body of an own message.
    Edit { msg_id: String, body: String },
    /// Revoke an own message for everyone.
    Revoke { msg_id: String },
    /// Mark a chat read.
    Seen { chat: String },
    /// Mark a voice/video message played.
    Played { msg_id: String },
    /// Vote in a poll.
    PollVote {
        msg_id: String,
        selected: Vec<String>,
    },
    /// Request an alternate-device-linking (pairing) code for `phone`.
    PairingCode { phone: String },
    /// Log this device out.
    Logout,
    /// Take the device over from another page (resolves `CONFLICT`).
    Takeover,
    /// Create a group.
    GroupCreate {
        subject: String,
        participants: Vec<String>,
    },
    /// Add/remove/promote/demote participants.
    GroupParticipants {
        group: String,
        action: String,
        participants: Vec<String>,
    },
    /// Change a group's subject.
    GroupSubject { group: String, subject: String },
    /// Leave a group.
    GroupLeave { group: String },
    /// Does this user jid exist on the network?
    Exists { jid: String },
    /// Save a contact (phone digits) under a name in this account's address book.
    SaveContact { phone: String, name: String },
    /// Remove a contact from this account's address book.
    DeleteContact { phone: String },
}

/// Frames from the network to a page.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Answer to a [`ClientMsg::Call`].
    Reply {
        req: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Current fault switches (renamed modules etc.).
    Faults { faults: Value },
    /// A new QR ref; `modules` is the QR matrix (rows of '0'/'1').
    Qr {
        r#ref: String,
        payload: String,
        modules: Vec<String>,
    },
    /// Out of refs: `UNPAIRED_IDLE`.
    QrIdle,
    /// The QR was scanned or the pairing code confirmed: `PAIRING`.
    Pairing,
    /// Pairing finished: store this login record and reload.
    Paired { login: crate::protocol::LoginRecord },
    /// Logged in and connected; the initial sync follows in the same frame.
    Ready { me: Value, sync: Value },
    /// The device is open in another page.
    Conflict,
    /// The device was logged out (from the phone or by this page).
    LoggedOut,
    /// Force a WAState (e.g. `DEPRECATED_VERSION`).
    State { state: String },
    /// A message arrived (or was sent from another device of this account).
    Msg { msg: Value },
    /// A message's ack moved.
    Ack { id: String, ack: i8 },
    /// A message's attributes changed (edit, revoke, poll votes).
    Update { id: String, changes: Value },
    /// A reaction to a message.
    Reaction { reaction: Value },
    /// A group was created or changed; `event` names what happened.
    Group { event: String, group: Value },
    /// A contact was added or changed.
    Contact { contact: Value },
    /// Reload the page (fault injection).
    Reload,
    /// Internal: the socket writer closes the connection abruptly (never sent as a frame).
    Drop,
}
