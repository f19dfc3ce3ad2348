//! Identifier newtypes. Each has private fields and a `parse` constructor, so a value of the
//! type is proof that the string was checked once, at the edge.
//!
//! Gateway-generated ids are `<prefix>_<ULID>`: sortable by creation time, which the stores use
//! for newest-first pagination.

use crate::error::Error;

/// Implements the shared plumbing (Display, FromStr, serde via `parse`, schema as string).
macro_rules! string_newtype {
    ($name:ident, $what:expr) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> ::std::result::Result<Self, $crate::error::Error> {
                Self::parse(s)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let raw = <String as ::serde::Deserialize>::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($what))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use string_newtype;

/// Declares a `<prefix>_<ULID>` identifier.
macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, ulid::Ulid::new()))
            }

            pub fn parse(raw: &str) -> Result<Self, Error> {
                let ulid = raw
                    .strip_prefix($prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .ok_or_else(|| Error::invalid("id", concat!("expected an id like ", $prefix, "_<ULID>")))?;
                let parsed = ulid::Ulid::from_string(ulid)
                    .map_err(|_| Error::invalid("id", concat!("expected an id like ", $prefix, "_<ULID>")))?;
                // Ulid's Display is the canonical upper-case form.
                Ok(Self(format!("{}_{}", $prefix, parsed)))
            }
        }

        string_newtype!($name, concat!("Identifier `", $prefix, "_<ULID>`."));
    };
}

ulid_id!(
    /// Gateway message id, `msg_<ULID>`; also the send job's deduplication id.
    MessageId,
    "msg"
);
ulid_id!(
    /// Event id, `evt_<ULID>`; the `webhook-id` header of every delivery of the event.
    EventId,
    "evt"
);
ulid_id!(
    /// API key id, `key_<ULID>` (not secret).
    ApiKeyId,
    "key"
);
ulid_id!(
    /// Webhook subscription id, `wh_<ULID>`.
    WebhookId,
    "wh"
);
ulid_id!(
    /// Delivery id, `dlv_<ULID>`: one event to one subscription.
    DeliveryId,
    "dlv"
);
ulid_id!(
    /// Uploaded media id, `med_<ULID>`.
    MediaId,
    "med"
);
ulid_id!(
    /// Audit entry id, `aud_<ULID>`.
    AuditId,
    "aud"
);

/// A user-chosen session slug: `[a-z0-9-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, Error> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(Error::invalid("session_id", "must be 1 to 64 characters"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::invalid(
                "session_id",
                "may contain only lower-case letters, digits and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

string_newtype!(
    SessionId,
    "Session id: a slug of lower-case letters, digits and '-', 1 to 64 characters."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_message_id_parses_back_to_itself() {
        let id = MessageId::generate();
        assert!(id.as_str().starts_with("msg_"));
        assert_eq!(MessageId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn an_id_with_the_wrong_prefix_is_refused() {
        let evt = EventId::generate();
        assert!(MessageId::parse(evt.as_str()).is_err());
        assert!(MessageId::parse("msg_").is_err());
        assert!(MessageId::parse("msg_not-a-ulid").is_err());
        assert!(MessageId::parse("01HZZZZZZZZZZZZZZZZZZZZZZZ").is_err());
    }

    #[test]
    fn lower_case_ulids_are_normalised() {
        let id = MessageId::generate();
        let lower = format!("msg_{}", id.as_str()[4..].to_ascii_lowercase());
        assert_eq!(MessageId::parse(&lower).unwrap(), id);
    }

    #[test]
    fn session_ids_accept_slugs_only() {
        assert!(SessionId::parse("sales-1").is_ok());
        assert!(SessionId::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "Sales", "a b", "a_b", "ümlaut", "a/b", &"a".repeat(65)] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn ids_round_trip_through_json() {
        let id = SessionId::parse("s1").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"s1\"");
        let back: SessionId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<SessionId>("\"S 1\"").is_err());
    }
}
