//! A batch of delivery jobs handled together (the deliver Lambda's way): webhooks are read
//! fresh for the batch, so a change made after fan-out takes effect at once, a failed attempt
//! queues its next one carrying the event, and a duplicate job in a batch posts nothing.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Reply, receiver, spawn_app, test_config};
use openwa_core::event::{Event, EventType};
use openwa_core::id::SessionId;
use openwa_core::ports::QueueName;
use openwa_core::webhook::schedule::delivery_id_for;
use openwa_core::webhook::signature::{self, DEFAULT_TOLERANCE};
use openwa_core::webhook::{DeliveryJob, DeliveryStatus, WebhookSecret};
use openwa_fanout::{Fanout, Handled};

/// Every delivery job waiting on the queue, decoded.
async fn queued_jobs(app: &common::App) -> Vec<DeliveryJob> {
    let mut all = Vec::new();
    loop {
        let got = app
            .backend
            .queue
            .receive(
                &QueueName::Deliveries,
                10,
                Duration::from_secs(30),
                Duration::from_millis(200),
            )
            .await
            .unwrap();
        if got.is_empty() {
            return all;
        }
        all.extend(got.iter().map(|j| serde_json::from_slice(&j.body).unwrap()));
    }
}

fn event() -> Event {
    Event::new(
        EventType::MessageReceived,
        Some(SessionId::parse("sales").unwrap()),
        Utc::now(),
        serde_json::json!({"body": "hi"}),
    )
}

#[tokio::test]
async fn webhooks_changed_after_fanout_take_effect_for_the_batch_at_once() {
    let app = spawn_app(test_config(0.001)).await;
    let (live, live_url) = receiver(Vec::new()).await;
    let (off, off_url) = receiver(Vec::new()).await;
    let (gone, gone_url) = receiver(Vec::new()).await;
    let mut rotated = app.subscribe(&live_url, None, &["*"]).await;
    let mut disabled = app.subscribe(&off_url, None, &["*"]).await;
    let deleted = app.subscribe(&gone_url, None, &["*"]).await;
    let e = event();
    Fanout::from_backend(&app.backend)
        .expand(e.clone())
        .await
        .unwrap();
    let jobs = queued_jobs(&app).await;
    assert_eq!(jobs.len(), 3);
    assert!(jobs.iter().all(|j| j.event.as_ref() == Some(&e)));

    // After fan-out: a new secret, a disabled webhook, a deleted one.
    let new_secret = WebhookSecret::generate();
    rotated.secret = Some(new_secret.clone());
    app.backend.webhooks.update(&rotated).await.unwrap();
    disabled.active = false;
    app.backend.webhooks.update(&disabled).await.unwrap();
    app.backend.webhooks.delete(&deleted.id).await.unwrap();

    let results = app.deliverer.handle_many(jobs).await;

    assert!(
        results.iter().all(|r| matches!(r, Ok(Handled::Done))),
        "{results:?}"
    );
    assert!(off.hits().is_empty(), "a disabled webhook is not posted to");
    assert!(gone.hits().is_empty(), "a deleted webhook is not posted to");
    let hits = live.hits();
    assert_eq!(hits.len(), 1);
    let get = |name: &str| hits[0].headers.get(name).and_then(|v| v.to_str().ok());
    let headers = signature::SignedHeaders::from_lookup(|n| get(n)).unwrap();
    signature::verify(&new_secret, headers, &hits[0].body, DEFAULT_TOLERANCE).unwrap();
    let status = async |w: &openwa_core::webhook::Webhook| {
        let d = app
            .backend
            .deliveries
            .get(&delivery_id_for(&w.id, &e.id))
            .await
            .unwrap();
        (d.status, d.attempts)
    };
    assert_eq!(status(&rotated).await, (DeliveryStatus::Succeeded, 1));
    assert_eq!(status(&disabled).await, (DeliveryStatus::Dead, 0));
    assert_eq!(status(&deleted).await, (DeliveryStatus::Dead, 0));
}

#[tokio::test]
async fn a_failed_attempt_of_a_batch_is_logged_and_its_next_job_carries_the_event() {
    let app = spawn_app(test_config(0.001)).await;
    let (failing, failing_url) = receiver(vec![Reply::Status(503)]).await;
    let (fine, fine_url) = receiver(Vec::new()).await;
    let broken = app.subscribe(&failing_url, None, &["*"]).await;
    let ok = app.subscribe(&fine_url, None, &["*"]).await;
    let e = event();
    Fanout::from_backend(&app.backend)
        .expand(e.clone())
        .await
        .unwrap();
    let jobs = queued_jobs(&app).await;

    let results = app.deliverer.handle_many(jobs).await;

    assert!(
        results.iter().all(|r| matches!(r, Ok(Handled::Done))),
        "{results:?}"
    );
    assert_eq!((failing.hits().len(), fine.hits().len()), (1, 1));
    let failed = app
        .backend
        .deliveries
        .get(&delivery_id_for(&broken.id, &e.id))
        .await
        .unwrap();
    assert_eq!(
        (failed.status, failed.attempts),
        (DeliveryStatus::Retrying, 1)
    );
    let log = app.backend.deliveries.attempts(&failed.id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status_code, Some(503));
    let succeeded = app
        .backend
        .deliveries
        .get(&delivery_id_for(&ok.id, &e.id))
        .await
        .unwrap();
    assert_eq!(
        (succeeded.status, succeeded.attempts),
        (DeliveryStatus::Succeeded, 1)
    );

    tokio::time::sleep(Duration::from_millis(50)).await;
    let next = queued_jobs(&app).await;
    assert_eq!(next.len(), 1, "only the failed delivery is retried");
    assert_eq!(next[0].delivery_id, failed.id);
    assert_eq!(next[0].attempt, Some(2));
    assert_eq!(next[0].webhook_id.as_ref(), Some(&broken.id));
    assert_eq!(next[0].event.as_ref(), Some(&e));
    // Its second attempt succeeds; a duplicate of its job in the same batch posts nothing.
    let mut next = next;
    next.push(next[0].clone());
    let results = app.deliverer.handle_many(next).await;
    assert!(
        matches!(results[..], [Ok(Handled::Done), Ok(Handled::Done)]),
        "{results:?}"
    );
    assert_eq!(failing.hits().len(), 2);
    let done = app.backend.deliveries.get(&failed.id).await.unwrap();
    assert_eq!((done.status, done.attempts), (DeliveryStatus::Succeeded, 2));
}
