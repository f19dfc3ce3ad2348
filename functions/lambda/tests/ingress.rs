//! The ingress function on recorded SQS events, against the embedded backend: accepted
//! commands become messages with `message.queued`, duplicates replay, invalid ones are answered
//! with `ingress.rejected` and not retried, an unavailable store is retried.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use chrono::Utc;
use openwa_core::clock::SystemClock;
use openwa_core::error::{Error, Result};
use openwa_core::event::{Event, EventType};
use openwa_core::id::{MessageId, SessionId};
use openwa_core::jid::WaMessageId;
use openwa_core::message::{Message, StatusUpdate};
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::{Acceptance, Backend, Inserted, MessageFilter, MessageStore, QueueName};
use openwa_core::session::{Session, SessionConfig};
use openwa_lambda::ingress::Ingress;
use openwa_lambda::sqs_event::failed_ids;

const SESSION: &str = "sales";
/// The records of `sqs-ingress-batch.json`.
const ACCEPTED: &str = "3f2d1c0b-a9e8-47d6-b5c4-d3e2f1a0b901";
const NOT_JSON: &str = "3f2d1c0b-a9e8-47d6-b5c4-d3e2f1a0b903";
const UNKNOWN_SESSION: &str = "3f2d1c0b-a9e8-47d6-b5c4-d3e2f1a0b904";
const INVALID: &str = "3f2d1c0b-a9e8-47d6-b5c4-d3e2f1a0b905";
/// The one record of `sqs-ingress-single.json`.
const SINGLE: &str = "3f2d1c0b-a9e8-47d6-b5c4-d3e2f1a0b906";

struct App {
    backend: Backend,
    _dir: tempfile::TempDir,
}

/// An embedded backend with the session `sales`.
async fn spawn_app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let backend = openwa_infra::embedded::open(dir.path(), Arc::new(SystemClock)).unwrap();
    backend.queue.ensure(&QueueName::Events).await.unwrap();
    let session = Session::new(
        SessionId::parse(SESSION).unwrap(),
        None,
        SessionConfig::default(),
        Utc::now(),
    )
    .unwrap();
    backend.sessions.create(&session).await.unwrap();
    App { backend, _dir: dir }
}

fn fixture(name: &str) -> SqsEvent {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn messages(app: &App) -> Vec<Message> {
    app.backend
        .messages
        .list(
            &SessionId::parse(SESSION).unwrap(),
            &MessageFilter::default(),
            &PageRequest::first(100),
        )
        .await
        .unwrap()
        .items
}

/// Takes every event published so far.
async fn published(app: &App) -> Vec<Event> {
    let mut out = vec![];
    loop {
        let jobs = app
            .backend
            .queue
            .receive(
                &QueueName::Events,
                10,
                Duration::from_secs(60),
                Duration::ZERO,
            )
            .await
            .unwrap();
        if jobs.is_empty() {
            return out;
        }
        for job in jobs {
            out.push(serde_json::from_slice(&job.body).unwrap());
            app.backend
                .queue
                .ack(&QueueName::Events, &job.receipt)
                .await
                .unwrap();
        }
    }
}

fn rejected_ids(events: &[Event]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .filter(|e| e.kind == EventType::IngressRejected)
        .map(|e| e.data["sqs_message_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn accepted_duplicate_and_rejected_commands_are_all_settled_without_retries() {
    let app = spawn_app().await;
    let ingress = Ingress::new(app.backend.clone());

    let response =
        openwa_lambda::ingress::handle(&ingress, fixture("sqs-ingress-batch.json")).await;

    assert!(failed_ids(&response).is_empty(), "{response:?}");
    // The command and its duplicate (same idempotency key) make one message.
    let stored = messages(&app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].idempotency_key.as_deref(), Some("order-4711"));
    let events = published(&app).await;
    let queued: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventType::MessageQueued)
        .collect();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].data["id"], stored[0].id.as_str());
    assert_eq!(rejected_ids(&events), [NOT_JSON, UNKNOWN_SESSION, INVALID]);
    assert_eq!(events.len(), 4, "{events:#?}");
}

#[tokio::test]
async fn a_rejection_event_names_the_error_and_the_command() {
    let app = spawn_app().await;
    let ingress = Ingress::new(app.backend.clone());

    openwa_lambda::ingress::handle(&ingress, fixture("sqs-ingress-batch.json")).await;

    let events = published(&app).await;
    let of = |id: &str| {
        events
            .iter()
            .find(|e| e.kind == EventType::IngressRejected && e.data["sqs_message_id"] == id)
            .unwrap()
            .clone()
    };
    let ghost = of(UNKNOWN_SESSION);
    assert_eq!(ghost.session_id.as_ref().map(|s| s.as_str()), Some("ghost"));
    assert_eq!(ghost.data["session"], "ghost");
    assert_eq!(ghost.data["idempotency_key"], "order-4713");
    assert_eq!(ghost.data["error"]["code"], "not_found");
    let invalid = of(INVALID);
    assert_eq!(invalid.data["error"]["code"], "invalid_request");
    assert_eq!(invalid.data["error"]["field"], "text");
    assert_eq!(of(NOT_JSON).data["error"]["code"], "malformed_json");
}

#[tokio::test]
async fn a_redelivered_batch_creates_no_second_message_and_repeats_rejections_by_id() {
    let app = spawn_app().await;
    let ingress = Ingress::new(app.backend.clone());
    openwa_lambda::ingress::handle(&ingress, fixture("sqs-ingress-batch.json")).await;
    let first = published(&app).await;

    let response =
        openwa_lambda::ingress::handle(&ingress, fixture("sqs-ingress-batch.json")).await;

    assert!(failed_ids(&response).is_empty());
    assert_eq!(messages(&app).await.len(), 1);
    let second = published(&app).await;
    assert!(second.iter().all(|e| e.kind == EventType::IngressRejected));
    // Same event ids: fan-out stores and delivers each rejection once.
    let ids = |events: &[Event]| {
        let mut ids: Vec<String> = events
            .iter()
            .filter(|e| e.kind == EventType::IngressRejected)
            .map(|e| e.id.to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&second), ids(&first));
    assert!(second.iter().all(|e| e.data["sqs_message_id"] != ACCEPTED));
}

#[tokio::test]
async fn an_unavailable_message_store_is_a_batch_item_failure_and_answers_nothing() {
    let app = spawn_app().await;
    let mut backend = app.backend.clone();
    backend.messages = Arc::new(DownMessages);
    let ingress = Ingress::new(backend);

    let response =
        openwa_lambda::ingress::handle(&ingress, fixture("sqs-ingress-single.json")).await;

    assert_eq!(failed_ids(&response), [SINGLE]);
    assert!(published(&app).await.is_empty());
    assert!(messages(&app).await.is_empty());
}

/// A message store whose database is down.
struct DownMessages;

fn down<T>() -> Result<T> {
    Err(Error::unavailable("the message store is down"))
}

#[async_trait]
impl MessageStore for DownMessages {
    async fn insert(&self, _: &Message) -> Result<Inserted> {
        down()
    }
    async fn accept(&self, _: &Acceptance) -> Result<Inserted> {
        down()
    }
    async fn get(&self, _: &SessionId, _: &MessageId) -> Result<Message> {
        down()
    }
    async fn get_by_wa_id(&self, _: &SessionId, _: &WaMessageId) -> Result<Message> {
        down()
    }
    async fn list(
        &self,
        _: &SessionId,
        _: &MessageFilter,
        _: &PageRequest,
    ) -> Result<Page<Message>> {
        down()
    }
    async fn update_status(
        &self,
        _: &SessionId,
        _: &MessageId,
        _: &StatusUpdate,
    ) -> Result<Message> {
        down()
    }
    async fn delete_session(&self, _: &SessionId) -> Result<u64> {
        down()
    }
}
