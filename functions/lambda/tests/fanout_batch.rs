//! The fan-out function on moto (`AWS_ENDPOINT_URL`) with a batch holding an event DynamoDB
//! refuses (larger than an item may be): that event alone fails, the others of its batch are
//! stored with their deliveries and jobs.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::Utc;
use openwa_core::event::{Event, EventType};
use openwa_core::id::WebhookId;
use openwa_core::ports::QueueName;
use openwa_core::webhook::schedule::delivery_id_for;
use openwa_core::webhook::{EventPattern, Webhook, WebhookSecret, WebhookTarget};
use openwa_fanout::Fanout;
use openwa_lambda::sqs_event::failed_ids;

fn record(id: &str, event: &Event) -> serde_json::Value {
    serde_json::json!({
        "messageId": id,
        "receiptHandle": format!("r-{id}"),
        "body": serde_json::to_string(event).unwrap(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs"
    })
}

#[tokio::test]
async fn an_event_the_table_refuses_fails_alone_and_the_rest_of_its_batch_goes_through() {
    let ctx = openwa_aws::testing::fresh_stack("fobig").await;
    let backend = openwa_aws::open(&ctx);
    let now = Utc::now();
    let webhook = Webhook {
        id: WebhookId::generate(),
        session_id: None,
        target: WebhookTarget::parse_http("https://example.com/hook").unwrap(),
        events: vec![EventPattern::parse("*").unwrap()],
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
    let small = |n: u32| {
        Event::new(
            EventType::MessageReceived,
            None,
            now,
            serde_json::json!({"n": n}),
        )
    };
    // 450 KB of data: over DynamoDB's 400 KB item limit.
    let big = Event::new(
        EventType::MessageReceived,
        None,
        now,
        serde_json::json!({"text": "x".repeat(450 * 1024)}),
    );
    let events = [small(1), big.clone(), small(2)];
    let records = events
        .iter()
        .enumerate()
        .map(|(i, e)| record(&format!("m-{i}"), e))
        .collect::<Vec<_>>();
    let batch: SqsEvent =
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();

    let response = openwa_lambda::fanout::handle(
        &Fanout::from_backend(&backend),
        backend.blobs.as_ref(),
        batch,
    )
    .await;

    assert_eq!(failed_ids(&response), ["m-1"]);
    for e in [&events[0], &events[2]] {
        assert_eq!(&backend.events.get(&e.id).await.unwrap(), e);
        backend
            .deliveries
            .get(&delivery_id_for(&webhook.id, &e.id))
            .await
            .unwrap();
    }
    assert!(backend.events.get(&big.id).await.is_err());
    let jobs = backend
        .queue
        .receive(
            &QueueName::Deliveries,
            10,
            Duration::from_secs(60),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
}
