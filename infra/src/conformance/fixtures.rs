//! Entity builders for the checks: valid, distinct values with every optional part that a
//! store must round-trip filled in.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SubsecRound, Utc};
use openwa_core::apikey::{ApiKey, ApiKeySecret, Role};
use openwa_core::audit::AuditEntry;
use openwa_core::content::Content;
use openwa_core::event::{Event, EventType};
use openwa_core::id::{ApiKeyId, AuditId, DeliveryId, EventId, MessageId, SessionId, WebhookId};
use openwa_core::jid::ChatId;
use openwa_core::message::{Direction, Message, MessageStatus};
use openwa_core::session::{DesiredState, Session, SessionConfig};
use openwa_core::webhook::{
    Delivery, DeliveryStatus, EventPattern, Webhook, WebhookSecret, WebhookTarget,
};

/// A time with millisecond precision, which every backend stores exactly.
pub fn at(base: DateTime<Utc>, offset_ms: i64) -> DateTime<Utc> {
    base.trunc_subsecs(3) + chrono::Duration::milliseconds(offset_ms)
}

/// A fixed, recent instant the checks build their times from.
pub fn base_time() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// A session id unique to this run, so backends shared between checks do not collide.
pub fn session_id(prefix: &str) -> SessionId {
    let suffix = ulid::Ulid::new().to_string().to_ascii_lowercase();
    SessionId::parse(&format!("{prefix}-{}", &suffix[14..])).expect("valid session id")
}

pub fn chat(n: u64) -> ChatId {
    ChatId::parse(&format!("4915100000{n:03}@c.us")).expect("valid chat id")
}

/// A session that wants to run, created at `created`.
pub fn session(id: &SessionId, created: DateTime<Utc>) -> Session {
    let mut config = SessionConfig::default();
    config.metadata.insert("team".into(), "sales".into());
    let mut s = Session::new(id.clone(), Some("Sales line".into()), config, created)
        .expect("valid session");
    s.desired = DesiredState::Running;
    s
}

pub fn stopped_session(id: &SessionId, created: DateTime<Utc>) -> Session {
    let mut s = session(id, created);
    s.desired = DesiredState::Stopped;
    s
}

/// An outbound text message, queued, with an optional idempotency key and a fingerprint.
pub fn message(
    session: &SessionId,
    chat_id: &ChatId,
    key: Option<&str>,
    created: DateTime<Utc>,
) -> Message {
    Message {
        id: MessageId::generate(),
        wa_id: None,
        session_id: session.clone(),
        chat_id: chat_id.clone(),
        direction: Direction::Outbound,
        author: None,
        kind: openwa_core::content::MessageType::Text,
        content: Content::Text {
            body: "hello".into(),
            link_preview: false,
        },
        reply_to: None,
        mentions: vec![chat(999)],
        status: MessageStatus::Queued,
        failure: None,
        idempotency_key: key.map(str::to_owned),
        request_fingerprint: Some(format!("fp-{}", key.unwrap_or("none"))),
        created_at: created,
        updated_at: created,
    }
}

pub fn inbound(session: &SessionId, chat_id: &ChatId, created: DateTime<Utc>) -> Message {
    let mut m = message(session, chat_id, None, created);
    m.direction = Direction::Inbound;
    m.status = MessageStatus::Received;
    m.request_fingerprint = None;
    m
}

/// A key and its secret; the hash is the secret's.
pub fn api_key(name: &str, created: DateTime<Utc>) -> (ApiKey, ApiKeySecret) {
    let secret = ApiKeySecret::generate();
    let key = ApiKey {
        id: ApiKeyId::generate(),
        name: name.into(),
        prefix: secret.display_prefix(),
        secret_hash: secret.hash(),
        role: Role::Operator,
        allowed_sessions: Some(BTreeSet::from([session_id("k")])),
        allowed_cidrs: vec!["10.0.0.0/8".parse().expect("cidr")],
        rate_limit_per_minute: Some(120),
        expires_at: Some(created + chrono::Duration::days(30)),
        revoked_at: None,
        last_used_at: None,
        created_at: created,
    };
    (key, secret)
}

pub fn audit(
    action: &str,
    key: Option<&ApiKeyId>,
    session: Option<&SessionId>,
    at: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry {
        id: AuditId::generate(),
        action: action.into(),
        resource: format!("thing:{action}"),
        session_id: session.cloned(),
        key_id: key.cloned(),
        key_name: key.map(|_| "ci".to_owned()),
        source_ip: Some("192.0.2.7".parse().expect("ip")),
        result: "ok".into(),
        at,
    }
}

pub fn webhook(session: Option<&SessionId>, created: DateTime<Utc>) -> Webhook {
    Webhook {
        id: WebhookId::generate(),
        session_id: session.cloned(),
        target: WebhookTarget::parse_http("https://hooks.example.com/in").expect("url"),
        events: vec![EventPattern::parse("message.*").expect("pattern")],
        secret: Some(WebhookSecret::generate()),
        previous_secret: Some(WebhookSecret::generate()),
        previous_secret_until: Some(created + chrono::Duration::hours(24)),
        headers: BTreeMap::from([("X-Team".to_owned(), "sales".to_owned())]),
        hub_signature: true,
        active: true,
        disabled_reason: None,
        created_at: created,
        updated_at: created,
    }
}

pub fn delivery(webhook: &WebhookId, event: &EventId, created: DateTime<Utc>) -> Delivery {
    Delivery {
        id: DeliveryId::generate(),
        webhook_id: webhook.clone(),
        event_id: event.clone(),
        event_type: EventType::MessageReceived,
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_status_code: None,
        last_error: None,
        last_latency_ms: None,
        next_attempt_at: Some(created),
        created_at: created,
        updated_at: created,
    }
}

pub fn event(session: Option<&SessionId>, at: DateTime<Utc>) -> Event {
    let mut e = Event::new(
        EventType::MessageReceived,
        session.cloned(),
        at,
        serde_json::json!({"body": "hi", "n": 1}),
    );
    e.metadata.insert("team".into(), "sales".into());
    e
}
