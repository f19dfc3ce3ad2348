//! Message content: every type the gateway can send, with the rules each must satisfy.
//!
//! The stored form is internally tagged (`{"type": "text", "body": …}`); the HTTP API maps its
//! own request shape onto it. Media arrives as base64 or an uploaded media id and is stored in
//! the blob store before the send job is queued, so jobs stay small.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;
use crate::id::MediaId;
use crate::jid::WaMessageId;

/// WhatsApp's limit for a text message body.
pub const MAX_TEXT_CHARS: usize = 4096;
/// WhatsApp's limit for a media caption.
pub const MAX_CAPTION_CHARS: usize = 1024;
/// Largest media the gateway accepts inline or by upload (WhatsApp's document limit is higher,
/// but larger files belong in an upload flow, not a JSON body).
pub const MAX_MEDIA_BYTES: usize = 16 * 1024 * 1024;

/// The kind of a message, as stored and filtered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    Text,
    Image,
    Video,
    Audio,
    Voice,
    Document,
    Sticker,
    Location,
    Contact,
    Poll,
    Reaction,
    /// Inbound types the gateway does not model yet (calls logs, system messages…).
    Other,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Voice => "voice",
            Self::Document => "document",
            Self::Sticker => "sticker",
            Self::Location => "location",
            Self::Contact => "contact",
            Self::Poll => "poll",
            Self::Reaction => "reaction",
            Self::Other => "other",
        }
    }

    pub fn is_media(self) -> bool {
        matches!(
            self,
            Self::Image | Self::Video | Self::Audio | Self::Voice | Self::Document | Self::Sticker
        )
    }
}

/// Media that has been stored: what a send job and a message record carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MediaRef {
    pub media_id: MediaId,
    pub mimetype: String,
    pub filename: Option<String>,
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

/// One contact card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCard {
    pub name: String,
    /// Phone in international form; becomes the card's `waid`.
    pub phone: String,
}

/// Message content in its stored, validated form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text {
        body: String,
        #[serde(default)]
        link_preview: bool,
    },
    Image {
        media: MediaRef,
        caption: Option<String>,
    },
    Video {
        media: MediaRef,
        caption: Option<String>,
    },
    Audio {
        media: MediaRef,
    },
    Voice {
        media: MediaRef,
    },
    Document {
        media: MediaRef,
        caption: Option<String>,
    },
    Sticker {
        media: MediaRef,
    },
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    Contact {
        contacts: Vec<ContactCard>,
    },
    Poll {
        name: String,
        options: Vec<String>,
        selectable_count: u32,
    },
    Reaction {
        message_id: WaMessageId,
        emoji: String,
    },
}

impl Eq for Content {}

impl Content {
    pub fn kind(&self) -> MessageType {
        match self {
            Self::Text { .. } => MessageType::Text,
            Self::Image { .. } => MessageType::Image,
            Self::Video { .. } => MessageType::Video,
            Self::Audio { .. } => MessageType::Audio,
            Self::Voice { .. } => MessageType::Voice,
            Self::Document { .. } => MessageType::Document,
            Self::Sticker { .. } => MessageType::Sticker,
            Self::Location { .. } => MessageType::Location,
            Self::Contact { .. } => MessageType::Contact,
            Self::Poll { .. } => MessageType::Poll,
            Self::Reaction { .. } => MessageType::Reaction,
        }
    }

    /// The text shown to the recipient: body or caption.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text { body, .. } => Some(body),
            Self::Image { caption, .. }
            | Self::Video { caption, .. }
            | Self::Document { caption, .. } => caption.as_deref(),
            Self::Poll { name, .. } => Some(name),
            _ => None,
        }
    }

    pub fn media(&self) -> Option<&MediaRef> {
        match self {
            Self::Image { media, .. }
            | Self::Video { media, .. }
            | Self::Audio { media }
            | Self::Voice { media }
            | Self::Document { media, .. }
            | Self::Sticker { media } => Some(media),
            _ => None,
        }
    }

    /// Checks every rule WhatsApp (or good sense) puts on the content.
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Self::Text { body, .. } => validate_text("text.body", body, MAX_TEXT_CHARS),
            Self::Image { media, caption }
            | Self::Video { media, caption }
            | Self::Document { media, caption } => {
                if let Some(c) = caption {
                    validate_text(
                        &format!("{}.caption", self.kind().as_str()),
                        c,
                        MAX_CAPTION_CHARS,
                    )?;
                }
                validate_media(self.kind(), media)
            }
            Self::Audio { media } | Self::Voice { media } | Self::Sticker { media } => {
                validate_media(self.kind(), media)
            }
            Self::Location {
                latitude,
                longitude,
                name,
                address,
            } => {
                if !(-90.0..=90.0).contains(latitude) || latitude.is_nan() {
                    return Err(Error::invalid(
                        "location.latitude",
                        "must be between -90 and 90",
                    ));
                }
                if !(-180.0..=180.0).contains(longitude) || longitude.is_nan() {
                    return Err(Error::invalid(
                        "location.longitude",
                        "must be between -180 and 180",
                    ));
                }
                for (field, v) in [("location.name", name), ("location.address", address)] {
                    if let Some(v) = v {
                        validate_text(field, v, 256)?;
                    }
                }
                Ok(())
            }
            Self::Contact { contacts } => {
                if contacts.is_empty() || contacts.len() > 20 {
                    return Err(Error::invalid("contact.contacts", "send 1 to 20 contacts"));
                }
                for (i, c) in contacts.iter().enumerate() {
                    validate_text(&format!("contact.contacts[{i}].name"), &c.name, 256)?;
                    crate::jid::ChatId::from_phone(&c.phone).map_err(|e| {
                        Error::invalid(format!("contact.contacts[{i}].phone"), e.to_string())
                    })?;
                }
                Ok(())
            }
            Self::Poll {
                name,
                options,
                selectable_count,
            } => {
                validate_text("poll.name", name, 255)?;
                if options.len() < 2 || options.len() > 12 {
                    return Err(Error::invalid("poll.options", "a poll has 2 to 12 options"));
                }
                for (i, o) in options.iter().enumerate() {
                    validate_text(&format!("poll.options[{i}]"), o, 100)?;
                }
                let mut seen = std::collections::HashSet::new();
                if !options.iter().all(|o| seen.insert(o.as_str())) {
                    return Err(Error::invalid("poll.options", "options must be distinct"));
                }
                if *selectable_count == 0 || *selectable_count as usize > options.len() {
                    return Err(Error::invalid(
                        "poll.selectable_count",
                        "must be between 1 and the number of options",
                    ));
                }
                Ok(())
            }
            Self::Reaction { emoji, .. } => {
                // Empty removes a reaction; otherwise one emoji (which may be several code points).
                if emoji.chars().count() > 16
                    || emoji
                        .chars()
                        .any(|c| c.is_ascii_alphanumeric() || c.is_control())
                {
                    return Err(Error::invalid(
                        "reaction.emoji",
                        "must be a single emoji, or empty to remove",
                    ));
                }
                Ok(())
            }
        }
    }
}

fn validate_text(field: &str, value: &str, max_chars: usize) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(Error::invalid(
            field,
            format!("is {chars} characters; the limit is {max_chars}"),
        ));
    }
    Ok(())
}

fn validate_media(kind: MessageType, media: &MediaRef) -> Result<(), Error> {
    let field = format!("{}.media", kind.as_str());
    let mime = media.mimetype.as_str();
    let ok = match kind {
        MessageType::Image => matches!(mime, "image/jpeg" | "image/png" | "image/webp"),
        MessageType::Video => matches!(mime, "video/mp4" | "video/3gpp"),
        MessageType::Audio => mime.starts_with("audio/"),
        MessageType::Voice => matches!(mime, "audio/ogg" | "audio/ogg; codecs=opus"),
        MessageType::Sticker => mime == "image/webp",
        MessageType::Document => mime.contains('/') && !mime.contains(char::is_whitespace),
        _ => false,
    };
    if !ok {
        return Err(Error::invalid(
            field,
            format!("mimetype {mime:?} cannot be sent as {}", kind.as_str()),
        ));
    }
    if media.size == 0 {
        return Err(Error::invalid(field, "is empty"));
    }
    if media.size as usize > MAX_MEDIA_BYTES {
        return Err(Error::TooLarge {
            message: format!("{field} is larger than {MAX_MEDIA_BYTES} bytes"),
        });
    }
    if let Some(name) = &media.filename
        && (name.is_empty() || name.len() > 255 || name.contains(['/', '\\', '\0']))
    {
        return Err(Error::invalid(
            field,
            "filename must be 1 to 255 characters without path separators",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(mimetype: &str, size: u64) -> MediaRef {
        MediaRef {
            media_id: MediaId::generate(),
            mimetype: mimetype.into(),
            filename: None,
            size,
            sha256: "00".into(),
        }
    }

    #[test]
    fn text_over_4096_characters_is_refused_and_4096_is_fine() {
        let ok = Content::Text {
            body: "é".repeat(MAX_TEXT_CHARS),
            link_preview: false,
        };
        assert!(ok.validate().is_ok());
        let long = Content::Text {
            body: "a".repeat(MAX_TEXT_CHARS + 1),
            link_preview: false,
        };
        assert!(
            matches!(long.validate(), Err(Error::Invalid { field, .. }) if field == "text.body")
        );
        let blank = Content::Text {
            body: "  ".into(),
            link_preview: false,
        };
        assert!(blank.validate().is_err());
    }

    #[test]
    fn media_of_the_wrong_mimetype_is_refused() {
        assert!(
            Content::Image {
                media: media("image/png", 10),
                caption: None
            }
            .validate()
            .is_ok()
        );
        assert!(
            Content::Image {
                media: media("video/mp4", 10),
                caption: None
            }
            .validate()
            .is_err()
        );
        assert!(
            Content::Sticker {
                media: media("image/png", 10)
            }
            .validate()
            .is_err()
        );
        assert!(
            Content::Voice {
                media: media("audio/ogg", 10)
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn oversized_media_is_too_large_not_invalid() {
        let big = Content::Video {
            media: media("video/mp4", MAX_MEDIA_BYTES as u64 + 1),
            caption: None,
        };
        assert!(matches!(big.validate(), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn polls_need_distinct_options_and_a_sane_selectable_count() {
        let poll = |options: &[&str], n| Content::Poll {
            name: "Lunch?".into(),
            options: options.iter().map(|s| s.to_string()).collect(),
            selectable_count: n,
        };
        assert!(poll(&["a", "b"], 1).validate().is_ok());
        assert!(poll(&["a"], 1).validate().is_err());
        assert!(poll(&["a", "a"], 1).validate().is_err());
        assert!(poll(&["a", "b"], 3).validate().is_err());
    }

    #[test]
    fn locations_outside_the_globe_are_refused() {
        let loc = |lat, lng| Content::Location {
            latitude: lat,
            longitude: lng,
            name: None,
            address: None,
        };
        assert!(loc(52.5, 13.4).validate().is_ok());
        assert!(loc(91.0, 0.0).validate().is_err());
        assert!(loc(0.0, f64::NAN).validate().is_err());
    }

    #[test]
    fn stored_content_is_internally_tagged() {
        let c = Content::Text {
            body: "hi".into(),
            link_preview: false,
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"type": "text", "body": "hi", "link_preview": false})
        );
    }
}
