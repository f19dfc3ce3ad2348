//! AWS calls per delivered webhook event on the Lambda path, on moto (`AWS_ENDPOINT_URL`):
//! a batch of events goes through the fan-out function and the resulting delivery jobs
//! through the deliver function, and the SDK interceptor (`AwsContext::calls`) counts what each
//! function called. Call counts are deterministic, so they are asserted; the figures are also
//! printed (`cargo test -p openwa-lambda --test fanout_deliver_calls -- --nocapture`).
//!
//! Not counted: the SQS receive and delete that Lambda's event source mapping does itself (the
//! test receives the delivery jobs with the adapter, outside the counted window).

use openwa_aws::context::calls_between;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::Utc;
use openwa_core::event::{Event, EventType};
use openwa_core::id::{SessionId, WebhookId};
use openwa_core::ports::{QueueName, UnavailableSqs};
use openwa_core::webhook::schedule::delivery_id_for;
use openwa_core::webhook::{DeliveryStatus, EventPattern, Webhook, WebhookSecret, WebhookTarget};
use openwa_deliver::{AllowList, DeliverConfig, SsrfGuard};
use openwa_fanout::Fanout;
use openwa_lambda::sqs_event::failed_ids;

type Calls = BTreeMap<String, u64>;

fn total(calls: &Calls) -> u64 {
    calls.values().sum()
}

fn per_event(calls: &Calls, n: usize) -> String {
    let detail: Vec<String> = calls
        .iter()
        .map(|(k, v)| format!("{k} {:.2}", *v as f64 / n as f64))
        .collect();
    format!(
        "{:.2} ({})",
        total(calls) as f64 / n as f64,
        detail.join(", ")
    )
}

/// A local receiver that answers 200 and counts the POSTs.
async fn receiver() -> (String, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let count = count.clone();
            move || {
                count.fetch_add(1, Ordering::Relaxed);
                async { "ok" }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

fn record(id: &str, body: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "messageId": id,
        "receiptHandle": format!("r-{id}"),
        "body": String::from_utf8(body.to_vec()).unwrap(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs"
    })
}

fn sqs_event(records: Vec<serde_json::Value>) -> SqsEvent {
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

/// What a batch of `n` events to one webhook costs: (fan-out calls, deliver calls).
async fn one_batch(n: usize) -> (Calls, Calls) {
    let ctx = openwa_aws::testing::fresh_stack("calls").await;
    let backend = openwa_aws::open(&ctx);
    let (url, posts) = receiver().await;
    let now = Utc::now();
    let session = SessionId::parse("calls").unwrap();
    let webhook = Webhook {
        id: WebhookId::generate(),
        session_id: Some(session.clone()),
        target: WebhookTarget::parse_http(&url).unwrap(),
        events: vec![EventPattern::parse("message.*").unwrap()],
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
    backend.webhooks.create(&webhook).await.unwrap();
    let events: Vec<Event> = (0..n)
        .map(|i| {
            Event::new(
                EventType::MessageReceived,
                Some(session.clone()),
                now,
                serde_json::json!({"n": i}),
            )
        })
        .collect();
    let fanout = Fanout::from_backend(&backend);
    let config = DeliverConfig {
        allowlist: AllowList::loopback(),
        ..DeliverConfig::default()
    };
    let deliverer = openwa_deliver::deliverer_with(
        &backend,
        &config,
        SsrfGuard::system(AllowList::loopback()),
        Arc::new(UnavailableSqs),
    )
    .unwrap();
    // Warm the queue URL caches, as a warm Lambda instance has them.
    backend.queue.ensure(&QueueName::Deliveries).await.unwrap();

    let records = events
        .iter()
        .enumerate()
        .map(|(i, e)| record(&format!("e-{i}"), &serde_json::to_vec(e).unwrap()))
        .collect();
    let before = ctx.calls.snapshot();
    let response =
        openwa_lambda::fanout::handle(&fanout, backend.blobs.as_ref(), sqs_event(records)).await;
    let fanout_calls = calls_between(&before, &ctx.calls.snapshot());
    assert!(failed_ids(&response).is_empty());

    let mut jobs = Vec::new();
    while jobs.len() < n {
        let got = backend
            .queue
            .receive(
                &QueueName::Deliveries,
                10,
                Duration::from_secs(60),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert!(
            !got.is_empty(),
            "only {} of {n} delivery jobs queued",
            jobs.len()
        );
        jobs.extend(got);
    }
    let records = jobs.iter().map(|j| record(&j.id, &j.body)).collect();
    let before = ctx.calls.snapshot();
    let response =
        openwa_lambda::deliver::handle(&deliverer, backend.blobs.as_ref(), sqs_event(records))
            .await;
    let deliver_calls = calls_between(&before, &ctx.calls.snapshot());
    assert!(failed_ids(&response).is_empty());

    assert_eq!(
        posts.load(Ordering::Relaxed),
        n as u64,
        "one POST per event"
    );
    for e in &events {
        let d = backend
            .deliveries
            .get(&delivery_id_for(&webhook.id, &e.id))
            .await
            .unwrap();
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Succeeded, 1));
        assert_eq!(backend.deliveries.attempts(&d.id).await.unwrap().len(), 1);
    }
    (fanout_calls, deliver_calls)
}

fn report(n: usize, fanout: &Calls, deliver: &Calls) {
    println!("batch of {n}: fan-out per event {}", per_event(fanout, n));
    println!("batch of {n}: deliver per event {}", per_event(deliver, n));
    let mut both = fanout.clone();
    for (k, v) in deliver {
        *both.entry(k.clone()).or_default() += v;
    }
    println!("batch of {n}: per delivered event {}", per_event(&both, n));
}

fn count(calls: &Calls, op: &str) -> u64 {
    calls.get(op).copied().unwrap_or(0)
}

#[tokio::test]
async fn a_batch_of_ten_events_to_one_webhook_costs_at_most_two_calls_per_event() {
    let (fanout, deliver) = one_batch(10).await;
    report(10, &fanout, &deliver);

    // Fan-out: the all-session and the session's subscriptions, one transaction of events,
    // deliveries and guards, one batch send of the jobs.
    assert_eq!(count(&fanout, "DynamoDB.Query"), 2, "{fanout:?}");
    assert_eq!(
        count(&fanout, "DynamoDB.TransactWriteItems"),
        1,
        "{fanout:?}"
    );
    assert_eq!(count(&fanout, "SQS.SendMessageBatch"), 1, "{fanout:?}");
    assert_eq!(total(&fanout), 4, "{fanout:?}");
    // Deliver: one read of the deliveries, one of the webhook, one write of every attempt with
    // its delivery; the events come in the jobs.
    assert_eq!(count(&deliver, "DynamoDB.BatchGetItem"), 2, "{deliver:?}");
    assert_eq!(count(&deliver, "DynamoDB.GetItem"), 0, "{deliver:?}");
    assert_eq!(
        count(&deliver, "DynamoDB.TransactWriteItems"),
        1,
        "{deliver:?}"
    );
    assert_eq!(total(&deliver), 3, "{deliver:?}");
    assert!(total(&fanout) + total(&deliver) <= 2 * 10);
}

#[tokio::test]
async fn a_single_event_costs_a_fixed_handful_of_calls() {
    let (fanout, deliver) = one_batch(1).await;
    report(1, &fanout, &deliver);

    assert_eq!(total(&fanout), 4, "{fanout:?}");
    assert_eq!(total(&deliver), 3, "{deliver:?}");
}
