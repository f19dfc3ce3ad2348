//! One example payload per event type, for the `webhooks` section of the OpenAPI document.
//!
//! The `data` shapes follow what the runner, the services and the deliver worker publish (and
//! the table in `docs/webhooks.md`). The match in [`describe`] is exhaustive, so a new
//! [`EventType`] does not compile until it has a summary and an example here; the tests check
//! that every example parses as an [`Event`] and that message records parse as a [`Message`].
//!
//! [`Event`]: openwa_core::event::Event
//! [`Message`]: openwa_core::message::Message

use openwa_core::event::EventType;
use serde_json::{Value, json};

/// The event id, session and time shared by every example.
const EVENT_ID: &str = "evt_01JD4Z7K8XQ6N5V3T2R1P0M9AB";
const SESSION: &str = "sales";
const OCCURRED_AT: &str = "2024-11-26T01:00:00.123Z";
const MESSAGE_ID: &str = "msg_01JD4Z6Y3M2K8Q9W7E5R4T1Y0V";
const WEBHOOK_ID: &str = "wh_01JD4YQ2C3D4E5F6G7H8J9K0MN";
const CONTACT: &str = "15557654321@c.us";
const ME: &str = "15551234567@c.us";
const GROUP: &str = "120363041234567890@g.us";
const INBOUND_WA_ID: &str = "false_15557654321@c.us_3EB0C431D3E5D6A7B2F1";
const OUTBOUND_WA_ID: &str = "true_15557654321@c.us_3EB0A8F2C7D94E1B6A52";

/// A one-line summary of the event type and an example of its `data`.
pub fn describe(t: EventType) -> (&'static str, Value) {
    match t {
        EventType::SessionStatus => (
            "The session's connection status changed",
            json!({
                "status": "connected",
                "me": {"jid": ME, "push_name": "Sales"},
                "last_error": null
            }),
        ),
        EventType::SessionQr => (
            "A new QR code is waiting to be scanned",
            json!({"qr": "2@AbCdEf0123,NoiseKeyB64=,IdentityKeyB64=,AdvSecretB64=", "expires_at": "2024-11-26T01:00:20Z"}),
        ),
        EventType::SessionPairingCode => (
            "A pairing code is ready to be typed on the phone",
            json!({"code": "ABCD-EFGH"}),
        ),
        EventType::MessageReceived => (
            "A message arrived (or was sent from another device of the account)",
            inbound_message(),
        ),
        EventType::MessageQueued => (
            "A send request was accepted and queued",
            json!({"message_id": MESSAGE_ID, "chat_id": CONTACT, "status": "queued"}),
        ),
        EventType::MessageSent => ("A queued message was sent", outbound_message()),
        EventType::MessageAck => (
            "A sent message was delivered to or read by the recipient",
            json!({
                "message_id": MESSAGE_ID,
                "wa_id": OUTBOUND_WA_ID,
                "chat_id": CONTACT,
                "status": "read",
                "ack": "read"
            }),
        ),
        EventType::MessageFailed => (
            "A queued message could not be sent",
            json!({
                "message_id": MESSAGE_ID,
                "chat_id": CONTACT,
                "status": "failed",
                "failure": {"code": "recipient_unavailable", "message": "the number is not on WhatsApp"}
            }),
        ),
        EventType::MessageRevoked => (
            "A message was deleted for everyone",
            json!({"wa_id": INBOUND_WA_ID, "message_id": MESSAGE_ID}),
        ),
        EventType::MessageEdited => (
            "A message was edited",
            json!({"wa_id": INBOUND_WA_ID, "message_id": MESSAGE_ID, "body": "new text"}),
        ),
        EventType::MessageReaction => (
            "Someone reacted to a message",
            json!({"target": OUTBOUND_WA_ID, "message_id": MESSAGE_ID, "sender": CONTACT, "emoji": "👍"}),
        ),
        EventType::GroupJoin => (
            "Participants joined or were added to a group",
            json!({"chat_id": GROUP, "participants": [CONTACT], "by": ME}),
        ),
        EventType::GroupLeave => (
            "Participants left or were removed from a group",
            json!({"chat_id": GROUP, "participants": [CONTACT], "by": null}),
        ),
        EventType::GroupUpdate => (
            "A group's subject, description or settings changed",
            json!({"chat_id": GROUP, "field": "subject", "value": "New name", "by": ME}),
        ),
        EventType::CallReceived => (
            "An incoming call (calls are not answered)",
            json!({"from": CONTACT, "video": false}),
        ),
        EventType::WebhookDisabled => (
            "A webhook was disabled (its endpoint answered 410 Gone)",
            json!({"webhook_id": WEBHOOK_ID, "reason": "the endpoint answered 410 Gone"}),
        ),
        EventType::WebhookTest => (
            "A test event, sent to one webhook on `POST /v1/webhooks/{id}/test` whatever its filter",
            json!({"test": true, "webhook_id": WEBHOOK_ID}),
        ),
        EventType::IngressRejected => (
            "A send command from the SQS ingress queue was refused; it is not retried",
            json!({
                "session": SESSION,
                "idempotency_key": "order-4711",
                "sqs_message_id": "059f36b4-87a3-44ab-83d2-661975830a7d",
                "error": {"code": "not_found", "message": "session not found"}
            }),
        ),
    }
}

/// The full envelope of an example delivery of `t`.
pub fn example(t: EventType) -> Value {
    json!({
        "id": EVENT_ID,
        "type": t.as_str(),
        "session_id": SESSION,
        "occurred_at": OCCURRED_AT,
        "data": describe(t).1,
        "metadata": {"tenant": "acme"}
    })
}

fn inbound_message() -> Value {
    json!({
        "id": MESSAGE_ID,
        "wa_id": INBOUND_WA_ID,
        "session_id": SESSION,
        "chat_id": CONTACT,
        "direction": "inbound",
        "author": null,
        "type": "text",
        "content": {"type": "text", "body": "hi"},
        "reply_to": null,
        "mentions": [],
        "status": "received",
        "failure": null,
        "idempotency_key": null,
        "created_at": "2024-11-26T00:59:59Z",
        "updated_at": OCCURRED_AT,
        "from_me": false,
        "is_forwarded": false
    })
}

fn outbound_message() -> Value {
    json!({
        "id": MESSAGE_ID,
        "wa_id": OUTBOUND_WA_ID,
        "session_id": SESSION,
        "chat_id": CONTACT,
        "direction": "outbound",
        "author": null,
        "type": "text",
        "content": {"type": "text", "body": "Your order has shipped"},
        "reply_to": null,
        "mentions": [],
        "status": "sent",
        "failure": null,
        "idempotency_key": "order-1042-shipped",
        "created_at": "2024-11-26T00:59:58Z",
        "updated_at": OCCURRED_AT,
        "already_sent": false
    })
}

#[cfg(test)]
mod tests {
    use openwa_core::event::Event;
    use openwa_core::message::Message;

    use super::*;

    #[test]
    fn every_example_is_a_valid_event_of_its_type() {
        for t in EventType::ALL {
            let event: Event = serde_json::from_value(example(t))
                .unwrap_or_else(|e| panic!("{}: {e}", t.as_str()));
            assert_eq!(event.kind, t);
            assert!(event.data.is_object(), "{}", t.as_str());
        }
    }

    #[test]
    fn message_examples_are_message_records() {
        for t in [EventType::MessageReceived, EventType::MessageSent] {
            serde_json::from_value::<Message>(describe(t).1)
                .unwrap_or_else(|e| panic!("{}: {e}", t.as_str()));
        }
    }
}
