//! Webhook subscriptions and their deliveries.
//!
//! Layout:
//! - this file: the entities (`Webhook`, `WebhookTarget`, `EventPattern`, `WebhookSecret`,
//!   `Delivery`, `DeliveryAttempt`)
//! - [`signature`]: Standard Webhooks signing and the receiver-side [`signature::verify`]
//! - [`schedule`]: the retry schedule, the delivery job and deterministic delivery ids
//! - [`guard`]: the SSRF address rules and the [`guard::UrlGuard`] port
//! - [`headers`]: which custom delivery headers a subscription may set

use std::collections::BTreeMap;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;
use crate::event::EventType;
use crate::id::{DeliveryId, EventId, SessionId, WebhookId};
use chrono::{DateTime, Utc};

pub mod guard;
pub mod headers;
pub mod schedule;
pub mod signature;

pub use guard::UrlGuard;
pub use schedule::{DeliveryJob, RetrySchedule};

/// Where deliveries go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WebhookTarget {
    /// Signed HTTP POST to this URL.
    Http { url: String },
    /// The event JSON as an SQS message on this queue.
    Sqs { queue_url: String },
}

impl WebhookTarget {
    /// Syntax checks only; the SSRF guard checks addresses separately.
    pub fn parse_http(url: &str) -> Result<Self, Error> {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(Error::invalid("url", "must be an http(s) URL"));
        }
        if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid(
                "url",
                "must be at most 2048 characters without spaces",
            ));
        }
        let after_scheme = &url[url.find("://").map_or(0, |i| i + 3)..];
        let authority = after_scheme
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(Error::invalid(
                "url",
                "needs a host and must not carry credentials",
            ));
        }
        Ok(Self::Http {
            url: url.to_owned(),
        })
    }

    pub fn parse_sqs(queue_url: &str) -> Result<Self, Error> {
        if !(queue_url.starts_with("https://") || queue_url.starts_with("http://"))
            || queue_url.len() > 2048
        {
            return Err(Error::invalid("sqs_queue_url", "must be an SQS queue URL"));
        }
        Ok(Self::Sqs {
            queue_url: queue_url.to_owned(),
        })
    }
}

/// An event filter: `*`, a prefix wildcard like `message.*`, or an exact type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventPattern(String);

impl EventPattern {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        if raw == "*" {
            return Ok(Self(raw.to_owned()));
        }
        if let Some(prefix) = raw.strip_suffix(".*") {
            if EventType::ALL
                .iter()
                .any(|t| t.as_str().starts_with(&format!("{prefix}.")))
            {
                return Ok(Self(raw.to_owned()));
            }
            return Err(Error::invalid(
                "events",
                format!("no event type matches {raw:?}"),
            ));
        }
        EventType::parse(raw)
            .map_err(|_| Error::invalid("events", format!("unknown event type {raw:?}")))?;
        Ok(Self(raw.to_owned()))
    }

    pub fn matches(&self, t: EventType) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => t.as_str().starts_with(prefix),
            None => self.0 == t.as_str(),
        }
    }
}

crate::id::string_newtype!(
    EventPattern,
    "Event filter: `*`, `message.*` or an exact event type."
);

/// A signing secret, `whsec_<base64 of 32 random bytes>`.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose_secret() == other.0.expose_secret()
    }
}
impl Eq for WebhookSecret {}

impl WebhookSecret {
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(SecretString::from(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )))
    }

    pub fn parse(raw: &str) -> Result<Self, Error> {
        let b64 = raw
            .strip_prefix("whsec_")
            .ok_or_else(|| Error::invalid("secret", "must start with whsec_"))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| Error::invalid("secret", "must be whsec_ followed by base64"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(Error::invalid("secret", "must carry 24 to 64 bytes"));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// The HMAC key: the decoded bytes after `whsec_`.
    pub fn key_bytes(&self) -> Vec<u8> {
        let b64 = self.0.expose_secret().trim_start_matches("whsec_");
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap_or_default()
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: WebhookId,
    /// One session, or all sessions when absent.
    pub session_id: Option<SessionId>,
    pub target: WebhookTarget,
    pub events: Vec<EventPattern>,
    #[serde(skip)]
    #[schema(ignore)]
    pub secret: Option<WebhookSecret>,
    /// The secret being rotated out; it keeps signing until `previous_secret_until`.
    #[serde(skip)]
    #[schema(ignore)]
    pub previous_secret: Option<WebhookSecret>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// Extra headers sent with every delivery (reserved signature headers are refused).
    pub headers: BTreeMap<String, String>,
    /// Also send Meta-style `X-Hub-Signature-256`.
    pub hub_signature: bool,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    pub fn wants(&self, session: Option<&SessionId>, t: EventType) -> bool {
        self.active
            && self.session_id.as_ref().is_none_or(|s| Some(s) == session)
            && self.events.iter().any(|p| p.matches(t))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    /// Failed at least once; another attempt is scheduled.
    Retrying,
    /// Out of attempts (or the webhook was disabled); redeliverable through the API.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Retrying => "retrying",
            Self::Dead => "dead",
        }
    }
}

/// One event on its way to one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<u64>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The record of one HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    pub delivery_id: DeliveryId,
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_patterns_match_their_family_only() {
        let p = EventPattern::parse("message.*").unwrap();
        assert!(p.matches(EventType::MessageReceived));
        assert!(!p.matches(EventType::SessionStatus));
        assert!(
            EventPattern::parse("*")
                .unwrap()
                .matches(EventType::CallReceived)
        );
        assert!(EventPattern::parse("nope.*").is_err());
        assert!(EventPattern::parse("message.nope").is_err());
    }

    #[test]
    fn generated_secrets_parse_and_yield_32_key_bytes() {
        let s = WebhookSecret::generate();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(
            WebhookSecret::parse(s.expose()).unwrap().key_bytes().len(),
            32
        );
        assert!(WebhookSecret::parse("whsec_!!").is_err());
        assert!(!format!("{s:?}").contains(s.expose()));
    }

    #[test]
    fn http_targets_refuse_other_schemes_and_credentials() {
        assert!(WebhookTarget::parse_http("https://example.com/hook").is_ok());
        assert!(WebhookTarget::parse_http("ftp://example.com").is_err());
        assert!(WebhookTarget::parse_http("https://user:pw@example.com/").is_err());
        assert!(WebhookTarget::parse_http("https:///path").is_err());
    }
}
