//! Checks for the batch operations of fan-out and delivery: events with their deliveries
//! written together, batch reads of deliveries and webhooks, an attempt recorded together with
//! its delivery's new state, and batch sends and acks on the job queue.

use std::collections::HashSet;
use std::time::Duration;

use openwa_core::Error;
use openwa_core::event::Event;
use openwa_core::id::{DeliveryId, EventId, WebhookId};
use openwa_core::page::PageRequest;
use openwa_core::ports::store::{Expansion, ExpansionStored};
use openwa_core::ports::{NewJob, QueueName};
use openwa_core::webhook::schedule::delivery_id_for;
use openwa_core::webhook::{Delivery, DeliveryAttempt, DeliveryStatus};

use super::Fixture;
use super::fixtures::{at, base_time, delivery, event, session_id, webhook};
use crate::assert_err;

/// `event` expanded to a delivery per webhook, with fan-out's deterministic ids.
fn expansion(event: &Event, hooks: &[&WebhookId]) -> Expansion {
    Expansion {
        event: event.clone(),
        deliveries: hooks
            .iter()
            .map(|w| Delivery {
                id: delivery_id_for(w, &event.id),
                ..delivery(w, &event.id, event.occurred_at)
            })
            .collect(),
    }
}

fn stored(event_new: bool, created: &[bool]) -> ExpansionStored {
    ExpansionStored {
        event_new,
        created: created.to_vec(),
    }
}

pub async fn a_fanout_batch_stores_each_event_and_delivery_once(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let base = base_time();
    let (w1, w2) = (WebhookId::generate(), WebhookId::generate());
    let session = session_id("x");
    let events: Vec<Event> = (0..10)
        .map(|i| event(Some(&session), at(base, i)))
        .collect();
    let first: Vec<Expansion> = events.iter().map(|e| expansion(e, &[&w1, &w2])).collect();

    let done = fx
        .backend
        .deliveries
        .create_expansions(&first)
        .await
        .unwrap();

    assert_eq!(done, vec![stored(true, &[true, true]); 10]);
    for e in &events {
        assert_eq!(&fx.backend.events.get(&e.id).await.unwrap(), e);
    }
    let listed = fx
        .backend
        .deliveries
        .list(&w1, None, &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 10);

    // A rerun with one new event, one repeated within the batch, and a new subscription on an
    // old event: only what is new is written.
    let (late, w3) = (event(Some(&session), at(base, 50)), WebhookId::generate());
    let rerun = vec![
        expansion(&events[0], &[&w1, &w2, &w3]),
        expansion(&late, &[&w1]),
        expansion(&events[1], &[&w1, &w2]),
        expansion(&late, &[&w1]),
    ];
    let done = fx
        .backend
        .deliveries
        .create_expansions(&rerun)
        .await
        .unwrap();

    assert_eq!(
        done,
        vec![
            stored(false, &[false, false, true]),
            stored(true, &[true]),
            stored(false, &[false, false]),
            stored(false, &[false]),
        ]
    );
    let of_w1 = fx
        .backend
        .deliveries
        .list(&w1, None, &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(of_w1.items.len(), 11, "one delivery per (webhook, event)");
    // A delivery made one at a time is found by a later batch as well.
    let single = event(None, at(base, 60));
    let d = expansion(&single, &[&w2]).deliveries.remove(0);
    assert!(fx.backend.deliveries.create_if_absent(&d).await.unwrap());
    let done = fx
        .backend
        .deliveries
        .create_expansions(&[expansion(&single, &[&w2])])
        .await
        .unwrap();
    assert_eq!(done, vec![stored(true, &[false])]);
    assert!(
        fx.backend
            .deliveries
            .create_expansions(&[])
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_large_fanout_batch_is_stored_whole(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let base = base_time();
    // 10 events x 12 subscriptions: more items than one DynamoDB transaction takes.
    let hooks: Vec<WebhookId> = (0..12).map(|_| WebhookId::generate()).collect();
    let refs: Vec<&WebhookId> = hooks.iter().collect();
    let events: Vec<Event> = (0..10).map(|i| event(None, at(base, i))).collect();
    let batch: Vec<Expansion> = events.iter().map(|e| expansion(e, &refs)).collect();

    let done = fx
        .backend
        .deliveries
        .create_expansions(&batch)
        .await
        .unwrap();

    assert!(
        done.iter()
            .all(|s| s.event_new && s.created.iter().all(|c| *c))
    );
    for w in &hooks {
        let listed = fx
            .backend
            .deliveries
            .list(w, None, &PageRequest::first(100))
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 10);
    }
    let again = fx
        .backend
        .deliveries
        .create_expansions(&batch)
        .await
        .unwrap();
    assert!(
        again
            .iter()
            .all(|s| !s.event_new && s.created.iter().all(|c| !c))
    );
}

pub async fn deliveries_and_webhooks_are_read_in_batches(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let base = base_time();
    let (a, b) = (session_id("a"), session_id("b"));
    let for_a = webhook(Some(&a), at(base, 0));
    let for_b = webhook(Some(&b), at(base, 1));
    let for_all = webhook(None, at(base, 2));
    let mut off = webhook(Some(&a), at(base, 3));
    off.active = false;
    let other = webhook(Some(&session_id("c")), at(base, 4));
    for w in [&for_a, &for_b, &for_all, &off, &other] {
        fx.backend.webhooks.create(w).await.unwrap();
    }

    let ids = |ws: Vec<openwa_core::webhook::Webhook>| {
        ws.into_iter().map(|w| w.id).collect::<HashSet<_>>()
    };
    let active = ids(fx
        .backend
        .webhooks
        .active_for_sessions(&[a.clone(), b.clone()])
        .await
        .unwrap());
    assert_eq!(
        active,
        HashSet::from([for_a.id.clone(), for_b.id.clone(), for_all.id.clone()])
    );
    let sessionless = ids(fx.backend.webhooks.active_for_sessions(&[]).await.unwrap());
    assert_eq!(sessionless, HashSet::from([for_all.id.clone()]));

    let asked = [
        for_a.id.clone(),
        off.id.clone(),
        WebhookId::generate(),
        for_a.id.clone(),
    ];
    let mut got = fx.backend.webhooks.get_many(&asked).await.unwrap();
    got.sort_by(|x, y| x.id.cmp(&y.id));
    let mut want = vec![for_a.clone(), off.clone()];
    want.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(got, want, "found ones once, with their secrets");
    assert!(fx.backend.webhooks.get_many(&[]).await.unwrap().is_empty());

    let d1 = delivery(&for_a.id, &EventId::generate(), base);
    let d2 = delivery(&for_b.id, &EventId::generate(), base);
    for d in [&d1, &d2] {
        fx.backend.deliveries.create_if_absent(d).await.unwrap();
    }
    let mut got = fx
        .backend
        .deliveries
        .get_many(&[
            d2.id.clone(),
            DeliveryId::generate(),
            d1.id.clone(),
            d2.id.clone(),
        ])
        .await
        .unwrap();
    got.sort_by(|x, y| x.id.cmp(&y.id));
    let mut want = vec![d1, d2];
    want.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(got, want);
}

pub async fn an_outcome_records_the_attempt_and_the_delivery_together(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let now = base_time();
    let mut d = delivery(&WebhookId::generate(), &EventId::generate(), now);
    fx.backend.deliveries.create_if_absent(&d).await.unwrap();
    let attempt = |n: u32, code: u16| DeliveryAttempt {
        delivery_id: d.id.clone(),
        attempt: n,
        at: at(now, i64::from(n)),
        status_code: Some(code),
        error: None,
        latency_ms: 7,
    };
    let (first, second) = (attempt(1, 503), attempt(2, 200));

    d.status = DeliveryStatus::Retrying;
    d.attempts = 1;
    d.last_status_code = Some(503);
    d.next_attempt_at = Some(at(now, 5000));
    fx.backend
        .deliveries
        .record_outcome(&first, &d)
        .await
        .unwrap();
    d.status = DeliveryStatus::Succeeded;
    d.attempts = 2;
    d.last_status_code = Some(200);
    d.next_attempt_at = None;
    fx.backend
        .deliveries
        .record_outcome(&second, &d)
        .await
        .unwrap();

    assert_eq!(fx.backend.deliveries.get(&d.id).await.unwrap(), d);
    assert_eq!(
        fx.backend.deliveries.attempts(&d.id).await.unwrap(),
        vec![first, second.clone()]
    );
    let succeeded = fx
        .backend
        .deliveries
        .list(
            &d.webhook_id,
            Some(DeliveryStatus::Succeeded),
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(
        succeeded.items,
        vec![d.clone()],
        "listed under its new status"
    );

    let ghost = delivery(&WebhookId::generate(), &EventId::generate(), now);
    let ghost_attempt = DeliveryAttempt {
        delivery_id: ghost.id.clone(),
        ..second
    };
    assert_err!(
        fx.backend
            .deliveries
            .record_outcome(&ghost_attempt, &ghost)
            .await,
        Error::NotFound { .. }
    );
    assert!(
        fx.backend
            .deliveries
            .attempts(&ghost.id)
            .await
            .unwrap()
            .is_empty(),
        "nothing written for a missing delivery"
    );
}

pub async fn outcomes_of_a_batch_are_recorded_each_with_its_delivery(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let now = base_time();
    let w = WebhookId::generate();
    // 60 deliveries (more than one DynamoDB transaction takes), one of them twice, one absent.
    let mut all: Vec<Delivery> = (0..60)
        .map(|i| delivery(&w, &EventId::generate(), at(now, i)))
        .collect();
    for d in &all {
        fx.backend.deliveries.create_if_absent(d).await.unwrap();
    }
    let ghost = delivery(&w, &EventId::generate(), now);
    let outcome = |d: &Delivery, n: u32| {
        let mut d = d.clone();
        d.attempts = n;
        d.status = DeliveryStatus::Succeeded;
        d.next_attempt_at = None;
        let a = DeliveryAttempt {
            delivery_id: d.id.clone(),
            attempt: n,
            at: at(now, 100),
            status_code: Some(200),
            error: None,
            latency_ms: 3,
        };
        (a, d)
    };
    let mut outcomes: Vec<_> = all.iter().map(|d| outcome(d, 1)).collect();
    outcomes.insert(30, outcome(&ghost, 1));
    outcomes.push(outcome(&all[0], 2));

    let written = fx.backend.deliveries.record_outcomes(&outcomes).await;

    assert_eq!(written.len(), 62);
    for (i, r) in written.iter().enumerate() {
        if i == 30 {
            assert_err!(r.clone(), Error::NotFound { .. });
        } else {
            assert!(r.is_ok(), "outcome {i}: {r:?}");
        }
    }
    all[0] = outcomes[61].1.clone();
    for d in all.iter().skip(1).step_by(7) {
        let stored = fx.backend.deliveries.get(&d.id).await.unwrap();
        assert_eq!(
            (stored.status, stored.attempts),
            (DeliveryStatus::Succeeded, 1)
        );
        assert_eq!(
            fx.backend.deliveries.attempts(&d.id).await.unwrap().len(),
            1
        );
    }
    assert_eq!(fx.backend.deliveries.get(&all[0].id).await.unwrap(), all[0]);
    assert_eq!(
        fx.backend
            .deliveries
            .attempts(&all[0].id)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        fx.backend
            .deliveries
            .attempts(&ghost.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(fx.backend.deliveries.record_outcomes(&[]).await.is_empty());
}

pub async fn a_batch_send_enqueues_every_job_and_fails_alone(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let queue = fx.backend.queue.as_ref();
    let q = QueueName::Deliveries;
    queue.ensure(&q).await.unwrap();
    // 23 small jobs, one larger than an SQS message can carry, one delayed.
    let mut jobs: Vec<NewJob> = (0..23)
        .map(|i| NewJob {
            body: format!("job-{i}").into_bytes(),
            ..NewJob::default()
        })
        .collect();
    let big: Vec<u8> = (0..300 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    jobs.push(NewJob {
        body: big.clone(),
        ..NewJob::default()
    });
    jobs.push(NewJob {
        body: b"later".to_vec(),
        delay: Duration::from_secs(60),
        ..NewJob::default()
    });

    let sent = queue.send_batch(&q, jobs).await;

    assert_eq!(sent.len(), 25);
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    let mut bodies = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while bodies.len() < 24 && std::time::Instant::now() < deadline {
        for j in queue
            .receive(&q, 10, Duration::from_secs(60), Duration::from_secs(1))
            .await
            .unwrap()
        {
            bodies.push(j.body);
        }
    }
    assert_eq!(bodies.len(), 24, "all but the delayed one");
    assert!(bodies.contains(&big), "the large job arrives whole");
    for i in 0..23 {
        assert!(bodies.contains(&format!("job-{i}").into_bytes()));
    }
    assert!(!bodies.contains(&b"later".to_vec()));

    // To a queue that does not exist every job fails, each with its own result.
    let missing = QueueName::Control(session_id("nosuch"));
    let sent = queue
        .send_batch(
            &missing,
            vec![NewJob::default(), NewJob::default(), NewJob::default()],
        )
        .await;
    assert_eq!(sent.len(), 3);
    for r in sent {
        assert_err!(r, Error::NotFound { .. });
    }
    assert!(queue.send_batch(&q, Vec::new()).await.is_empty());
}

pub async fn a_batch_ack_deletes_every_job_and_refuses_stale_receipts(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let queue = fx.backend.queue.as_ref();
    let q = QueueName::Events;
    queue.ensure(&q).await.unwrap();
    let jobs: Vec<NewJob> = (0..12)
        .map(|i| NewJob {
            body: format!("ack-{i}").into_bytes(),
            ..NewJob::default()
        })
        .collect();
    assert!(queue.send_batch(&q, jobs).await.iter().all(Result::is_ok));
    let mut received = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while received.len() < 12 && std::time::Instant::now() < deadline {
        received.extend(
            queue
                .receive(&q, 10, Duration::from_secs(60), Duration::from_secs(1))
                .await
                .unwrap(),
        );
    }
    assert_eq!(received.len(), 12);
    let first = received[0].receipt.clone();
    queue.ack(&q, &first).await.unwrap();

    let mut receipts: Vec<String> = received.iter().map(|j| j.receipt.clone()).collect();
    receipts.push("not a receipt".to_owned());
    let acked = queue.ack_batch(&q, &receipts).await;

    assert_eq!(acked.len(), 13);
    assert_err!(acked[0].clone(), Error::Conflict { .. });
    assert!(acked[1..12].iter().all(Result::is_ok), "{acked:?}");
    assert_err!(acked[12].clone(), Error::Conflict { .. });
    assert!(
        queue
            .receive(&q, 10, Duration::from_secs(60), Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "nothing comes back"
    );
    assert_eq!(queue.depth(&q).await.unwrap(), 0);
    assert!(queue.ack_batch(&q, &[]).await.is_empty());
}
