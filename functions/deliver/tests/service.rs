//! The webhook service the API calls: access rules, validation, rotation, test and redelivery.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{Reply, eventually, receiver, spawn_app, test_config};
use openwa_core::apikey::Role;
use openwa_core::auth::Principal;
use openwa_core::error::Error;
use openwa_core::id::{ApiKeyId, SessionId};
use openwa_core::page::PageRequest;
use openwa_core::services::{NewWebhook, WebhookPatch, WebhookService};
use openwa_core::webhook::signature::{self, DEFAULT_TOLERANCE};
use openwa_core::webhook::{DeliveryStatus, EventPattern, WebhookTarget};

fn key(role: Role, sessions: Option<&[&str]>) -> Principal {
    Principal {
        key_id: ApiKeyId::generate(),
        key_name: "t".into(),
        role,
        allowed_sessions: sessions.map(|s| {
            s.iter()
                .map(|x| SessionId::parse(x).unwrap())
                .collect::<BTreeSet<_>>()
        }),
        rate_limit_per_minute: None,
        source_ip: None,
    }
}

fn new_webhook(url: &str, session: Option<&str>) -> NewWebhook {
    NewWebhook {
        session_id: session.map(|s| SessionId::parse(s).unwrap()),
        target: WebhookTarget::parse_http(url).unwrap(),
        events: vec![EventPattern::parse("message.*").unwrap()],
        headers: BTreeMap::new(),
        hub_signature: false,
        secret: None,
    }
}

async fn service() -> (common::App, WebhookService) {
    let app = spawn_app(test_config(0.001)).await;
    let service = WebhookService::new(&app.backend, Arc::new(app.guard.clone()));
    (app, service)
}

#[tokio::test]
async fn viewers_read_operators_manage_and_the_secret_is_shown_once() {
    let (_app, service) = service().await;
    let url = "http://127.0.0.1:9/hook";
    assert!(matches!(
        service
            .create(&key(Role::Viewer, None), new_webhook(url, None))
            .await,
        Err(Error::Forbidden { .. })
    ));
    let (w, secret) = service
        .create(&key(Role::Operator, None), new_webhook(url, None))
        .await
        .unwrap();
    assert!(secret.expose().starts_with("whsec_"));
    assert!(!serde_json::to_string(&w).unwrap().contains(secret.expose()));
    assert_eq!(
        service
            .get(&key(Role::Viewer, None), &w.id)
            .await
            .unwrap()
            .id,
        w.id
    );
    assert!(matches!(
        service.delete(&key(Role::Viewer, None), &w.id).await,
        Err(Error::Forbidden { .. })
    ));
    service
        .delete(&key(Role::Operator, None), &w.id)
        .await
        .unwrap();
    assert!(matches!(
        service.get(&key(Role::Viewer, None), &w.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_key_limited_to_sessions_sees_only_their_webhooks() {
    let (_app, service) = service().await;
    let url = "http://127.0.0.1:9/hook";
    let admin = key(Role::Admin, None);
    let (all, _) = service
        .create(&admin, new_webhook(url, None))
        .await
        .unwrap();
    let (of_a, _) = service
        .create(&admin, new_webhook(url, Some("a")))
        .await
        .unwrap();
    let (of_b, _) = service
        .create(&admin, new_webhook(url, Some("b")))
        .await
        .unwrap();
    let limited = key(Role::Operator, Some(&["a"]));

    let listed: Vec<_> = service
        .list(&limited, &PageRequest::first(100))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(listed, vec![of_a.id.clone()]);
    assert!(matches!(
        service.get(&limited, &all.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        service.get(&limited, &of_b.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        service.create(&limited, new_webhook(url, None)).await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        service.create(&limited, new_webhook(url, Some("b"))).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        service
            .create(&limited, new_webhook(url, Some("a")))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn reserved_custom_headers_are_refused() {
    let (_app, service) = service().await;
    for name in [
        "webhook-signature",
        "X-Hub-Signature-256",
        "Content-Type",
        "Host",
    ] {
        let mut new = new_webhook("http://127.0.0.1:9/hook", None);
        new.headers.insert(name.into(), "x".into());
        assert!(
            matches!(
                service.create(&key(Role::Operator, None), new).await,
                Err(Error::Invalid { .. })
            ),
            "{name}"
        );
    }
    let mut new = new_webhook("http://127.0.0.1:9/hook", None);
    new.headers
        .insert("Authorization".into(), "Bearer t".into());
    assert!(
        service
            .create(&key(Role::Operator, None), new)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_test_deliveries() {
    let (app, service) = service().await;
    let (rx, url) = receiver(vec![]).await;
    let op = key(Role::Operator, None);
    let (w, old) = service.create(&op, new_webhook(&url, None)).await.unwrap();
    let (rotated, new) = service.rotate_secret(&op, &w.id).await.unwrap();
    assert!(rotated.previous_secret_until.unwrap() > Utc::now() + chrono::Duration::hours(23));
    let _running = app.start_workers();

    let d = service.test(&op, &w.id).await.unwrap();
    assert!(eventually(Duration::from_secs(10), async || !rx.hits().is_empty()).await);

    let hit = &rx.hits()[0];
    let get = |n: &str| hit.headers.get(n).and_then(|v| v.to_str().ok());
    assert_eq!(get("webhook-signature").unwrap().split(' ').count(), 2);
    for secret in [&old, &new] {
        let headers = signature::SignedHeaders::from_lookup(|n| get(n)).unwrap();
        signature::verify(secret, headers, &hit.body, DEFAULT_TOLERANCE).unwrap();
    }
    let body: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["data"]["test"], true);
    assert!(
        eventually(Duration::from_secs(5), async || {
            service.delivery(&op, &w.id, &d.id).await.unwrap().0.status == DeliveryStatus::Succeeded
        })
        .await
    );
    let (_, attempts) = service.delivery(&op, &w.id, &d.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
}

#[tokio::test]
async fn redelivering_a_time_range_requeues_only_dead_and_failing_deliveries() {
    let (app, service) = service().await;
    let (rx, url) = receiver(vec![]).await;
    rx.set_default(Reply::Status(500));
    let op = key(Role::Operator, None);
    let mut new = new_webhook(&url, None);
    new.events = vec![EventPattern::parse("*").unwrap()];
    let (w, _) = service.create(&op, new).await.unwrap();
    let since = Utc::now() - chrono::Duration::seconds(1);
    let _running = app.start_workers();
    for _ in 0..3 {
        service.test(&op, &w.id).await.unwrap();
    }
    let all_failing = eventually(Duration::from_secs(10), async || {
        service
            .deliveries(
                &op,
                &w.id,
                Some(DeliveryStatus::Retrying),
                &PageRequest::first(10),
            )
            .await
            .unwrap()
            .items
            .len()
            == 3
    })
    .await;
    assert!(all_failing);

    rx.set_default(Reply::Status(200));
    let queued = service
        .redeliver_range(&op, &w.id, since, Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();

    assert_eq!(queued, 3);
    assert!(
        eventually(Duration::from_secs(10), async || {
            service
                .deliveries(
                    &op,
                    &w.id,
                    Some(DeliveryStatus::Succeeded),
                    &PageRequest::first(10),
                )
                .await
                .unwrap()
                .items
                .len()
                == 3
        })
        .await
    );
    let patch = WebhookPatch {
        active: Some(false),
        ..WebhookPatch::default()
    };
    service.update(&op, &w.id, patch).await.unwrap();
    assert!(matches!(
        service.redeliver_range(&op, &w.id, since, Utc::now()).await,
        Err(Error::Conflict { .. })
    ));
}

#[tokio::test]
async fn custom_headers_hub_signatures_and_session_metadata_reach_the_receiver() {
    let (app, service) = service().await;
    let (rx, url) = receiver(vec![]).await;
    let mut config = openwa_core::session::SessionConfig::default();
    config.metadata.insert("tenant".into(), "acme".into());
    let session = openwa_core::session::Session::new(
        SessionId::parse("sales").unwrap(),
        None,
        config,
        Utc::now(),
    )
    .unwrap();
    app.backend.sessions.create(&session).await.unwrap();
    let mut new = new_webhook(&url, Some("sales"));
    new.headers.insert("X-Tenant".into(), "acme".into());
    new.hub_signature = true;
    let (_, secret) = service
        .create(&key(Role::Operator, None), new)
        .await
        .unwrap();
    let _running = app.start_workers();

    let event = openwa_core::event::Event::new(
        openwa_core::event::EventType::MessageReceived,
        Some(session.id.clone()),
        Utc::now(),
        serde_json::json!({"text": "hi"}),
    );
    openwa_core::services::EventPublisher::new(
        app.backend.sessions.clone(),
        app.backend.queue.clone(),
    )
    .publish(event)
    .await
    .unwrap();
    assert!(eventually(Duration::from_secs(10), async || !rx.hits().is_empty()).await);

    let hit = &rx.hits()[0];
    let get = |n: &str| hit.headers.get(n).and_then(|v| v.to_str().ok());
    assert_eq!(get("x-tenant"), Some("acme"));
    signature::verify_hub(&secret, get("x-hub-signature-256").unwrap(), &hit.body).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["metadata"]["tenant"], "acme");
}
