//! WhatsApp addresses: chat ids (JIDs) and serialized WhatsApp message ids.
//!
//! Accepted chat forms (normalised on parse):
//! - a phone number in any common notation (`+1 (555) 010-9999`, `0049…` is refused: use the
//!   international form) -> `<digits>@c.us`
//! - `<digits>@c.us` or the wire form `<digits>@s.whatsapp.net` -> `<digits>@c.us`
//! - `<id>@g.us` (group; legacy `<creator>-<timestamp>` ids too), `<digits>@lid`,
//!   `<digits>@newsletter`, `status@broadcast`

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::string_newtype;

/// What kind of chat a [`ChatId`] addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    User,
    Group,
    Lid,
    Newsletter,
    Status,
}

/// A chat address (JID) in its normalised form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChatId(String);

/// E.164 allows at most 15 digits; shorter than 7 is not a real subscriber number.
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

impl ChatId {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let raw = raw.trim();
        let Some((user, server)) = raw.rsplit_once('@') else {
            return Self::from_phone(raw);
        };
        match server {
            "c.us" | "s.whatsapp.net" => {
                let digits = phone_digits(user)?;
                Ok(Self(format!("{digits}@c.us")))
            }
            "g.us" => {
                let valid = !user.is_empty()
                    && user.len() <= 40
                    && user
                        .split('-')
                        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                    && user.split('-').count() <= 2;
                if !valid {
                    return Err(Error::invalid(
                        "chat_id",
                        "a group id is digits, optionally `<creator>-<timestamp>`, then @g.us",
                    ));
                }
                Ok(Self(raw.to_owned()))
            }
            "lid" | "newsletter" => {
                if user.is_empty() || user.len() > 32 || !user.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::invalid(
                        "chat_id",
                        format!("a @{server} id is 1 to 32 digits"),
                    ));
                }
                Ok(Self(raw.to_owned()))
            }
            "broadcast" if user == "status" => Ok(Self(raw.to_owned())),
            _ => Err(Error::invalid(
                "chat_id",
                "expected a phone number or a chat id ending in @c.us, @g.us, @lid, @newsletter or status@broadcast",
            )),
        }
    }

    /// A chat id from a phone number in international notation.
    pub fn from_phone(raw: &str) -> Result<Self, Error> {
        let digits = phone_digits(raw)?;
        Ok(Self(format!("{digits}@c.us")))
    }

    pub fn kind(&self) -> ChatKind {
        match self.server() {
            "g.us" => ChatKind::Group,
            "lid" => ChatKind::Lid,
            "newsletter" => ChatKind::Newsletter,
            "broadcast" => ChatKind::Status,
            _ => ChatKind::User,
        }
    }

    /// The part before `@`: the phone digits for users.
    pub fn user(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(u, _)| u)
    }

    pub fn server(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, s)| s)
    }
}

/// Extracts the digits of a phone number written with `+`, spaces, dots, dashes or parentheses.
fn phone_digits(raw: &str) -> Result<String, Error> {
    let mut digits = String::with_capacity(raw.len());
    for (i, c) in raw.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => {
                return Err(Error::invalid(
                    "chat_id",
                    format!("unexpected character {c:?} in a phone number"),
                ));
            }
        }
    }
    if !PHONE_DIGITS.contains(&digits.len()) {
        return Err(Error::invalid(
            "chat_id",
            "a phone number has 7 to 15 digits including the country code",
        ));
    }
    if digits.starts_with('0') {
        return Err(Error::invalid(
            "chat_id",
            "write the number in international form, without a leading 0",
        ));
    }
    Ok(digits)
}

string_newtype!(
    ChatId,
    "Chat id (JID): `<digits>@c.us`, `<id>@g.us`, `<digits>@lid`, `<digits>@newsletter` or `status@broadcast`. Phone numbers are accepted and normalised."
);

/// A serialized WhatsApp message id: `<fromMe>_<remote chat>_<inner id>[_<participant>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaMessageId(String);

impl WaMessageId {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let bad = || {
            Error::invalid(
                "wa_message_id",
                "expected `<true|false>_<chat id>_<id>[_<participant>]`",
            )
        };
        let mut parts = raw.splitn(4, '_');
        let from_me = parts.next().ok_or_else(bad)?;
        if from_me != "true" && from_me != "false" {
            return Err(bad());
        }
        let remote = parts.next().ok_or_else(bad)?;
        ChatId::parse(remote).map_err(|_| bad())?;
        if !remote.contains('@') {
            return Err(bad());
        }
        let inner = parts.next().ok_or_else(bad)?;
        if inner.is_empty()
            || inner.len() > 128
            || !inner.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(bad());
        }
        if let Some(participant) = parts.next() {
            if !participant.contains('@') {
                return Err(bad());
            }
            ChatId::parse(participant).map_err(|_| bad())?;
        }
        Ok(Self(raw.to_owned()))
    }

    /// Builds the id of a message this account sends.
    pub fn outgoing(remote: &ChatId, inner: &str) -> Result<Self, Error> {
        Self::parse(&format!("true_{remote}_{inner}"))
    }

    pub fn from_me(&self) -> bool {
        self.0.starts_with("true_")
    }

    pub fn remote(&self) -> ChatId {
        let rest = self.0.split_once('_').map_or("", |(_, r)| r);
        ChatId(rest.split('_').next().unwrap_or_default().to_owned())
    }

    /// The inner id WhatsApp generated (or the gateway derived).
    pub fn inner(&self) -> &str {
        self.0.split('_').nth(2).unwrap_or_default()
    }
}

string_newtype!(
    WaMessageId,
    "WhatsApp message id: `<fromMe>_<chat id>_<id>[_<participant>]`."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_in_common_notations_normalise_to_c_us() {
        for raw in [
            "+1 (555) 010-9999",
            "15550109999",
            "1.555.010.9999",
            "15550109999@s.whatsapp.net",
            "15550109999@c.us",
        ] {
            assert_eq!(
                ChatId::parse(raw).unwrap().as_str(),
                "15550109999@c.us",
                "{raw}"
            );
        }
    }

    #[test]
    fn bad_phone_numbers_are_refused_with_a_reason() {
        for raw in [
            "",
            "+",
            "12345",
            "1234567890123456",
            "0049301234567",
            "+1 555 CALL NOW",
            "1+5550109999",
        ] {
            let err = ChatId::parse(raw).unwrap_err();
            assert!(
                matches!(err, Error::Invalid { ref field, .. } if field == "chat_id"),
                "{raw}: {err:?}"
            );
        }
    }

    #[test]
    fn every_chat_kind_parses() {
        assert_eq!(
            ChatId::parse("120363025246125486@g.us").unwrap().kind(),
            ChatKind::Group
        );
        assert_eq!(
            ChatId::parse("15550109999-1493924093@g.us").unwrap().kind(),
            ChatKind::Group
        );
        assert_eq!(
            ChatId::parse("123456789012345@lid").unwrap().kind(),
            ChatKind::Lid
        );
        assert_eq!(
            ChatId::parse("120363144038483540@newsletter")
                .unwrap()
                .kind(),
            ChatKind::Newsletter
        );
        assert_eq!(
            ChatId::parse("status@broadcast").unwrap().kind(),
            ChatKind::Status
        );
        assert_eq!(ChatId::parse("15550109999").unwrap().kind(), ChatKind::User);
    }

    #[test]
    fn malformed_chat_ids_are_refused() {
        for raw in [
            "abc@g.us",
            "@g.us",
            "1-2-3@g.us",
            "12@lid@lid",
            "x@lid",
            "foo@broadcast",
            "1555@example.com",
            "15550109999@",
        ] {
            assert!(ChatId::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn wa_message_ids_parse_with_and_without_participant() {
        let id = WaMessageId::parse("true_15550109999@c.us_3EB0C0FFEE").unwrap();
        assert!(id.from_me());
        assert_eq!(id.remote().as_str(), "15550109999@c.us");
        assert_eq!(id.inner(), "3EB0C0FFEE");
        let grp =
            WaMessageId::parse("false_120363025246125486@g.us_ABCDEF_15550109999@c.us").unwrap();
        assert!(!grp.from_me());
        assert_eq!(grp.remote().kind(), ChatKind::Group);
        for bad in [
            "",
            "maybe_15550109999@c.us_ABC",
            "true_15550109999_ABC",
            "true_15550109999@c.us_",
            "true_15550109999@c.us_AB-C",
            "true_1@g.us_ABC_notajid",
        ] {
            assert!(WaMessageId::parse(bad).is_err(), "{bad}");
        }
    }
}
