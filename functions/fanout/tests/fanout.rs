//! Fan-out against the embedded backend: idempotency, partial batch failures, filters, whole
//! batches, jobs that could not be sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use openwa_core::clock::SystemClock;
use openwa_core::error::Error;
use openwa_core::event::{Event, EventType};
use openwa_core::id::{SessionId, WebhookId};
use openwa_core::page::PageRequest;
use openwa_core::ports::{Backend, DeadJob, JobQueue, NewJob, QueueName, ReceivedJob};
use openwa_core::webhook::schedule::delivery_id_for;
use openwa_core::webhook::{DeliveryJob, EventPattern, Webhook, WebhookSecret, WebhookTarget};
use openwa_fanout::{Fanout, Handled, Incoming, handle_batch, handle_events};

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

/// The embedded queue, except that `send_batch` refuses the jobs of one event.
struct RefusingQueue {
    inner: Arc<dyn JobQueue>,
    /// Jobs whose body mentions this (an event id) are refused.
    refuse: std::sync::Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl JobQueue for RefusingQueue {
    async fn ensure(&self, queue: &QueueName) -> openwa_core::Result<()> {
        self.inner.ensure(queue).await
    }
    async fn delete(&self, queue: &QueueName) -> openwa_core::Result<()> {
        self.inner.delete(queue).await
    }
    async fn send(&self, queue: &QueueName, job: NewJob) -> openwa_core::Result<()> {
        self.inner.send(queue, job).await
    }
    async fn send_batch(
        &self,
        queue: &QueueName,
        jobs: Vec<NewJob>,
    ) -> Vec<openwa_core::Result<()>> {
        let refuse = self.refuse.lock().unwrap().clone();
        let mut out = Vec::new();
        for job in jobs {
            let refused = refuse
                .as_deref()
                .is_some_and(|id| String::from_utf8_lossy(&job.body).contains(id));
            out.push(if refused {
                Err(Error::unavailable("SendMessageBatch: throttled"))
            } else {
                self.inner.send(queue, job).await
            });
        }
        out
    }
    async fn receive(
        &self,
        queue: &QueueName,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> openwa_core::Result<Vec<ReceivedJob>> {
        self.inner.receive(queue, max, visibility, wait).await
    }
    async fn ack(&self, queue: &QueueName, receipt: &str) -> openwa_core::Result<()> {
        self.inner.ack(queue, receipt).await
    }
    async fn retry_later(
        &self,
        queue: &QueueName,
        receipt: &str,
        delay: Duration,
    ) -> openwa_core::Result<()> {
        self.inner.retry_later(queue, receipt, delay).await
    }
    async fn extend(
        &self,
        queue: &QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> openwa_core::Result<()> {
        self.inner.extend(queue, receipt, visibility).await
    }
    async fn dead_letter(
        &self,
        queue: &QueueName,
        receipt: &str,
        reason: &str,
    ) -> openwa_core::Result<()> {
        self.inner.dead_letter(queue, receipt, reason).await
    }
    async fn dead_letters(
        &self,
        queue: &QueueName,
        limit: u32,
    ) -> openwa_core::Result<Vec<DeadJob>> {
        self.inner.dead_letters(queue, limit).await
    }
    async fn depth(&self, queue: &QueueName) -> openwa_core::Result<u64> {
        self.inner.depth(queue).await
    }
}

async fn delivery_jobs(app: &App) -> Vec<DeliveryJob> {
    let mut all = Vec::new();
    loop {
        let got = app
            .backend
            .queue
            .receive(
                &QueueName::Deliveries,
                10,
                Duration::from_secs(30),
                Duration::from_millis(100),
            )
            .await
            .unwrap();
        if got.is_empty() {
            return all;
        }
        all.extend(got.iter().map(|j| serde_json::from_slice(&j.body).unwrap()));
    }
}

#[tokio::test]
async fn a_batch_expands_every_event_once_and_its_jobs_carry_the_event() {
    let app = spawn_app().await;
    let hooks = [
        subscribe(&app, Some("a"), &["*"]).await,
        subscribe(&app, None, &["message.*"]).await,
    ];
    let events: Vec<Event> = (0..10)
        .map(|i| {
            event(
                EventType::MessageReceived,
                Some(if i % 2 == 0 { "a" } else { "b" }),
            )
        })
        .collect();
    let mut batch: Vec<Incoming> = events
        .iter()
        .map(|e| Incoming {
            event: e.clone(),
            received_before: false,
        })
        .collect();
    // An SQS duplicate of the first event in the same batch.
    batch.push(batch[0].clone());

    let results = app.fanout.expand_batch(batch).await;

    let created: Vec<usize> = results
        .iter()
        .map(|r| r.as_ref().unwrap().created)
        .collect();
    assert_eq!(created, [2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 0]);
    assert_eq!(deliveries_of(&app, &hooks[0]).await, 5);
    assert_eq!(deliveries_of(&app, &hooks[1]).await, 10);
    let jobs = delivery_jobs(&app).await;
    assert_eq!(
        jobs.len(),
        15,
        "one job per delivery, none for the duplicate"
    );
    for job in &jobs {
        let carried = job.event.as_ref().expect("the job carries its event");
        let webhook = job.webhook_id.as_ref().expect("and its webhook");
        assert!(events.contains(carried));
        assert_eq!(job.delivery_id, delivery_id_for(webhook, &carried.id));
        assert_eq!(job.attempt, Some(1));
    }
}

#[tokio::test]
async fn an_event_whose_jobs_were_not_sent_fails_alone_and_its_retry_sends_them() {
    let dir = tempfile::tempdir().unwrap();
    let backend = openwa_infra::embedded::open(dir.path(), Arc::new(SystemClock)).unwrap();
    backend.queue.ensure(&QueueName::Events).await.unwrap();
    backend.queue.ensure(&QueueName::Deliveries).await.unwrap();
    let refusing = Arc::new(RefusingQueue {
        inner: backend.queue.clone(),
        refuse: std::sync::Mutex::new(None),
    });
    let app = App {
        fanout: Fanout {
            queue: refusing.clone(),
            ..Fanout::from_backend(&backend)
        },
        backend,
        _dir: dir,
    };
    let hook = subscribe(&app, None, &["*"]).await;
    let events: Vec<Event> = (0..3)
        .map(|_| event(EventType::MessageReceived, Some("a")))
        .collect();
    *refusing.refuse.lock().unwrap() = Some(events[1].id.to_string());
    let incoming = |received_before| {
        events
            .iter()
            .map(|e| Incoming {
                event: e.clone(),
                received_before,
            })
            .collect::<Vec<_>>()
    };

    let first = app.fanout.expand_batch(incoming(false)).await;

    assert!(first[0].is_ok() && first[2].is_ok());
    assert!(
        matches!(first[1], Err(Error::Unavailable { .. })),
        "{first:?}"
    );
    assert_eq!(delivery_jobs(&app).await.len(), 2);

    // The failed event's message comes back (received before): its delivery exists and was
    // never attempted, so its job is sent now.
    *refusing.refuse.lock().unwrap() = None;
    let retry = app
        .fanout
        .expand_batch(vec![Incoming {
            event: events[1].clone(),
            received_before: true,
        }])
        .await;

    let again = retry[0].as_ref().unwrap();
    assert_eq!(
        (again.seen_before, again.created, again.enqueued),
        (true, 0, 1)
    );
    let jobs = delivery_jobs(&app).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].event.as_ref().map(|e| &e.id), Some(&events[1].id));
    assert_eq!(deliveries_of(&app, &hook).await, 3);
}
