//! The fan-out function on recorded SQS events, against the embedded backend: partial batch
//! failures name exactly the bad records, and redelivered records add nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::Utc;
use openwa_core::clock::SystemClock;
use openwa_core::id::WebhookId;
use openwa_core::page::PageRequest;
use openwa_core::ports::{Backend, QueueName};
use openwa_core::webhook::{EventPattern, Webhook, WebhookSecret, WebhookTarget};
use openwa_fanout::Fanout;
use openwa_lambda::sqs_event::failed_ids;

/// Subscribed to every event.
const HOOK_ALL: &str = "wh_01JD4YQ2C3D4E5F6G7H8J9K0MN";
/// Subscribed to `message.*`.
const HOOK_MESSAGES: &str = "wh_01JD4YQ2C3D4E5F6G7H8J9K0MP";
/// The record of `sqs-events-batch.json` whose body is cut off.
const MALFORMED: &str = "5b1a3f0e-6c2d-4c1e-9a57-0d6f3b2c1a02";

struct App {
    backend: Backend,
    fanout: Fanout,
    _dir: tempfile::TempDir,
}

async fn spawn_app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let backend = openwa_infra::embedded::open(dir.path(), Arc::new(SystemClock)).unwrap();
    backend.queue.ensure(&QueueName::Events).await.unwrap();
    backend.queue.ensure(&QueueName::Deliveries).await.unwrap();
    for (id, pattern) in [(HOOK_ALL, "*"), (HOOK_MESSAGES, "message.*")] {
        backend
            .webhooks
            .create(&webhook(id, pattern))
            .await
            .unwrap();
    }
    App {
        fanout: Fanout::from_backend(&backend),
        backend,
        _dir: dir,
    }
}

fn webhook(id: &str, pattern: &str) -> Webhook {
    let now = Utc::now();
    Webhook {
        id: WebhookId::parse(id).unwrap(),
        session_id: None,
        target: WebhookTarget::parse_http("https://example.com/hook").unwrap(),
        events: vec![EventPattern::parse(pattern).unwrap()],
        secret: Some(WebhookSecret::generate()),
        previous_secret: None,
        previous_secret_until: None,
        headers: BTreeMap::new(),
        hub_signature: false,
        active: true,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    }
}

fn fixture(name: &str) -> SqsEvent {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A fixture as redelivered: every record received once more.
fn received_again(mut event: SqsEvent) -> SqsEvent {
    for r in &mut event.records {
        let n: u32 = r.attributes["ApproximateReceiveCount"].parse().unwrap();
        r.attributes
            .insert("ApproximateReceiveCount".into(), (n + 1).to_string());
    }
    event
}

async fn deliveries(app: &App) -> usize {
    let mut n = 0;
    for id in [HOOK_ALL, HOOK_MESSAGES] {
        n += app
            .backend
            .deliveries
            .list(
                &WebhookId::parse(id).unwrap(),
                None,
                &PageRequest::first(100),
            )
            .await
            .unwrap()
            .items
            .len();
    }
    n
}

async fn delivery_jobs(app: &App) -> u64 {
    app.backend
        .queue
        .depth(&QueueName::Deliveries)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_malformed_record_among_good_ones_is_the_only_batch_item_failure() {
    let app = spawn_app().await;

    let response = openwa_lambda::fanout::handle(
        &app.fanout,
        app.backend.blobs.as_ref(),
        fixture("sqs-events-batch.json"),
    )
    .await;

    assert_eq!(failed_ids(&response), [MALFORMED]);
    // message.received -> both webhooks; session.status -> the catch-all one.
    assert_eq!(deliveries(&app).await, 3);
    assert_eq!(delivery_jobs(&app).await, 3);
}

#[tokio::test]
async fn a_duplicate_copy_of_a_handled_event_creates_no_deliveries_and_no_jobs() {
    let app = spawn_app().await;
    openwa_lambda::fanout::handle(
        &app.fanout,
        app.backend.blobs.as_ref(),
        fixture("sqs-events-batch.json"),
    )
    .await;

    let response = openwa_lambda::fanout::handle(
        &app.fanout,
        app.backend.blobs.as_ref(),
        fixture("sqs-events-batch.json"),
    )
    .await;

    assert_eq!(failed_ids(&response), [MALFORMED]);
    assert_eq!(deliveries(&app).await, 3);
    assert_eq!(delivery_jobs(&app).await, 3);
}

#[tokio::test]
async fn a_record_received_again_re_sends_only_jobs_of_never_attempted_deliveries() {
    let app = spawn_app().await;
    openwa_lambda::fanout::handle(
        &app.fanout,
        app.backend.blobs.as_ref(),
        fixture("sqs-events-batch.json"),
    )
    .await;
    // The first run's jobs were lost (say it died before they were sent).
    let lost = app
        .backend
        .queue
        .receive(
            &QueueName::Deliveries,
            10,
            std::time::Duration::from_secs(60),
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
    for job in &lost {
        app.backend
            .queue
            .ack(&QueueName::Deliveries, &job.receipt)
            .await
            .unwrap();
    }

    let again = received_again(fixture("sqs-events-batch.json"));
    let response =
        openwa_lambda::fanout::handle(&app.fanout, app.backend.blobs.as_ref(), again).await;

    assert_eq!(failed_ids(&response), [MALFORMED]);
    assert_eq!(deliveries(&app).await, 3);
    assert_eq!(delivery_jobs(&app).await, 3);
}
