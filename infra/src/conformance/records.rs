//! Checks for the smaller stores: API keys, audit, webhooks, deliveries and events.

use std::collections::HashSet;

use chrono::Duration;
use openwa_core::Error;
use openwa_core::audit::AuditFilter;
use openwa_core::id::{ApiKeyId, DeliveryId, EventId, WebhookId};
use openwa_core::page::PageRequest;
use openwa_core::webhook::{DeliveryAttempt, DeliveryStatus, WebhookSecret};

use super::Fixture;
use super::fixtures::{api_key, at, audit, base_time, delivery, event, session_id, webhook};
use crate::assert_err;

pub async fn api_keys_are_found_by_the_hash_of_their_secret(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (key, secret) = api_key("ci", base_time());
    fx.backend.keys.create(&key).await.unwrap();

    let found = fx.backend.keys.find_by_hash(&secret.hash()).await.unwrap();

    assert_eq!(found.as_ref(), Some(&key));
    assert_eq!(
        found.unwrap().secret_hash,
        secret.hash(),
        "the hash is stored although it is not serialised"
    );
    assert_eq!(fx.backend.keys.get(&key.id).await.unwrap(), key);
    assert_eq!(
        fx.backend.keys.find_by_hash(&"0".repeat(64)).await.unwrap(),
        None
    );
    assert_err!(
        fx.backend.keys.get(&ApiKeyId::generate()).await,
        Error::NotFound { .. }
    );
}

pub async fn a_duplicate_api_key_is_a_conflict(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (key, _) = api_key("ci", base_time());
    fx.backend.keys.create(&key).await.unwrap();
    let mut same_hash = api_key("other", base_time()).0;
    same_hash.secret_hash.clone_from(&key.secret_hash);

    assert_err!(fx.backend.keys.create(&key).await, Error::Conflict { .. });
    assert_err!(
        fx.backend.keys.create(&same_hash).await,
        Error::Conflict { .. }
    );
}

pub async fn the_first_revocation_wins_and_touch_records_use(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let now = base_time();
    let (key, _) = api_key("ci", now);
    fx.backend.keys.create(&key).await.unwrap();

    fx.backend.keys.touch(&key.id, at(now, 5)).await.unwrap();
    assert_eq!(
        fx.backend.keys.get(&key.id).await.unwrap().last_used_at,
        Some(at(now, 5))
    );
    let revoked = fx.backend.keys.revoke(&key.id, at(now, 10)).await.unwrap();
    let again = fx.backend.keys.revoke(&key.id, at(now, 20)).await.unwrap();

    assert_eq!(revoked.revoked_at, Some(at(now, 10)));
    assert_eq!(again.revoked_at, Some(at(now, 10)));
    assert_eq!(fx.backend.keys.get(&key.id).await.unwrap(), again);
    assert_err!(
        fx.backend.keys.revoke(&ApiKeyId::generate(), now).await,
        Error::NotFound { .. }
    );
}

pub async fn api_keys_list_newest_first(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let base = base_time();
    let mut ids = Vec::new();
    for i in 0..5 {
        let (key, _) = api_key(&format!("k{i}"), at(base, i));
        fx.backend.keys.create(&key).await.unwrap();
        ids.push(key.id);
    }

    let first = fx.backend.keys.list(&PageRequest::first(3)).await.unwrap();
    let rest = fx
        .backend
        .keys
        .list(&PageRequest::parse(Some(3), first.next_cursor.clone()).unwrap())
        .await
        .unwrap();

    let listed: Vec<_> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|k| k.id.clone())
        .collect();
    assert_eq!(listed, ids.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(rest.next_cursor, None);
    assert!(first.items.iter().all(|k| !k.secret_hash.is_empty()));
}

pub async fn audit_entries_filter_by_action_key_session_and_time(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let base = base_time();
    let (key, sid) = (ApiKeyId::generate(), session_id("a"));
    let entries = [
        audit("session.create", Some(&key), Some(&sid), at(base, 0)),
        audit("message.send", Some(&key), Some(&sid), at(base, 10)),
        audit("message.send", None, None, at(base, 20)),
        audit("api_key.revoke", Some(&key), None, at(base, 30)),
    ];
    for e in &entries {
        fx.backend.audit.append(e).await.unwrap();
    }
    let list = async |filter: AuditFilter| {
        let items = fx
            .backend
            .audit
            .list(&filter, &PageRequest::first(100))
            .await
            .unwrap()
            .items;
        items.into_iter().map(|e| e.id).collect::<Vec<_>>()
    };
    let ids = |idx: &[usize]| {
        idx.iter()
            .map(|&i| entries[i].id.clone())
            .collect::<Vec<_>>()
    };

    assert_eq!(list(AuditFilter::default()).await, ids(&[3, 2, 1, 0]));
    assert_eq!(
        list(AuditFilter {
            action: Some("message.send".into()),
            ..Default::default()
        })
        .await,
        ids(&[2, 1])
    );
    assert_eq!(
        list(AuditFilter {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await,
        ids(&[3, 1, 0])
    );
    assert_eq!(
        list(AuditFilter {
            session_id: Some(sid.clone()),
            ..Default::default()
        })
        .await,
        ids(&[1, 0])
    );
    let window = AuditFilter {
        since: Some(at(base, 10)),
        until: Some(at(base, 30)),
        ..Default::default()
    };
    assert_eq!(
        list(window).await,
        ids(&[2, 1]),
        "since is inclusive, until exclusive"
    );
    let stored = fx
        .backend
        .audit
        .list(&AuditFilter::default(), &PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(stored.items, vec![entries[3].clone()]);
    assert!(stored.next_cursor.is_some());
}

pub async fn webhooks_keep_their_signing_secrets(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let mut w = webhook(Some(&session_id("w")), base_time());
    fx.backend.webhooks.create(&w).await.unwrap();

    let stored = fx.backend.webhooks.get(&w.id).await.unwrap();
    assert_eq!(stored, w);
    assert!(stored.secret.is_some() && stored.previous_secret.is_some());
    assert_err!(fx.backend.webhooks.create(&w).await, Error::Conflict { .. });

    w.previous_secret = w.secret.take();
    w.secret = Some(WebhookSecret::generate());
    w.active = false;
    w.disabled_reason = Some("endpoint answered 410".into());
    fx.backend.webhooks.update(&w).await.unwrap();
    assert_eq!(fx.backend.webhooks.get(&w.id).await.unwrap(), w);
}

pub async fn webhook_lookups_include_all_session_subscriptions(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let base = base_time();
    let (a, b) = (session_id("a"), session_id("b"));
    let for_a = webhook(Some(&a), at(base, 0));
    let for_b = webhook(Some(&b), at(base, 1));
    let for_all = webhook(None, at(base, 2));
    let mut inactive = webhook(Some(&a), at(base, 3));
    inactive.active = false;
    for w in [&for_a, &for_b, &for_all, &inactive] {
        fx.backend.webhooks.create(w).await.unwrap();
    }
    let ids = |ws: Vec<openwa_core::webhook::Webhook>| {
        ws.into_iter().map(|w| w.id).collect::<HashSet<_>>()
    };

    let active_a = ids(fx.backend.webhooks.active_for(Some(&a)).await.unwrap());
    assert_eq!(
        active_a,
        HashSet::from([for_a.id.clone(), for_all.id.clone()])
    );
    let sessionless = ids(fx.backend.webhooks.active_for(None).await.unwrap());
    assert_eq!(sessionless, HashSet::from([for_all.id.clone()]));
    let listed_a = fx
        .backend
        .webhooks
        .list(Some(&a), &PageRequest::first(100))
        .await
        .unwrap()
        .items;
    assert_eq!(
        listed_a.iter().map(|w| w.id.clone()).collect::<Vec<_>>(),
        vec![inactive.id.clone(), for_all.id.clone(), for_a.id.clone()],
        "newest first, inactive ones included"
    );
    assert_eq!(
        fx.backend
            .webhooks
            .list(None, &PageRequest::first(100))
            .await
            .unwrap()
            .items
            .len(),
        4
    );
}

pub async fn unknown_webhooks_are_not_found(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let w = webhook(None, base_time());

    assert_err!(fx.backend.webhooks.get(&w.id).await, Error::NotFound { .. });
    assert_err!(fx.backend.webhooks.update(&w).await, Error::NotFound { .. });
    fx.backend.webhooks.create(&w).await.unwrap();
    fx.backend.webhooks.delete(&w.id).await.unwrap();
    assert_err!(fx.backend.webhooks.get(&w.id).await, Error::NotFound { .. });
    assert_err!(
        fx.backend.webhooks.delete(&WebhookId::generate()).await,
        Error::NotFound { .. }
    );
}

pub async fn a_delivery_is_created_once_per_webhook_and_event(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (w, e) = (WebhookId::generate(), EventId::generate());
    let d = delivery(&w, &e, base_time());

    assert!(fx.backend.deliveries.create_if_absent(&d).await.unwrap());
    assert!(
        !fx.backend
            .deliveries
            .create_if_absent(&delivery(&w, &e, base_time()))
            .await
            .unwrap()
    );
    assert!(
        fx.backend
            .deliveries
            .create_if_absent(&delivery(&WebhookId::generate(), &e, base_time()))
            .await
            .unwrap()
    );

    assert_eq!(fx.backend.deliveries.get(&d.id).await.unwrap(), d);
    assert_eq!(
        fx.backend
            .deliveries
            .list(&w, None, &PageRequest::first(10))
            .await
            .unwrap()
            .items,
        vec![d]
    );
    assert_err!(
        fx.backend.deliveries.get(&DeliveryId::generate()).await,
        Error::NotFound { .. }
    );
}

pub async fn delivery_updates_and_attempts_are_stored(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let now = base_time();
    let mut d = delivery(&WebhookId::generate(), &EventId::generate(), now);
    fx.backend.deliveries.create_if_absent(&d).await.unwrap();

    d.status = DeliveryStatus::Retrying;
    d.attempts = 1;
    d.last_status_code = Some(503);
    d.next_attempt_at = Some(at(now, 5000));
    fx.backend.deliveries.update(&d).await.unwrap();
    let attempts: Vec<_> = (1..=2)
        .map(|n| DeliveryAttempt {
            delivery_id: d.id.clone(),
            attempt: n,
            at: at(now, i64::from(n)),
            status_code: Some(503),
            error: None,
            latency_ms: 12,
        })
        .collect();
    for a in attempts.iter().rev() {
        fx.backend.deliveries.record_attempt(a).await.unwrap();
    }

    assert_eq!(fx.backend.deliveries.get(&d.id).await.unwrap(), d);
    assert_eq!(
        fx.backend.deliveries.attempts(&d.id).await.unwrap(),
        attempts,
        "in attempt order"
    );
    let ghost = delivery(&WebhookId::generate(), &EventId::generate(), now);
    assert_err!(
        fx.backend.deliveries.update(&ghost).await,
        Error::NotFound { .. }
    );
}

pub async fn deliveries_list_by_status_and_range(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let base = base_time();
    let w = WebhookId::generate();
    let mut all = Vec::new();
    for i in 0..6 {
        let mut d = delivery(&w, &EventId::generate(), at(base, i * 1000));
        if i % 2 == 1 {
            d.status = DeliveryStatus::Dead;
        }
        fx.backend.deliveries.create_if_absent(&d).await.unwrap();
        all.push(d);
    }

    let dead = fx
        .backend
        .deliveries
        .list(&w, Some(DeliveryStatus::Dead), &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(
        dead.items.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        vec![all[5].id.clone(), all[3].id.clone(), all[1].id.clone()]
    );
    let range = fx
        .backend
        .deliveries
        .in_range(
            &w,
            DeliveryStatus::Dead,
            at(base, 1000),
            at(base, 5000),
            100,
        )
        .await
        .unwrap();
    let in_range: HashSet<_> = range.into_iter().map(|d| d.id).collect();
    assert_eq!(
        in_range,
        HashSet::from([all[1].id.clone(), all[3].id.clone()]),
        "[since, until)"
    );
    let limited = fx
        .backend
        .deliveries
        .in_range(&w, DeliveryStatus::Dead, base, base + Duration::hours(1), 1)
        .await;
    assert_eq!(limited.unwrap().len(), 1);
}

pub async fn events_are_stored_once(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let e = event(Some(&session_id("e")), base_time());

    assert!(fx.backend.events.put_if_absent(&e).await.unwrap());
    let mut changed = e.clone();
    changed.data = serde_json::json!({"other": true});
    assert!(!fx.backend.events.put_if_absent(&changed).await.unwrap());

    assert_eq!(fx.backend.events.get(&e.id).await.unwrap(), e);
    assert_err!(
        fx.backend.events.get(&EventId::generate()).await,
        Error::NotFound { .. }
    );
}
