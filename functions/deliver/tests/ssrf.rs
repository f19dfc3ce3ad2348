//! The SSRF guard at creation (through the webhook service) and at every delivery, including
//! DNS answers that change in between. No test here sends traffic anywhere: refused targets are
//! refused before a connection exists.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, spawn_app, test_config};
use openwa_core::apikey::Role;
use openwa_core::auth::Principal;
use openwa_core::error::Error;
use openwa_core::event::{Event, EventType};
use openwa_core::id::ApiKeyId;
use openwa_core::page::PageRequest;
use openwa_core::services::{EventPublisher, NewWebhook, WebhookService};
use openwa_core::webhook::{DeliveryStatus, EventPattern, UrlGuard, WebhookTarget};
use openwa_deliver::{AllowList, DeliverConfig};

/// Every forbidden address, as literals in every spelling a URL allows.
const FORBIDDEN_URLS: &[&str] = &[
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.0.10/",
    "http://100.64.1.1/",
    "http://169.254.169.254/latest/meta-data",
    "http://169.254.10.10/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.2.10/",
    "http://198.51.100.1/",
    "http://203.0.113.5/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fc00::1]/",
    "http://[fd00:ec2::254]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://[2001:db8::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::10.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::c0a8:1]/",
];

/// Host names whose (fake) DNS answers are forbidden.
const FORBIDDEN_ANSWERS: &[&str] = &[
    "127.0.0.1",
    "10.1.1.1",
    "169.254.169.254",
    "::1",
    "fd00:ec2::254",
    "::ffff:192.168.1.1",
    "64:ff9b::a00:1",
    "100.100.1.1",
];

fn strict() -> DeliverConfig {
    DeliverConfig {
        allowlist: AllowList::default(),
        ..test_config(0.001)
    }
}

fn operator() -> Principal {
    Principal {
        key_id: ApiKeyId::generate(),
        key_name: "t".into(),
        role: Role::Operator,
        allowed_sessions: None,
        rate_limit_per_minute: None,
        source_ip: None,
    }
}

fn new_webhook(url: &str) -> NewWebhook {
    NewWebhook {
        session_id: None,
        target: WebhookTarget::parse_http(url).unwrap(),
        events: vec![EventPattern::parse("*").unwrap()],
        headers: BTreeMap::new(),
        hub_signature: false,
        secret: None,
    }
}

#[tokio::test]
async fn every_forbidden_address_form_is_refused_at_creation() {
    let app = spawn_app(strict()).await;
    let service = WebhookService::new(&app.backend, Arc::new(app.guard.clone()));
    for url in FORBIDDEN_URLS {
        let err = service
            .create(&operator(), new_webhook(url))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "url"),
            "{url}: {err:?}"
        );
    }
    for (n, ip) in FORBIDDEN_ANSWERS.iter().enumerate() {
        let host = format!("bad{n}.test");
        app.dns.set(&host, &["93.184.216.34", ip]);
        let err = service
            .create(&operator(), new_webhook(&format!("https://{host}/hook")))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { .. }),
            "{host} -> {ip}: {err:?}"
        );
    }
    assert!(app.guard.check("ftp://example.com/").await.is_err());
    app.dns.set("public.test", &["93.184.216.34"]);
    assert!(
        service
            .create(&operator(), new_webhook("https://public.test/hook"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn every_forbidden_address_form_is_refused_at_delivery() {
    let app = spawn_app(strict()).await;
    let mut hooks = vec![];
    for url in FORBIDDEN_URLS {
        hooks.push(app.subscribe(url, None, &["*"]).await);
    }
    for (n, ip) in FORBIDDEN_ANSWERS.iter().enumerate() {
        let host = format!("bad{n}.test");
        app.dns.set(&host, &[ip]);
        hooks.push(
            app.subscribe(&format!("https://{host}/hook"), None, &["*"])
                .await,
        );
    }
    let _running = app.start_workers();
    let e = Event::new(
        EventType::MessageReceived,
        None,
        chrono::Utc::now(),
        serde_json::json!({}),
    );
    EventPublisher::new(app.backend.sessions.clone(), app.backend.queue.clone())
        .publish(e)
        .await
        .unwrap();

    for w in &hooks {
        let refused = eventually(Duration::from_secs(10), async || {
            let page = app
                .backend
                .deliveries
                .list(
                    &w.id,
                    Some(DeliveryStatus::Retrying),
                    &PageRequest::first(1),
                )
                .await
                .unwrap();
            page.items
                .first()
                .is_some_and(|d| d.last_error.as_deref().is_some_and(|e| e.contains("SSRF")))
        })
        .await;
        assert!(refused, "{:?} was not refused", w.target);
    }
}

#[tokio::test]
async fn a_dns_answer_that_changes_after_creation_is_caught_at_delivery() {
    let app = spawn_app(strict()).await;
    let service = WebhookService::new(&app.backend, Arc::new(app.guard.clone()));
    app.dns.set("rebind.test", &["93.184.216.34"]);
    let (w, _) = service
        .create(&operator(), new_webhook("http://rebind.test/hook"))
        .await
        .unwrap();
    // Between creation and delivery the name starts pointing inside.
    app.dns.set("rebind.test", &["169.254.169.254"]);
    let _running = app.start_workers();
    service.test(&operator(), &w.id).await.unwrap();

    let refused = eventually(Duration::from_secs(10), async || {
        let page = app
            .backend
            .deliveries
            .list(&w.id, None, &PageRequest::first(1))
            .await
            .unwrap();
        page.items.first().is_some_and(|d| d.attempts >= 1)
    })
    .await;
    assert!(refused);
    let d = app
        .backend
        .deliveries
        .list(&w.id, None, &PageRequest::first(1))
        .await
        .unwrap()
        .items[0]
        .clone();
    assert!(d.last_error.unwrap().contains("metadata"));
}

#[tokio::test]
async fn a_dns_answer_that_changes_between_the_check_and_the_connect_is_caught_by_the_client() {
    // First lookup (the guard's check) is public; the client's own lookup at connect time turns
    // private. The filtering resolver drops it, so no connection is made at all.
    let app = spawn_app(strict()).await;
    app.dns
        .sequence("flip.test", &[&["93.184.216.34"], &["10.0.0.7"]]);
    let sender =
        openwa_deliver::HttpSender::new(app.guard.clone(), Duration::from_secs(2)).unwrap();

    let result = sender
        .post("http://flip.test/hook", &[], b"{}".to_vec())
        .await;

    assert_eq!(result.status_code, None);
    assert!(
        result.error.as_deref().unwrap().contains("SSRF"),
        "{result:?}"
    );
    assert_eq!(app.dns.lookups.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_allowlist_lets_listed_networks_and_hosts_through_but_never_metadata() {
    let allow = AllowList::parse("10.0.0.0/8, dev.local").unwrap();
    let dns = Arc::new(common::FakeDns::default());
    let guard = openwa_deliver::SsrfGuard::new(dns.clone(), allow);
    dns.set("dev.local", &["192.168.1.5"]);
    dns.set("meta.local", &["169.254.169.254"]);
    assert!(guard.check("http://10.2.3.4/").await.is_ok());
    assert!(guard.check("http://dev.local/").await.is_ok());
    assert!(guard.check("http://192.168.1.5/").await.is_err());
    assert!(
        openwa_deliver::SsrfGuard::new(dns, AllowList::parse("169.254.0.0/16").unwrap())
            .check("http://169.254.169.254/")
            .await
            .is_err()
    );
    assert!(AllowList::parse("not a net!").is_err());
}
