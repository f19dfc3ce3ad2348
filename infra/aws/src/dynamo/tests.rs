//! Checks of the DynamoDB stores beyond the shared conformance suite, on the test endpoint:
//! paths only this design has (filtered multi-call pages, the allowlist batch listing, the
//! rate limiter's idle path, event expiry, guards removed with their session).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use openwa_core::audit::AuditFilter;
use openwa_core::clock::{Clock, ManualClock};
use openwa_core::id::ApiKeyId;
use openwa_core::jid::WaMessageId;
use openwa_core::message::{MessageStatus, StatusUpdate};
use openwa_core::page::PageRequest;
use openwa_core::ports::{
    AuditStore, EventStore, Inserted, MessageFilter, MessageStore, RateLimiter, SessionFilter,
    SessionStore,
};
use openwa_infra::conformance::fixtures::{
    at, audit, base_time, chat, event, message, session, session_id,
};

use super::*;
use crate::testing;

async fn stack() -> Arc<AwsContext> {
    Arc::new(testing::fresh_stack("d").await)
}

#[tokio::test]
async fn filtered_message_pages_walk_every_match_once_newest_first() {
    let ctx = stack().await;
    let store = DynamoMessageStore::new(ctx);
    let sid = session_id("f");
    let base = base_time();
    for i in 0..30 {
        let m = message(&sid, &chat(i % 3), None, at(base, i as i64));
        store.insert(&m).await.unwrap();
    }
    let filter = MessageFilter {
        chat_id: Some(chat(1)),
        ..Default::default()
    };

    let mut seen = Vec::new();
    let mut page = PageRequest::first(4);
    loop {
        let got = store.list(&sid, &filter, &page).await.unwrap();
        assert!(got.items.len() <= 4);
        seen.extend(got.items);
        match got.next_cursor {
            Some(c) => page = PageRequest::parse(Some(4), Some(c)).unwrap(),
            None => break,
        }
    }

    assert_eq!(seen.len(), 10);
    assert!(seen.iter().all(|m| m.chat_id == chat(1)));
    let ids: HashSet<_> = seen.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids.len(), 10);
    assert!(seen.windows(2).all(|w| w[0].created_at > w[1].created_at));
}

#[tokio::test]
async fn an_allowlisted_session_listing_pages_through_its_sessions() {
    let ctx = stack().await;
    let store = DynamoSessionStore::new(ctx);
    let base = base_time();
    let mut ids = Vec::new();
    for i in 0..5 {
        let s = session(&session_id(&format!("l{i}")), at(base, i));
        store.create(&s).await.unwrap();
        ids.push(s.id);
    }
    let filter = SessionFilter {
        only: Some(BTreeSet::from([
            ids[0].clone(),
            ids[2].clone(),
            ids[4].clone(),
            session_id("ghost"),
        ])),
        status: None,
    };

    let first = store.list(&filter, &PageRequest::first(2)).await.unwrap();
    let next = PageRequest::parse(Some(2), first.next_cursor.clone()).unwrap();
    let second = store.list(&filter, &next).await.unwrap();

    let listed: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(listed, vec![ids[4].clone(), ids[2].clone(), ids[0].clone()]);
    assert_eq!(second.next_cursor, None);
}

#[tokio::test]
async fn an_idle_rate_limit_key_refills_completely() {
    let ctx = stack().await;
    let limiter = DynamoRateLimiter::new(ctx);
    let now = base_time();
    for _ in 0..3 {
        assert!(limiter.check("idle", 3, now).await.unwrap().allowed);
    }
    assert!(!limiter.check("idle", 3, now).await.unwrap().allowed);

    let later = now + chrono::Duration::minutes(5);
    let d = limiter.check("idle", 3, later).await.unwrap();

    assert!(d.allowed);
    assert_eq!(d.remaining, 2);
}

#[tokio::test]
async fn an_expired_event_is_absent_and_can_be_stored_again() {
    let clock = Arc::new(ManualClock::new(base_time()));
    let ctx = testing::context(testing::unique_settings("d"), clock.clone()).await;
    crate::bootstrap(&ctx).await.unwrap();
    let store = DynamoEventStore::new(Arc::new(ctx));
    let e = event(None, clock.now());
    assert!(store.put_if_absent(&e).await.unwrap());

    clock.advance(deliveries::EVENT_RETENTION + chrono::Duration::seconds(1));

    assert!(matches!(
        store.get(&e.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(store.put_if_absent(&e).await.unwrap());
    assert_eq!(store.get(&e.id).await.unwrap(), e);
}

#[tokio::test]
async fn a_wa_id_set_by_a_status_change_finds_the_message() {
    let ctx = stack().await;
    let store = DynamoMessageStore::new(ctx);
    let sid = session_id("w");
    let m = message(&sid, &chat(1), None, base_time());
    store.insert(&m).await.unwrap();
    let wa = WaMessageId::outgoing(&chat(1), "3EB0FF").unwrap();

    let sent = StatusUpdate {
        status: MessageStatus::Sent,
        wa_id: Some(wa.clone()),
        failure: None,
        at: at(m.created_at, 5),
    };
    store.update_status(&sid, &m.id, &sent).await.unwrap();

    let found = store.get_by_wa_id(&sid, &wa).await.unwrap();
    assert_eq!((found.id, found.status), (m.id, MessageStatus::Sent));
}

#[tokio::test]
async fn deleting_a_session_frees_its_idempotency_keys() {
    let ctx = stack().await;
    let store = DynamoMessageStore::new(ctx);
    let sid = session_id("g");
    store
        .insert(&message(&sid, &chat(1), Some("k"), base_time()))
        .await
        .unwrap();

    assert_eq!(store.delete_session(&sid).await.unwrap(), 1);

    let again = message(&sid, &chat(1), Some("k"), base_time());
    assert_eq!(store.insert(&again).await.unwrap(), Inserted::Created);
}

#[tokio::test]
async fn audit_entries_of_one_key_page_through_its_index() {
    let ctx = stack().await;
    let store = DynamoAuditStore::new(ctx);
    let (key, other) = (ApiKeyId::generate(), ApiKeyId::generate());
    let base = base_time();
    for i in 0..5 {
        store
            .append(&audit("message.send", Some(&key), None, at(base, i)))
            .await
            .unwrap();
        store
            .append(&audit("message.send", Some(&other), None, at(base, i)))
            .await
            .unwrap();
    }
    let filter = AuditFilter {
        key_id: Some(key.clone()),
        since: Some(at(base, 1)),
        ..Default::default()
    };

    let first = store.list(&filter, &PageRequest::first(3)).await.unwrap();
    let next = PageRequest::parse(Some(3), first.next_cursor.clone()).unwrap();
    let second = store.list(&filter, &next).await.unwrap();

    let times: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|e| e.at)
        .collect();
    assert_eq!(times, (1..5).rev().map(|i| at(base, i)).collect::<Vec<_>>());
    assert!(first.items.iter().all(|e| e.key_id.as_ref() == Some(&key)));
    // A cursor of another listing shape is refused rather than misread.
    let unfiltered = PageRequest::parse(Some(3), first.next_cursor).unwrap();
    assert!(matches!(
        store.list(&AuditFilter::default(), &unfiltered).await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test]
async fn expired_messages_and_audit_entries_are_gone_and_their_keys_free_again() {
    let clock = Arc::new(ManualClock::new(base_time()));
    let mut settings = testing::unique_settings("r");
    settings.message_retention_days = 1;
    settings.audit_retention_days = 2;
    let ctx = Arc::new(testing::context(settings, clock.clone()).await);
    crate::bootstrap(&ctx).await.unwrap();
    let messages = DynamoMessageStore::new(ctx.clone());
    let audit_store = DynamoAuditStore::new(ctx.clone());
    let sid = session_id("r");
    let first = message(&sid, &chat(1), Some("k1"), clock.now());
    assert_eq!(messages.insert(&first).await.unwrap(), Inserted::Created);
    let entry = audit("message.send", None, Some(&sid), clock.now());
    audit_store.append(&entry).await.unwrap();

    clock.advance(chrono::Duration::days(1) + chrono::Duration::seconds(1));
    assert!(matches!(
        messages.get(&sid, &first.id).await,
        Err(Error::NotFound { .. })
    ));
    let listed = messages
        .list(&sid, &MessageFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert!(listed.items.is_empty(), "{:?}", listed.items);
    // The idempotency key expired with its message: a new send with it is a new message.
    let second = message(&sid, &chat(1), Some("k1"), clock.now());
    assert_eq!(messages.insert(&second).await.unwrap(), Inserted::Created);
    let audit_page = audit_store
        .list(&AuditFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        audit_page.items.len(),
        1,
        "the audit entry outlives the message"
    );

    clock.advance(chrono::Duration::days(1));
    let audit_page = audit_store
        .list(&AuditFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert!(audit_page.items.is_empty());
}
