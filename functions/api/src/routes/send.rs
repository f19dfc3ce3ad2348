//! The send request (a Cloud-API-like shape) and its mapping onto the domain's
//! [`SendCommand`]: exactly the object named by `type` must be present; inline base64 media is
//! decoded, size-checked and stored first, so the command (and the send job) carry a reference.

use base64::Engine;
use openwa_core::auth::Principal;
use openwa_core::content::{ContactCard, Content, MAX_MEDIA_BYTES, MessageType};
use openwa_core::id::SessionId;
use openwa_core::jid::{ChatId, WaMessageId};
use openwa_core::message::{IdempotencyKey, SendCommand};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

/// `POST /v1/sessions/{id}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// A phone number in international form or a chat id (`…@c.us`, `…@g.us`, …).
    pub to: ChatId,
    /// Which of the content objects below carries the message.
    #[serde(rename = "type")]
    pub kind: MessageType,
    pub text: Option<TextPart>,
    pub image: Option<MediaPart>,
    pub video: Option<MediaPart>,
    pub audio: Option<MediaPart>,
    pub voice: Option<MediaPart>,
    pub document: Option<MediaPart>,
    pub sticker: Option<MediaPart>,
    pub location: Option<LocationPart>,
    pub contact: Option<ContactPart>,
    pub poll: Option<PollPart>,
    pub reaction: Option<ReactionPart>,
    /// WhatsApp id of the message to quote.
    pub reply_to: Option<WaMessageId>,
    /// Chat ids to mention (group messages).
    #[serde(default)]
    pub mentions: Vec<ChatId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextPart {
    /// Up to 4,096 characters.
    pub body: String,
    /// Let WhatsApp show a preview of the first link.
    #[serde(default)]
    pub preview_url: bool,
}

/// Inline media (`base64` + `mimetype`) or a previously uploaded `media_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaPart {
    /// Standard base64 of the file, at most 16 MiB decoded.
    pub base64: Option<String>,
    pub mimetype: Option<String>,
    pub filename: Option<String>,
    /// Image, video and document only.
    pub caption: Option<String>,
    /// Id of a file uploaded with `POST /v1/media`, instead of `base64` + `mimetype`.
    pub media_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationPart {
    pub latitude: f64,
    pub longitude: f64,
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPart {
    pub contacts: Vec<ContactCard>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollPart {
    pub name: String,
    pub options: Vec<String>,
    /// How many options a voter may pick; default 1.
    pub selectable_count: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionPart {
    /// WhatsApp id of the message reacted to.
    pub message_id: WaMessageId,
    /// One emoji; empty removes the reaction.
    pub emoji: String,
}

/// The content object that was sent, taken out of the request.
enum Part {
    Text(TextPart),
    Media(MediaPart),
    Location(LocationPart),
    Contact(ContactPart),
    Poll(PollPart),
    Reaction(ReactionPart),
}

impl SendMessageRequest {
    /// Builds the command, storing inline media on the way.
    pub async fn into_command(
        mut self,
        state: &AppState,
        who: &Principal,
        session_id: SessionId,
        idempotency_key: Option<IdempotencyKey>,
    ) -> ApiResult<SendCommand> {
        let kind = self.kind;
        let content = match self.take_part()? {
            Part::Text(t) => Content::Text {
                body: t.body,
                link_preview: t.preview_url,
            },
            Part::Media(m) => media_content(state, who, kind, m).await?,
            Part::Location(l) => Content::Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name,
                address: l.address,
            },
            Part::Contact(c) => Content::Contact {
                contacts: c.contacts,
            },
            Part::Poll(p) => Content::Poll {
                name: p.name,
                options: p.options,
                selectable_count: p.selectable_count.unwrap_or(1),
            },
            Part::Reaction(r) => Content::Reaction {
                message_id: r.message_id,
                emoji: r.emoji,
            },
        };
        Ok(SendCommand {
            session_id,
            to: self.to,
            content,
            reply_to: self.reply_to,
            mentions: self.mentions,
            idempotency_key,
        })
    }

    /// Takes the object named by `type`, refusing a missing one and any other present.
    fn take_part(&mut self) -> ApiResult<Part> {
        let kind = self.kind;
        let present: [(MessageType, bool); 11] = [
            (MessageType::Text, self.text.is_some()),
            (MessageType::Image, self.image.is_some()),
            (MessageType::Video, self.video.is_some()),
            (MessageType::Audio, self.audio.is_some()),
            (MessageType::Voice, self.voice.is_some()),
            (MessageType::Document, self.document.is_some()),
            (MessageType::Sticker, self.sticker.is_some()),
            (MessageType::Location, self.location.is_some()),
            (MessageType::Contact, self.contact.is_some()),
            (MessageType::Poll, self.poll.is_some()),
            (MessageType::Reaction, self.reaction.is_some()),
        ];
        if let Some((other, _)) = present.iter().find(|(k, there)| *there && *k != kind) {
            let message = format!("must be absent when type is {}", kind.as_str());
            return Err(ApiError::invalid(other.as_str(), message));
        }
        let missing = || {
            ApiError::invalid(
                kind.as_str(),
                format!("is required when type is {}", kind.as_str()),
            )
        };
        let part = match kind {
            MessageType::Text => self.text.take().map(Part::Text),
            MessageType::Image => self.image.take().map(Part::Media),
            MessageType::Video => self.video.take().map(Part::Media),
            MessageType::Audio => self.audio.take().map(Part::Media),
            MessageType::Voice => self.voice.take().map(Part::Media),
            MessageType::Document => self.document.take().map(Part::Media),
            MessageType::Sticker => self.sticker.take().map(Part::Media),
            MessageType::Location => self.location.take().map(Part::Location),
            MessageType::Contact => self.contact.take().map(Part::Contact),
            MessageType::Poll => self.poll.take().map(Part::Poll),
            MessageType::Reaction => self.reaction.take().map(Part::Reaction),
            MessageType::Other => {
                return Err(ApiError::invalid(
                    "type",
                    "messages of type other cannot be sent",
                ));
            }
        };
        part.ok_or_else(missing)
    }
}

/// Resolves an uploaded `media_id`, or decodes, checks and stores inline base64, then wraps the
/// media in the content of `kind`.
async fn media_content(
    state: &AppState,
    who: &Principal,
    kind: MessageType,
    part: MediaPart,
) -> ApiResult<Content> {
    let name = kind.as_str();
    let caption_allowed = matches!(
        kind,
        MessageType::Image | MessageType::Video | MessageType::Document
    );
    if part.caption.is_some() && !caption_allowed {
        return Err(ApiError::invalid(
            format!("{name}.caption"),
            format!("{name} messages have no caption"),
        ));
    }
    let media = match (part.media_id, part.base64) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                format!("{name}.media_id"),
                "send either media_id or base64, not both",
            ));
        }
        (Some(_), None) if part.mimetype.is_some() => {
            let message = "comes from the upload; omit it when sending a media_id";
            return Err(ApiError::invalid(format!("{name}.mimetype"), message));
        }
        (Some(id), None) => {
            super::media::resolve(
                state.backend.blobs.as_ref(),
                &format!("{name}.media_id"),
                &id,
                part.filename,
            )
            .await?
        }
        (None, None) => {
            return Err(ApiError::invalid(
                format!("{name}.base64"),
                "is required (or a media_id)",
            ));
        }
        (None, Some(encoded)) => {
            let mimetype = part.mimetype.ok_or_else(|| {
                ApiError::invalid(format!("{name}.mimetype"), "is required with base64")
            })?;
            let bytes = decode_base64(name, &encoded)?;
            state
                .messages
                .store_media(who, bytes, &mimetype, part.filename)
                .await
                .map_err(|e| ApiError::from(e.within(name)))?
        }
    };
    Ok(match kind {
        MessageType::Image => Content::Image {
            media,
            caption: part.caption,
        },
        MessageType::Video => Content::Video {
            media,
            caption: part.caption,
        },
        MessageType::Document => Content::Document {
            media,
            caption: part.caption,
        },
        MessageType::Audio => Content::Audio { media },
        MessageType::Voice => Content::Voice { media },
        _ => Content::Sticker { media },
    })
}

/// Refuses oversized input before decoding it: 4 base64 characters carry 3 bytes.
fn decode_base64(name: &str, encoded: &str) -> ApiResult<Vec<u8>> {
    if encoded.len() / 4 * 3 > MAX_MEDIA_BYTES + 3 {
        let message = format!("{name}.base64 decodes to more than {MAX_MEDIA_BYTES} bytes");
        return Err(ApiError::new(ErrorCode::PayloadTooLarge, message));
    }
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| ApiError::invalid(format!("{name}.base64"), "is not valid standard base64"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse_json;

    fn take(json: &str) -> ApiResult<Part> {
        parse_json::<SendMessageRequest>(json.as_bytes())?.take_part()
    }

    #[test]
    fn the_object_named_by_type_is_required() {
        let err = take(r#"{"to":"15550109999","type":"text"}"#).err().unwrap();
        assert_eq!(err.field.as_deref(), Some("text"));
    }

    #[test]
    fn an_object_of_another_type_is_refused() {
        let err = take(r#"{"to":"15550109999","type":"text","text":{"body":"hi"},"poll":{"name":"a","options":[]}}"#)
            .err()
            .unwrap();
        assert_eq!(err.field.as_deref(), Some("poll"));
    }

    #[test]
    fn an_invalid_recipient_names_the_to_field() {
        let err = take(r#"{"to":"not a number","type":"text","text":{"body":"hi"}}"#)
            .err()
            .unwrap();
        assert_eq!(err.field.as_deref(), Some("to"));
    }
}
