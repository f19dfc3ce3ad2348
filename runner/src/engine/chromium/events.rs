//! Decoding the bridge's event frames (`{type, ...}` JSON sent through the CDP binding) into
//! what the session loop acts on. The frame shapes are defined by `assets/bridge.js`.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use openwa_core::content::MessageType;
use openwa_core::jid::{ChatId, WaMessageId};
use openwa_core::session::Me;
use serde::Deserialize;
use serde_json::Value;

use crate::engine::{EngineError, EngineEvent, GroupChange, InboundMessage, MediaPayload};

/// How long a QR is shown before WhatsApp Web rotates its ref (the bridge re-emits on rotation).
pub const QR_LIFETIME: Duration = Duration::seconds(20);

/// One frame from the bridge, as sent.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    Boot {
        version: String,
        url: String,
    },
    SurfaceChanged {
        version: String,
        module: String,
        member: Option<String>,
        detail: String,
    },
    State {
        state: String,
    },
    Qr {
        payload: String,
    },
    PairingCode {
        code: String,
    },
    Authenticated {},
    Ready {
        me: MeView,
    },
    Message {
        msg: MsgView,
    },
    Group {
        msg: MsgView,
        recipients: Vec<String>,
    },
    Ack {
        id: String,
        ack: i64,
    },
    Revoked {
        id: String,
    },
    Edited {
        id: String,
        body: String,
    },
    Reaction {
        target: String,
        sender: String,
        emoji: String,
    },
    LoggedOut {
        reason: Option<String>,
    },
    Log {
        level: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
pub struct MeView {
    pub jid: Option<String>,
    pub pushname: Option<String>,
}

/// A message as the bridge normalises it.
#[derive(Debug, Deserialize)]
pub struct MsgView {
    pub id: String,
    pub chat: String,
    pub author: Option<String>,
    pub from_me: bool,
    pub t: i64,
    pub kind: String,
    pub subtype: Option<String>,
    pub body: Option<String>,
    pub caption: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub loc: Option<String>,
    pub quoted: Option<String>,
    #[serde(default)]
    pub mentions: Vec<String>,
    #[serde(default)]
    pub is_forwarded: bool,
    pub media: Option<MediaView>,
    #[serde(default)]
    pub raw: Value,
}

#[derive(Debug, Deserialize)]
pub struct MediaView {
    pub data: String,
    pub mimetype: String,
    pub filename: Option<String>,
}

/// Parses one binding payload.
pub fn parse(payload: &str) -> Result<Frame, String> {
    serde_json::from_str(payload).map_err(|e| format!("bad bridge frame: {e}"))
}

/// The failure a `surface_changed` frame stands for.
pub fn surface_error(
    version: String,
    module: String,
    member: Option<String>,
    detail: String,
) -> EngineError {
    let detail = match member {
        Some(m) => format!("member {m}: {detail}"),
        None => detail,
    };
    EngineError::SurfaceChanged {
        version,
        module,
        detail,
    }
}

/// `Me` from the bridge's ready frame.
pub fn me(view: MeView) -> Result<Me, String> {
    let jid = view.jid.ok_or("ready without a logged-in user")?;
    let jid = ChatId::parse(&jid).map_err(|e| format!("bad own jid {jid}: {e}"))?;
    Ok(Me {
        jid,
        push_name: view.pushname,
    })
}

/// WhatsApp Web's message type -> the gateway's.
pub fn kind(wa_type: &str) -> MessageType {
    match wa_type {
        "chat" => MessageType::Text,
        "image" => MessageType::Image,
        "video" | "gif" => MessageType::Video,
        "audio" => MessageType::Audio,
        "ptt" => MessageType::Voice,
        "document" => MessageType::Document,
        "sticker" => MessageType::Sticker,
        "location" => MessageType::Location,
        "vcard" | "multi_vcard" => MessageType::Contact,
        "poll_creation" => MessageType::Poll,
        "reaction" => MessageType::Reaction,
        _ => MessageType::Other,
    }
}

fn wa_id(raw: &str) -> Result<WaMessageId, String> {
    WaMessageId::parse(raw).map_err(|e| format!("bad message id {raw}: {e}"))
}

fn chat_id(raw: &str) -> Result<ChatId, String> {
    ChatId::parse(raw).map_err(|e| format!("bad chat id {raw}: {e}"))
}

/// An inbound message event.
pub fn message(v: MsgView) -> Result<EngineEvent, String> {
    let timestamp = DateTime::<Utc>::from_timestamp(v.t, 0).unwrap_or_else(Utc::now);
    let media = match v.media {
        Some(m) => Some(MediaPayload {
            bytes: base64::engine::general_purpose::STANDARD
                .decode(m.data.as_bytes())
                .map_err(|e| format!("bad media base64: {e}"))?,
            mimetype: m.mimetype,
            filename: m.filename,
        }),
        None => None,
    };
    let location = match (v.lat, v.lng) {
        (Some(lat), Some(lng)) => Some((lat, lng, v.loc.clone())),
        _ => None,
    };
    Ok(EngineEvent::Message(InboundMessage {
        wa_id: wa_id(&v.id)?,
        chat: chat_id(&v.chat)?,
        author: v
            .author
            .as_deref()
            .filter(|_| v.chat.ends_with("@g.us"))
            .map(chat_id)
            .transpose()?,
        from_me: v.from_me,
        timestamp,
        kind: kind(&v.kind),
        body: v.body.filter(|b| !b.is_empty()),
        caption: v.caption,
        media,
        location,
        quoted: v.quoted.as_deref().and_then(|q| WaMessageId::parse(q).ok()),
        mentions: v
            .mentions
            .iter()
            .filter_map(|m| ChatId::parse(m).ok())
            .collect(),
        is_forwarded: v.is_forwarded,
        raw: v.raw,
    }))
}

/// A group notification (`gp2` message) as a group change.
pub fn group(v: MsgView, recipients: Vec<String>) -> Result<EngineEvent, String> {
    let chat = chat_id(&v.chat)?;
    let by = v.author.as_deref().and_then(|a| ChatId::parse(a).ok());
    let participants: Vec<ChatId> = recipients
        .iter()
        .filter_map(|r| ChatId::parse(r).ok())
        .collect();
    let change = match v.subtype.as_deref().unwrap_or_default() {
        "add" | "invite" | "create" | "linked_group_join" => GroupChange::Join { participants, by },
        "remove" | "leave" => GroupChange::Leave { participants, by },
        other => GroupChange::Update {
            field: other.to_owned(),
            value: v.body.unwrap_or_default(),
            by,
        },
    };
    Ok(EngineEvent::Group { chat, change })
}

/// Ack, revoke, edit and reaction frames.
pub fn ack(id: &str, level: i64) -> Result<EngineEvent, String> {
    Ok(EngineEvent::Ack {
        wa_id: wa_id(id)?,
        level: level.clamp(-1, 4) as i8,
    })
}

pub fn revoked(id: &str) -> Result<EngineEvent, String> {
    Ok(EngineEvent::Revoked { wa_id: wa_id(id)? })
}

pub fn edited(id: &str, body: String) -> Result<EngineEvent, String> {
    Ok(EngineEvent::Edited {
        wa_id: wa_id(id)?,
        body,
    })
}

pub fn reaction(target: &str, sender: &str, emoji: String) -> Result<EngineEvent, String> {
    Ok(EngineEvent::Reaction {
        target: wa_id(target)?,
        sender: chat_id(sender)?,
        emoji,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inbound_text_frame_becomes_a_message_event() {
        let frame = parse(
            r#"{"type":"message","msg":{"id":"false_15550001111@c.us_ABC123","chat":"15550001111@c.us",
            "author":null,"from_me":false,"t":1700000000,"kind":"chat","body":"hi","mentions":[],"raw":{}}}"#,
        )
        .unwrap();
        let Frame::Message { msg } = frame else {
            panic!("not a message frame")
        };
        let EngineEvent::Message(m) = message(msg).unwrap() else {
            panic!("not a message event")
        };
        assert_eq!(m.wa_id.as_str(), "false_15550001111@c.us_ABC123");
        assert_eq!(m.chat.as_str(), "15550001111@c.us");
        assert_eq!(m.kind, MessageType::Text);
        assert_eq!(m.body.as_deref(), Some("hi"));
        assert!(m.author.is_none());
    }

    #[test]
    fn a_surface_frame_names_module_member_and_version() {
        let Frame::SurfaceChanged { version, module, member, detail } = parse(
            r#"{"type":"surface_changed","version":"2.3000.1","module":"WAWebCollections","member":null,"detail":"cannot be required"}"#,
        )
        .unwrap() else {
            panic!("wrong frame")
        };
        let err = surface_error(version, module, member, detail);
        assert_eq!(err.code(), "engine_surface_changed");
        assert!(
            err.to_string().contains("WAWebCollections") && err.to_string().contains("2.3000.1")
        );
    }

    #[test]
    fn ack_levels_are_clamped_and_ids_checked() {
        assert!(matches!(
            ack("true_15550001111@c.us_3EB0AA", 3),
            Ok(EngineEvent::Ack { level: 3, .. })
        ));
        assert!(ack("nonsense", 1).is_err());
    }
}
