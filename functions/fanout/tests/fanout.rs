//! Fan-out against the embedded backend: idempotency, partial batch failures, filters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use openwa_core::clock::SystemClock;
use openwa_core::event::{Event, EventType};
use openwa_core::id::{SessionId, WebhookId};
use openwa_core::page::PageRequest;
use openwa_core::ports::{Backend, NewJob, QueueName};
use openwa_core::webhook::{EventPattern, Webhook, WebhookSecret, WebhookTarget};
use openwa_fanout::{Fanout, Handled, handle_batch, handle_events};

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
    App {
        fanout: Fanout::from_backend(&backend),
        backend,
        _dir: dir,
    }
}

async fn subscribe(app: &App, session: Option<&str>, patterns: &[&str]) -> Webhook {
    let now = Utc::now();
    let w = Webhook {
        id: WebhookId::generate(),
        session_id: session.map(|s| SessionId::parse(s).unwrap()),
        target: WebhookTarget::parse_http("https://example.com/hook").unwrap(),
        events: patterns
            .iter()
            .map(|p| EventPattern::parse(p).unwrap())
            .collect(),
        secret: Some(WebhookSecret::generate()),
        previous_secret: None,
        previous_secret_until: None,
        headers: BTreeMap::new(),
        hub_signature: false,
        active: true,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    app.backend.webhooks.create(&w).await.unwrap();
    w
}

fn event(kind: EventType, session: Option<&str>) -> Event {
    Event::new(
        kind,
        session.map(|s| SessionId::parse(s).unwrap()),
        Utc::now(),
        serde_json::json!({"n": 1}),
    )
}

async fn deliveries_of(app: &App, w: &Webhook) -> usize {
    app.backend
        .deliveries
        .list(&w.id, None, &PageRequest::first(100))
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test]
async fn a_redelivered_event_creates_no_duplicate_deliveries() {
    let app = spawn_app().await;
    let hooks = [
        subscribe(&app, None, &["*"]).await,
        subscribe(&app, None, &["message.*"]).await,
    ];
    let e = event(EventType::MessageReceived, Some("sales"));

    let first = app.fanout.expand(e.clone()).await.unwrap();
    let second = app.fanout.expand(e.clone()).await.unwrap();

    assert_eq!(
        (first.seen_before, first.created, first.enqueued),
        (false, 2, 2)
    );
    assert_eq!((second.seen_before, second.created), (true, 0));
    for w in &hooks {
        assert_eq!(deliveries_of(&app, w).await, 1);
    }
}

#[tokio::test]
async fn a_partial_batch_failure_reports_exactly_the_bad_message_ids() {
    let app = spawn_app().await;
    subscribe(&app, None, &["*"]).await;
    let good = |kind| serde_json::to_vec(&event(kind, Some("a"))).unwrap();
    let bodies = vec![
        good(EventType::MessageReceived),
        b"{not json".to_vec(),
        good(EventType::SessionStatus),
        br#"{"id":"evt_nope","type":"message.received"}"#.to_vec(),
        good(EventType::CallReceived),
    ];
    for body in bodies {
        app.backend
            .queue
            .send(
                &QueueName::Events,
                NewJob {
                    body,
                    ..NewJob::default()
                },
            )
            .await
            .unwrap();
    }
    let jobs = app
        .backend
        .queue
        .receive(
            &QueueName::Events,
            10,
            Duration::from_secs(30),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(jobs.len(), 5);
    let bad: Vec<String> = vec![jobs[1].id.clone(), jobs[3].id.clone()];

    let report = handle_events(&app.fanout, jobs).await;

    assert_eq!(report.failed_ids(), bad);
    assert_eq!(
        app.backend
            .queue
            .depth(&QueueName::Deliveries)
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn a_panicking_handler_fails_only_its_own_message() {
    let app = spawn_app().await;
    for n in 0..3u32 {
        app.backend
            .queue
            .send(
                &QueueName::Events,
                NewJob {
                    body: serde_json::to_vec(&n).unwrap(),
                    ..NewJob::default()
                },
            )
            .await
            .unwrap();
    }
    let jobs = app
        .backend
        .queue
        .receive(
            &QueueName::Events,
            10,
            Duration::from_secs(30),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    let panicking = jobs[1].id.clone();

    let report = handle_batch(jobs, |n: u32, _| async move {
        assert_ne!(n, 1, "boom");
        Ok(Handled::Done)
    })
    .await;

    assert_eq!(report.failed_ids(), vec![panicking]);
}

#[tokio::test]
async fn wildcard_filters_match_their_family_and_exact_filters_only_their_type() {
    let app = spawn_app().await;
    let all = subscribe(&app, None, &["*"]).await;
    let messages = subscribe(&app, None, &["message.*"]).await;
    let status = subscribe(&app, None, &["session.status"]).await;

    app.fanout
        .expand(event(EventType::MessageReceived, Some("a")))
        .await
        .unwrap();
    app.fanout
        .expand(event(EventType::MessageAck, Some("a")))
        .await
        .unwrap();
    app.fanout
        .expand(event(EventType::SessionStatus, Some("a")))
        .await
        .unwrap();
    app.fanout
        .expand(event(EventType::GroupJoin, Some("a")))
        .await
        .unwrap();

    assert_eq!(deliveries_of(&app, &all).await, 4);
    assert_eq!(deliveries_of(&app, &messages).await, 2);
    assert_eq!(deliveries_of(&app, &status).await, 1);
}

#[tokio::test]
async fn session_filters_keep_other_sessions_events_out() {
    let app = spawn_app().await;
    let only_a = subscribe(&app, Some("a"), &["*"]).await;
    let every = subscribe(&app, None, &["*"]).await;
    let mut inactive = subscribe(&app, Some("b"), &["*"]).await;
    inactive.active = false;
    app.backend.webhooks.update(&inactive).await.unwrap();

    app.fanout
        .expand(event(EventType::MessageReceived, Some("a")))
        .await
        .unwrap();
    app.fanout
        .expand(event(EventType::MessageReceived, Some("b")))
        .await
        .unwrap();
    app.fanout
        .expand(event(EventType::MessageReceived, None))
        .await
        .unwrap();

    assert_eq!(deliveries_of(&app, &only_a).await, 1);
    assert_eq!(deliveries_of(&app, &every).await, 3);
    assert_eq!(deliveries_of(&app, &inactive).await, 0);
}
