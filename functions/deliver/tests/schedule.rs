//! The retry schedule and the meaning of each answer, against scripted local receivers, with
//! time scaled down so the whole schedule runs in seconds.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Reply, eventually, receiver, spawn_app, test_config};
use openwa_core::apikey::Role;
use openwa_core::auth::Principal;
use openwa_core::event::{Event, EventType};
use openwa_core::id::ApiKeyId;
use openwa_core::page::PageRequest;
use openwa_core::services::{EventPublisher, WebhookService};
use openwa_core::webhook::signature::{self, DEFAULT_TOLERANCE};
use openwa_core::webhook::{Delivery, DeliveryStatus, Webhook};

fn admin() -> Principal {
    Principal {
        key_id: ApiKeyId::generate(),
        key_name: "t".into(),
        role: Role::Admin,
        allowed_sessions: None,
        rate_limit_per_minute: None,
        source_ip: None,
    }
}

async fn publish(app: &common::App, kind: EventType) -> Event {
    let e = Event::new(
        kind,
        None,
        Utc::now(),
        serde_json::json!({"hello": "world"}),
    );
    EventPublisher::new(app.backend.sessions.clone(), app.backend.queue.clone())
        .publish(e.clone())
        .await
        .unwrap();
    e
}

async fn only_delivery(app: &common::App, w: &Webhook) -> Delivery {
    let page = app
        .backend
        .deliveries
        .list(&w.id, None, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    page.items[0].clone()
}

async fn wait_status(
    app: &common::App,
    w: &Webhook,
    status: DeliveryStatus,
    limit: Duration,
) -> Delivery {
    let ok = eventually(limit, async || {
        app.backend
            .deliveries
            .list(&w.id, Some(status), &PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len()
            == 1
    })
    .await;
    assert!(
        ok,
        "delivery never became {status:?}: {:?}",
        only_delivery(app, w).await
    );
    only_delivery(app, w).await
}

#[tokio::test]
async fn a_scripted_receiver_sees_the_schedule_and_outcomes_exactly_as_specified() {
    let factor = 0.0005;
    let app = spawn_app(test_config(factor)).await;
    let script = vec![
        Reply::Status(500),
        Reply::StatusWith(429, "retry-after", "40".into()),
        Reply::StatusWith(301, "location", "http://127.0.0.1:9/elsewhere".into()),
        Reply::Hang(Duration::from_secs(3)),
        Reply::Status(200),
    ];
    let (rx, url) = receiver(script).await;
    let w = app.subscribe(&url, None, &["message.*"]).await;
    let _running = app.start_workers();

    let event = publish(&app, EventType::MessageReceived).await;
    let d = wait_status(&app, &w, DeliveryStatus::Succeeded, Duration::from_secs(30)).await;

    // Outcomes: exactly five attempts, in order, each in the log.
    let log = app.backend.deliveries.attempts(&d.id).await.unwrap();
    let codes: Vec<Option<u16>> = log.iter().map(|a| a.status_code).collect();
    assert_eq!(
        codes,
        vec![Some(500), Some(429), Some(301), None, Some(200)]
    );
    assert!(
        log[3].error.as_deref().unwrap().contains("timed out"),
        "{:?}",
        log[3]
    );
    assert_eq!(
        (
            d.attempts,
            log.iter().map(|a| a.attempt).collect::<Vec<_>>()
        ),
        (5, vec![1, 2, 3, 4, 5])
    );
    let hits = rx.hits();
    assert_eq!(hits.len(), 5, "the 301 must not be followed");

    // Schedule: each wait starts when the previous attempt ended (scaled).
    let s = |secs: f64| Duration::from_secs_f64(secs * factor);
    let timeout = app.config.request_timeout;
    let expected = [s(5.0), s(40.0), s(1800.0), timeout + s(7200.0)];
    for (i, want) in expected.iter().enumerate() {
        let got = hits[i + 1].at - hits[i].at;
        assert!(
            got >= *want && got <= *want + Duration::from_millis(1000),
            "gap {i}: {got:?}, expected {want:?}"
        );
    }

    // Every attempt carries the event id and a signature that verifies.
    let secret = w.secret.clone().unwrap();
    for hit in &hits {
        let get = |name: &str| hit.headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(get("webhook-id"), Some(event.id.as_str()));
        let headers = signature::SignedHeaders::from_lookup(|n| get(n)).unwrap();
        signature::verify(&secret, headers, &hit.body, DEFAULT_TOLERANCE).unwrap();
    }
}

#[tokio::test]
async fn a_410_disables_the_subscription_and_announces_it() {
    let app = spawn_app(test_config(0.001)).await;
    let (_gone, gone_url) = receiver(vec![Reply::Status(410)]).await;
    let (monitor, monitor_url) = receiver(vec![]).await;
    let w = app.subscribe(&gone_url, None, &["message.*"]).await;
    app.subscribe(&monitor_url, None, &["webhook.disabled"])
        .await;
    let _running = app.start_workers();

    publish(&app, EventType::MessageReceived).await;
    let d = wait_status(&app, &w, DeliveryStatus::Dead, Duration::from_secs(10)).await;

    assert_eq!((d.attempts, d.last_status_code), (1, Some(410)));
    let stored = app.backend.webhooks.get(&w.id).await.unwrap();
    assert!(!stored.active);
    assert!(stored.disabled_reason.unwrap().contains("410"));
    assert!(eventually(Duration::from_secs(10), async || !monitor.hits().is_empty()).await);
    let announced: serde_json::Value = serde_json::from_slice(&monitor.hits()[0].body).unwrap();
    assert_eq!(announced["type"], "webhook.disabled");
    assert_eq!(announced["data"]["webhook_id"], w.id.as_str());
}

#[tokio::test]
async fn eight_failures_dead_letter_the_delivery_and_a_redelivery_brings_it_home() {
    let app = spawn_app(test_config(0.000_02)).await;
    let (rx, url) = receiver(vec![]).await;
    rx.set_default(Reply::Status(500));
    let w = app.subscribe(&url, None, &["*"]).await;
    let _running = app.start_workers();

    publish(&app, EventType::SessionStatus).await;
    let d = wait_status(&app, &w, DeliveryStatus::Dead, Duration::from_secs(30)).await;
    assert_eq!(d.attempts, 8);
    assert_eq!(
        app.backend.deliveries.attempts(&d.id).await.unwrap().len(),
        8
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits().len(), 8, "no attempt after the last one");

    rx.set_default(Reply::Status(204));
    let service = WebhookService::new(&app.backend, std::sync::Arc::new(app.guard.clone()));
    service.redeliver(&admin(), &w.id, &d.id).await.unwrap();
    let d = wait_status(&app, &w, DeliveryStatus::Succeeded, Duration::from_secs(10)).await;
    assert_eq!((d.attempts, d.last_status_code), (9, Some(204)));
}
