//! The deliver function on recorded SQS events: a failing target is a recorded attempt with a
//! retry (not a batch item failure), a malformed record is the only failure, an early job is
//! put back with its delay; and, on moto, an SQS target receives the signed event.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use chrono::Utc;
use openwa_core::clock::SystemClock;
use openwa_core::error::{Error, Result};
use openwa_core::event::Event;
use openwa_core::id::{EventId, WebhookId};
use openwa_core::ports::{Backend, QueueName, SqsTargetMessage, SqsTargetSender};
use openwa_core::webhook::schedule::delivery_id_for;
use openwa_core::webhook::signature::{SignedHeaders, verify};
use openwa_core::webhook::{DeliveryStatus, EventPattern, Webhook, WebhookSecret, WebhookTarget};
use openwa_deliver::{AllowList, DeliverConfig, Deliverer, SsrfGuard};
use openwa_fanout::Fanout;
use openwa_lambda::sqs_event::failed_ids;

/// Subscribed to every event; its target works.
const HOOK_OK: &str = "wh_01JD4YQ2C3D4E5F6G7H8J9K0MN";
/// Subscribed to `message.*`; its target fails.
const HOOK_BROKEN: &str = "wh_01JD4YQ2C3D4E5F6G7H8J9K0MP";
/// The events of `sqs-events-batch.json`.
const MESSAGE_EVENT: &str = "evt_01JD4Z7K8XQ6N5V3T2R1P0M9AB";
const STATUS_EVENT: &str = "evt_01JD4Z7K8XQ6N5V3T2R1P0M9AC";
/// The record of `sqs-deliveries-batch.json` whose body is cut off.
const MALFORMED: &str = "9c4e2a71-0b3d-4f5e-8a6c-7d1e2f3a4b03";

/// SQS targets in memory: `…/broken` refuses, anything else is recorded.
#[derive(Default)]
struct FakeTargets {
    sent: Mutex<Vec<(String, SqsTargetMessage)>>,
}

#[async_trait]
impl SqsTargetSender for FakeTargets {
    async fn send(&self, queue_url: &str, message: &SqsTargetMessage) -> Result<()> {
        if queue_url.ends_with("/broken") {
            return Err(Error::unexpected("SendMessage: AccessDenied"));
        }
        self.sent
            .lock()
            .unwrap()
            .push((queue_url.to_owned(), message.clone()));
        Ok(())
    }
}

struct App {
    backend: Backend,
    deliverer: Deliverer,
    secrets: BTreeMap<&'static str, WebhookSecret>,
    _dir: tempfile::TempDir,
}

/// An embedded backend with the two webhooks (targets from `targets`) and the events of
/// `sqs-events-batch.json` fanned out: three pending deliveries, each with its job queued.
async fn spawn_app(target_ok: &str, targets: Arc<dyn SqsTargetSender>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let backend = openwa_infra::embedded::open(dir.path(), Arc::new(SystemClock)).unwrap();
    backend.queue.ensure(&QueueName::Events).await.unwrap();
    backend.queue.ensure(&QueueName::Deliveries).await.unwrap();
    let mut secrets = BTreeMap::new();
    for (id, pattern, url) in [
        (HOOK_OK, "*", target_ok),
        (
            HOOK_BROKEN,
            "message.*",
            "https://sqs.test/123456789012/broken",
        ),
    ] {
        let w = webhook(id, pattern, url);
        secrets.insert(id, w.secret.clone().unwrap());
        backend.webhooks.create(&w).await.unwrap();
    }
    let fanout = Fanout::from_backend(&backend);
    let response = openwa_lambda::fanout::handle(
        &fanout,
        backend.blobs.as_ref(),
        fixture("sqs-events-batch.json"),
    )
    .await;
    assert_eq!(
        failed_ids(&response).len(),
        1,
        "the fixture's malformed event"
    );
    let guard = SsrfGuard::system(AllowList::default());
    let deliverer =
        openwa_deliver::deliverer_with(&backend, &DeliverConfig::default(), guard, targets)
            .unwrap();
    App {
        backend,
        deliverer,
        secrets,
        _dir: dir,
    }
}

fn webhook(id: &str, pattern: &str, queue_url: &str) -> Webhook {
    let now = Utc::now();
    Webhook {
        id: WebhookId::parse(id).unwrap(),
        session_id: None,
        target: WebhookTarget::parse_sqs(queue_url).unwrap(),
        events: vec![EventPattern::parse(pattern).unwrap()],
        secret: Some(WebhookSecret::generate()),
        previous_secret: None,
        previous_secret_until: None,
        headers: BTreeMap::from([("authorization".to_owned(), "Bearer t".to_owned())]),
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

fn delivery(hook: &str, event: &str) -> openwa_core::id::DeliveryId {
    delivery_id_for(
        &WebhookId::parse(hook).unwrap(),
        &EventId::parse(event).unwrap(),
    )
}

async fn status(app: &App, hook: &str, event: &str) -> (DeliveryStatus, u32) {
    let d = app
        .backend
        .deliveries
        .get(&delivery(hook, event))
        .await
        .unwrap();
    (d.status, d.attempts)
}

async fn queued_jobs(app: &App) -> u64 {
    app.backend
        .queue
        .depth(&QueueName::Deliveries)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failing_target_is_retried_on_schedule_and_only_the_malformed_record_fails() {
    let targets = Arc::new(FakeTargets::default());
    let app = spawn_app("https://sqs.test/123456789012/ok", targets.clone()).await;
    let before = queued_jobs(&app).await;

    let response = openwa_lambda::deliver::handle(
        &app.deliverer,
        app.backend.blobs.as_ref(),
        fixture("sqs-deliveries-batch.json"),
    )
    .await;

    assert_eq!(failed_ids(&response), [MALFORMED]);
    assert_eq!(
        status(&app, HOOK_OK, MESSAGE_EVENT).await,
        (DeliveryStatus::Succeeded, 1)
    );
    assert_eq!(
        status(&app, HOOK_OK, STATUS_EVENT).await,
        (DeliveryStatus::Succeeded, 1)
    );
    assert_eq!(
        status(&app, HOOK_BROKEN, MESSAGE_EVENT).await,
        (DeliveryStatus::Retrying, 1)
    );
    let failed = app
        .backend
        .deliveries
        .attempts(&delivery(HOOK_BROKEN, MESSAGE_EVENT))
        .await
        .unwrap();
    assert!(failed[0].error.as_deref().unwrap().contains("AccessDenied"));
    // The broken target's second attempt is queued with the schedule's delay.
    assert_eq!(queued_jobs(&app).await, before + 1);
    let mut sent: Vec<String> = targets
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m.dedup_id.clone())
        .collect();
    sent.sort();
    assert_eq!(sent, [MESSAGE_EVENT, STATUS_EVENT]);
}

#[tokio::test]
async fn a_job_that_arrives_before_its_delivery_is_due_is_put_back_not_failed() {
    let app = spawn_app(
        "https://sqs.test/123456789012/ok",
        Arc::new(FakeTargets::default()),
    )
    .await;
    openwa_lambda::deliver::handle(
        &app.deliverer,
        app.backend.blobs.as_ref(),
        fixture("sqs-deliveries-batch.json"),
    )
    .await;
    let before = queued_jobs(&app).await;

    // Attempt 2 of the broken target's delivery, delivered right away instead of in 5 s.
    let response = openwa_lambda::deliver::handle(
        &app.deliverer,
        app.backend.blobs.as_ref(),
        fixture("sqs-deliveries-early.json"),
    )
    .await;

    assert!(failed_ids(&response).is_empty());
    assert_eq!(
        status(&app, HOOK_BROKEN, MESSAGE_EVENT).await,
        (DeliveryStatus::Retrying, 1)
    );
    assert_eq!(queued_jobs(&app).await, before + 1);
}

/// On moto (`AWS_ENDPOINT_URL`): a webhook whose target is a real queue gets the event JSON
/// with the Standard Webhooks attributes, and the delivery log records the success.
#[tokio::test]
async fn an_sqs_target_receives_the_signed_event_and_the_delivery_succeeds() {
    let ctx = openwa_aws::testing::context(
        openwa_aws::testing::unique_settings("tgt"),
        Arc::new(SystemClock),
    )
    .await;
    let name = format!("target-{}", unique_suffix());
    let queue_url = ctx
        .sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let targets = Arc::new(openwa_aws::sqs_target::SqsTargets::new(&ctx));
    let app = spawn_app(&queue_url, targets).await;

    let response = openwa_lambda::deliver::handle(
        &app.deliverer,
        app.backend.blobs.as_ref(),
        fixture("sqs-deliveries-sqs-target.json"),
    )
    .await;

    assert!(failed_ids(&response).is_empty());
    let received = ctx
        .sqs
        .receive_message()
        .queue_url(&queue_url)
        .message_attribute_names("All")
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    let body = message.body().unwrap();
    let event: Event = serde_json::from_str(body).unwrap();
    assert_eq!(event.id.as_str(), MESSAGE_EVENT);
    let attributes = message.message_attributes().unwrap();
    let attr = |name: &str| attributes.get(name).and_then(|v| v.string_value());
    assert_eq!(attr("webhook-id"), Some(MESSAGE_EVENT));
    assert_eq!(attr("authorization"), None, "custom headers are HTTP-only");
    let headers = SignedHeaders::from_lookup(attr).unwrap();
    verify(
        &app.secrets[HOOK_OK],
        headers,
        body.as_bytes(),
        Duration::from_secs(300),
    )
    .unwrap();

    assert_eq!(
        status(&app, HOOK_OK, MESSAGE_EVENT).await,
        (DeliveryStatus::Succeeded, 1)
    );
    let log = app
        .backend
        .deliveries
        .attempts(&delivery(HOOK_OK, MESSAGE_EVENT))
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].error, None);
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}")
}
