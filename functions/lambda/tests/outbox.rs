//! The outbox function on a recorded DynamoDB stream batch, against the embedded backend's
//! session store and queue: only outbox inserts are forwarded, with the session's metadata, an
//! undecodable outbox record is skipped, and an event that could not be sent is reported by
//! its record's sequence number (and only that one).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use openwa_aws::outbox::OutboxRelay;
use openwa_core::clock::SystemClock;
use openwa_core::error::{Error, Result};
use openwa_core::event::Event;
use openwa_core::id::SessionId;
use openwa_core::ports::{Backend, DeadJob, JobQueue, NewJob, QueueName, ReceivedJob};
use openwa_core::session::{Session, SessionConfig};
use openwa_lambda::outbox::{ItemFailure, StreamEvent, handle};

fn batch() -> StreamEvent {
    let raw = include_str!("data/dynamodb-outbox-batch.json");
    serde_json::from_str(raw).expect("the fixture is a stream event")
}

async fn backend(dir: &tempfile::TempDir) -> Backend {
    let backend = openwa_infra::embedded::open(dir.path(), Arc::new(SystemClock)).unwrap();
    let mut config = SessionConfig::default();
    config.metadata.insert("team".into(), "sales".into());
    let session = Session::new(SessionId::parse("sales").unwrap(), None, config, Utc::now())
        .expect("a valid session");
    backend.sessions.create(&session).await.unwrap();
    backend
}

async fn queued(queue: &dyn JobQueue) -> Vec<Event> {
    let jobs = queue
        .receive(
            &QueueName::Events,
            10,
            Duration::from_secs(30),
            Duration::ZERO,
        )
        .await
        .unwrap();
    jobs.iter()
        .map(|j| serde_json::from_slice(&j.body).unwrap())
        .collect()
}

#[tokio::test]
async fn outbox_inserts_reach_the_events_queue_with_the_session_s_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(&dir).await;
    let relay = OutboxRelay::new(backend.sessions.clone(), backend.queue.clone());

    let response = handle(&relay, batch()).await;

    assert_eq!(response.batch_item_failures, vec![]);
    let events = queued(backend.queue.as_ref()).await;
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "evt_01JD4Z7K8XQ6N5V3T2R1P0M9AA",
            "evt_01JD4Z7K8XQ6N5V3T2R1P0M9AD"
        ]
    );
    for event in &events {
        assert_eq!(
            event.metadata.get("team").map(String::as_str),
            Some("sales")
        );
    }
}

/// The embedded queue, except that sends of events whose body contains "second" fail.
struct FlakyQueue(Arc<dyn JobQueue>);

#[async_trait]
impl JobQueue for FlakyQueue {
    async fn ensure(&self, queue: &QueueName) -> Result<()> {
        self.0.ensure(queue).await
    }
    async fn delete(&self, queue: &QueueName) -> Result<()> {
        self.0.delete(queue).await
    }
    async fn send(&self, queue: &QueueName, job: NewJob) -> Result<()> {
        if String::from_utf8_lossy(&job.body).contains("second") {
            return Err(Error::unavailable("the queue refused this one"));
        }
        self.0.send(queue, job).await
    }
    async fn receive(
        &self,
        queue: &QueueName,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedJob>> {
        self.0.receive(queue, max, visibility, wait).await
    }
    async fn ack(&self, queue: &QueueName, receipt: &str) -> Result<()> {
        self.0.ack(queue, receipt).await
    }
    async fn retry_later(&self, queue: &QueueName, receipt: &str, delay: Duration) -> Result<()> {
        self.0.retry_later(queue, receipt, delay).await
    }
    async fn extend(&self, queue: &QueueName, receipt: &str, visibility: Duration) -> Result<()> {
        self.0.extend(queue, receipt, visibility).await
    }
    async fn dead_letter(&self, queue: &QueueName, receipt: &str, reason: &str) -> Result<()> {
        self.0.dead_letter(queue, receipt, reason).await
    }
    async fn dead_letters(&self, queue: &QueueName, limit: u32) -> Result<Vec<DeadJob>> {
        self.0.dead_letters(queue, limit).await
    }
    async fn depth(&self, queue: &QueueName) -> Result<u64> {
        self.0.depth(queue).await
    }
}

#[tokio::test]
async fn an_event_that_could_not_be_sent_is_reported_by_its_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(&dir).await;
    let flaky: Arc<dyn JobQueue> = Arc::new(FlakyQueue(backend.queue.clone()));
    let relay = OutboxRelay::new(backend.sessions.clone(), flaky);

    let response = handle(&relay, batch()).await;

    assert_eq!(
        response.batch_item_failures,
        vec![ItemFailure {
            item_identifier: "100000000000000000005".into()
        }]
    );
    let events = queued(backend.queue.as_ref()).await;
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["evt_01JD4Z7K8XQ6N5V3T2R1P0M9AA"]);
}
