//! SQS targets: the event JSON as a message on a customer's queue.
//!
//! The port lives in core ([`openwa_core::ports::target`]) so the AWS backend implements it
//! without depending on this crate; it is re-exported here for existing callers. This module
//! builds the message: the body an HTTP delivery would POST, and the Standard Webhooks headers
//! (plus `x-hub-signature-256` when the webhook asks for it) as message attributes. Custom
//! headers and `content-type` are HTTP-only and are not sent.

use chrono::{DateTime, Utc};
use openwa_core::event::Event;
use openwa_core::webhook::Webhook;
use openwa_core::webhook::signature::{
    HEADER_HUB_SIGNATURE, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};

pub use openwa_core::ports::target::{SqsTargetMessage, SqsTargetSender, UnavailableSqs};

use crate::sender::delivery_headers;

/// The group of FIFO target messages of events without a session.
const DEFAULT_GROUP: &str = "openwa";

/// The message for one attempt of delivering `event` (serialised as `body`) to `webhook`,
/// signed at `now`.
pub fn target_message(
    webhook: &Webhook,
    event: &Event,
    now: DateTime<Utc>,
    body: Vec<u8>,
) -> SqsTargetMessage {
    let signed = [
        HEADER_ID,
        HEADER_TIMESTAMP,
        HEADER_SIGNATURE,
        HEADER_HUB_SIGNATURE,
    ];
    let attributes = delivery_headers(webhook, &event.id, now, &body)
        .into_iter()
        .filter(|(name, _)| signed.contains(&name.as_str()))
        .collect();
    SqsTargetMessage {
        // serde_json writes UTF-8; the lossy path is never taken.
        body: String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        attributes,
        dedup_id: event.id.to_string(),
        group: event
            .session_id
            .as_ref()
            .map_or_else(|| DEFAULT_GROUP.to_owned(), ToString::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openwa_core::event::EventType;
    use openwa_core::id::WebhookId;
    use openwa_core::webhook::signature::{SignedHeaders, verify};
    use openwa_core::webhook::{EventPattern, WebhookSecret, WebhookTarget};

    #[test]
    fn the_message_carries_the_event_and_a_verifiable_signature_but_no_custom_headers() {
        let now = Utc::now();
        let secret = WebhookSecret::generate();
        let webhook = Webhook {
            id: WebhookId::generate(),
            session_id: None,
            target: WebhookTarget::parse_sqs("https://sqs.example/1/q").unwrap(),
            events: vec![EventPattern::parse("*").unwrap()],
            secret: Some(secret.clone()),
            previous_secret: None,
            previous_secret_until: None,
            headers: [("authorization".to_owned(), "Bearer x".to_owned())].into(),
            hub_signature: false,
            active: true,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        };
        let event = Event::new(EventType::WebhookTest, None, now, serde_json::json!({}));
        let body = serde_json::to_vec(&event).unwrap();
        let message = target_message(&webhook, &event, now, body.clone());

        assert_eq!(message.body.as_bytes(), body.as_slice());
        assert_eq!(message.dedup_id, event.id.to_string());
        assert_eq!(message.group, "openwa");
        let names: Vec<_> = message.attributes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE]);
        let get = |n: &str| {
            message
                .attributes
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let headers = SignedHeaders::from_lookup(get).unwrap();
        verify(&secret, headers, &body, std::time::Duration::from_secs(60)).unwrap();
    }
}
