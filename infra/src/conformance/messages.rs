//! Message store checks: idempotent inserts (also under concurrency), accepted sends (message,
//! audit entry and event in one write), forward-only status, lookups, filters and cursor
//! pagination.

use std::collections::HashSet;

use openwa_core::Error;
use openwa_core::jid::WaMessageId;
use openwa_core::message::{Direction, Failure, MessageStatus, StatusUpdate};
use openwa_core::page::PageRequest;
use std::time::Duration;

use openwa_core::audit::{AuditEntry, AuditFilter};
use openwa_core::event::{Event, EventType};
use openwa_core::message::Message;
use openwa_core::ports::{Acceptance, Inserted, MessageFilter, QueueName};

use super::Fixture;
use super::fixtures::{at, base_time, chat, inbound, message, session, session_id};
use crate::assert_err;

pub async fn a_message_reads_back_with_its_fingerprint(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let sid = session_id("m");
    let m = message(&sid, &chat(1), Some("k1"), base_time());

    assert_eq!(
        fx.backend.messages.insert(&m).await.unwrap(),
        Inserted::Created
    );

    let stored = fx.backend.messages.get(&sid, &m.id).await.unwrap();
    assert_eq!(stored, m);
    assert!(stored.request_fingerprint.is_some());
    assert_err!(
        fx.backend.messages.get(&session_id("other"), &m.id).await,
        Error::NotFound { .. }
    );
}

pub async fn a_reused_idempotency_key_returns_the_first_message(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let sid = session_id("m");
    let first = message(&sid, &chat(1), Some("order-42"), base_time());
    fx.backend.messages.insert(&first).await.unwrap();

    let mut replay = message(&sid, &chat(2), Some("order-42"), base_time());
    replay.request_fingerprint = Some("something else".into());
    let outcome = fx.backend.messages.insert(&replay).await.unwrap();

    assert_eq!(outcome, Inserted::Existing(first.clone()));
    assert_err!(
        fx.backend.messages.get(&sid, &replay.id).await,
        Error::NotFound { .. }
    );
    // The same key in another session is another message.
    let elsewhere = message(&session_id("n"), &chat(1), Some("order-42"), base_time());
    assert_eq!(
        fx.backend.messages.insert(&elsewhere).await.unwrap(),
        Inserted::Created
    );
}

pub async fn ten_parallel_inserts_with_one_key_create_exactly_one_message(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let sid = session_id("m");
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = fx.backend.messages.clone();
            let m = message(&sid, &chat(1), Some("same-key"), base_time());
            tokio::spawn(async move { (store.insert(&m).await, m) })
        })
        .collect();

    let mut created = Vec::new();
    let mut existing = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (Ok(Inserted::Created), m) => created.push(m),
            (Ok(Inserted::Existing(m)), _) => existing.push(m),
            (Err(e), _) => panic!("insert failed: {e}"),
        }
    }

    assert_eq!(created.len(), 1);
    assert_eq!(existing.len(), 9);
    assert!(existing.iter().all(|m| *m == created[0]));
    let page = fx
        .backend
        .messages
        .list(&sid, &MessageFilter::default(), &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

pub async fn a_duplicate_message_id_is_a_conflict(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let m = message(&session_id("m"), &chat(1), None, base_time());
    fx.backend.messages.insert(&m).await.unwrap();

    assert_err!(fx.backend.messages.insert(&m).await, Error::Conflict { .. });
}

pub async fn statuses_only_move_forward(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let sid = session_id("m");
    let m = message(&sid, &chat(1), None, base_time());
    fx.backend.messages.insert(&m).await.unwrap();
    let wa = WaMessageId::outgoing(&chat(1), "3EB0ABCDEF").unwrap();
    let update = |status, n| StatusUpdate {
        status,
        wa_id: None,
        failure: None,
        at: at(m.created_at, n),
    };

    let sent = StatusUpdate {
        wa_id: Some(wa.clone()),
        ..update(MessageStatus::Sent, 10)
    };
    let after = fx
        .backend
        .messages
        .update_status(&sid, &m.id, &sent)
        .await
        .unwrap();
    assert_eq!(
        (after.status, after.wa_id.clone(), after.updated_at),
        (MessageStatus::Sent, Some(wa.clone()), sent.at)
    );

    let read = fx
        .backend
        .messages
        .update_status(&sid, &m.id, &update(MessageStatus::Read, 20))
        .await
        .unwrap();
    assert_eq!(read.status, MessageStatus::Read);

    let late_ack = fx
        .backend
        .messages
        .update_status(&sid, &m.id, &update(MessageStatus::Delivered, 30))
        .await
        .unwrap();
    assert_eq!(
        late_ack, read,
        "a step back is ignored and the stored message returned"
    );
    let failed = StatusUpdate {
        failure: Some(Failure {
            code: "engine_error".into(),
            message: "boom".into(),
        }),
        ..update(MessageStatus::Failed, 40)
    };
    assert_eq!(
        fx.backend
            .messages
            .update_status(&sid, &m.id, &failed)
            .await
            .unwrap()
            .status,
        MessageStatus::Read
    );
    assert_eq!(fx.backend.messages.get(&sid, &m.id).await.unwrap(), read);

    let other = message(&sid, &chat(1), None, base_time());
    fx.backend.messages.insert(&other).await.unwrap();
    let stored = fx
        .backend
        .messages
        .update_status(&sid, &other.id, &failed)
        .await
        .unwrap();
    assert_eq!(
        (stored.status, stored.failure),
        (MessageStatus::Failed, failed.failure.clone())
    );

    let ghost = message(&sid, &chat(1), None, base_time());
    assert_err!(
        fx.backend
            .messages
            .update_status(&sid, &ghost.id, &failed)
            .await,
        Error::NotFound { .. }
    );
}

pub async fn messages_are_found_by_whatsapp_id(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let sid = session_id("m");
    let mut m = inbound(&sid, &chat(3), base_time());
    let wa = WaMessageId::parse(&format!("false_{}_ABC123", chat(3))).unwrap();
    m.wa_id = Some(wa.clone());
    fx.backend.messages.insert(&m).await.unwrap();

    assert_eq!(
        fx.backend.messages.get_by_wa_id(&sid, &wa).await.unwrap(),
        m
    );
    assert_err!(
        fx.backend
            .messages
            .get_by_wa_id(&session_id("other"), &wa)
            .await,
        Error::NotFound { .. }
    );
    let unknown = WaMessageId::parse(&format!("false_{}_NOPE", chat(3))).unwrap();
    assert_err!(
        fx.backend.messages.get_by_wa_id(&sid, &unknown).await,
        Error::NotFound { .. }
    );
}

pub async fn pagination_walks_every_message_once_newest_first(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let sid = session_id("m");
    let base = base_time();
    // Pairs share a timestamp, so the cursor must break ties.
    let mut all = Vec::new();
    for i in 0..23 {
        let m = message(&sid, &chat(1), None, at(base, i / 2));
        fx.backend.messages.insert(&m).await.unwrap();
        all.push(m);
    }

    let mut seen = Vec::new();
    let mut page = PageRequest::first(5);
    loop {
        let got = fx
            .backend
            .messages
            .list(&sid, &MessageFilter::default(), &page)
            .await
            .unwrap();
        assert!(got.items.len() <= 5);
        seen.extend(got.items);
        match got.next_cursor {
            Some(c) => page = PageRequest::parse(Some(5), Some(c)).unwrap(),
            None => break,
        }
    }

    assert_eq!(seen.len(), all.len());
    let ids: HashSet<_> = seen.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids.len(), all.len(), "no message twice");
    assert!(
        seen.windows(2).all(|w| w[0].created_at >= w[1].created_at),
        "newest first"
    );
}

pub async fn message_lists_filter_by_chat_direction_and_status(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let sid = session_id("m");
    let base = base_time();
    for i in 0..3 {
        fx.backend
            .messages
            .insert(&message(&sid, &chat(1), None, at(base, i)))
            .await
            .unwrap();
        fx.backend
            .messages
            .insert(&inbound(&sid, &chat(2), at(base, i)))
            .await
            .unwrap();
    }
    let list = async |filter: MessageFilter| {
        fx.backend
            .messages
            .list(&sid, &filter, &PageRequest::first(100))
            .await
            .unwrap()
            .items
    };

    let by_chat = list(MessageFilter {
        chat_id: Some(chat(2)),
        ..Default::default()
    })
    .await;
    assert_eq!(by_chat.len(), 3);
    assert!(by_chat.iter().all(|m| m.chat_id == chat(2)));
    let outbound = list(MessageFilter {
        direction: Some(Direction::Outbound),
        ..Default::default()
    })
    .await;
    assert!(outbound.len() == 3 && outbound.iter().all(|m| m.direction == Direction::Outbound));
    let received = list(MessageFilter {
        status: Some(MessageStatus::Received),
        ..Default::default()
    })
    .await;
    assert!(received.len() == 3 && received.iter().all(|m| m.status == MessageStatus::Received));
    let none = list(MessageFilter {
        chat_id: Some(chat(1)),
        direction: Some(Direction::Inbound),
        status: None,
    })
    .await;
    assert!(none.is_empty());
}

pub async fn a_cursor_that_does_not_decode_is_invalid(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let page = PageRequest::parse(Some(10), Some("not-a-cursor".into())).unwrap();

    let result = fx
        .backend
        .messages
        .list(&session_id("m"), &MessageFilter::default(), &page)
        .await;

    assert!(
        matches!(&result, Err(Error::Invalid { field, .. }) if field == "cursor"),
        "{result:?}"
    );
}

pub async fn deleting_a_session_removes_only_its_messages(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (gone, kept) = (session_id("gone"), session_id("kept"));
    for _ in 0..3 {
        fx.backend
            .messages
            .insert(&message(&gone, &chat(1), None, base_time()))
            .await
            .unwrap();
    }
    let survivor = message(&kept, &chat(1), None, base_time());
    fx.backend.messages.insert(&survivor).await.unwrap();

    assert_eq!(fx.backend.messages.delete_session(&gone).await.unwrap(), 3);

    let left = fx
        .backend
        .messages
        .list(&gone, &MessageFilter::default(), &PageRequest::first(10))
        .await
        .unwrap();
    assert!(left.items.is_empty());
    assert_eq!(
        fx.backend.messages.get(&kept, &survivor.id).await.unwrap(),
        survivor
    );
}

/// What the API writes for one send of `m`.
fn acceptance(m: &Message) -> Acceptance {
    Acceptance {
        message: m.clone(),
        audit: AuditEntry::new(
            None,
            "message.send",
            format!("message:{}", m.id),
            Some(m.session_id.clone()),
            "ok",
            m.created_at,
        ),
        event: Event::new(
            EventType::MessageQueued,
            Some(m.session_id.clone()),
            m.created_at,
            serde_json::to_value(m).expect("message serialises"),
        ),
    }
}

/// Every event on the events queue within a few seconds (acked as read).
async fn queued_events(fx: &Fixture) -> Vec<Event> {
    fx.drain_outbox().await;
    let queue = &fx.backend.queue;
    let mut events = Vec::new();
    let mut wait = Duration::from_secs(3);
    loop {
        let jobs = match queue
            .receive(&QueueName::Events, 10, Duration::from_secs(30), wait)
            .await
        {
            Ok(jobs) => jobs,
            // No event was ever published: the queue may not exist yet.
            Err(Error::NotFound { .. }) => return events,
            Err(e) => panic!("receiving events: {e}"),
        };
        if jobs.is_empty() {
            return events;
        }
        for job in jobs {
            events.push(serde_json::from_slice(&job.body).expect("an event"));
            queue.ack(&QueueName::Events, &job.receipt).await.unwrap();
        }
        wait = Duration::from_millis(500);
    }
}

async fn audit_of(fx: &Fixture, m: &Message) -> Vec<AuditEntry> {
    let filter = AuditFilter {
        session_id: Some(m.session_id.clone()),
        ..AuditFilter::default()
    };
    fx.backend
        .audit
        .list(&filter, &PageRequest::first(100))
        .await
        .unwrap()
        .items
}

pub async fn an_accepted_send_stores_its_message_audit_entry_and_event(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let sid = session_id("acc");
    let s = session(&sid, base_time());
    fx.backend.sessions.create(&s).await.unwrap();
    let m = message(&sid, &chat(1), Some("k-1"), base_time());
    let a = acceptance(&m);

    assert_eq!(
        fx.backend.messages.accept(&a).await.unwrap(),
        Inserted::Created
    );
    assert_eq!(fx.backend.messages.get(&sid, &m.id).await.unwrap(), m);
    assert_eq!(audit_of(&fx, &m).await, vec![a.audit.clone()]);
    // The event arrives with the session's metadata attached on the way.
    let mut expected = a.event.clone();
    expected.metadata = s.config.metadata.clone();
    assert!(!expected.metadata.is_empty());
    assert_eq!(queued_events(&fx).await, vec![expected]);
}

pub async fn accepting_for_an_unknown_session_writes_nothing(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let sid = session_id("gone");
    let m = message(&sid, &chat(1), Some("k-1"), base_time());

    assert_err!(
        fx.backend.messages.accept(&acceptance(&m)).await,
        Error::NotFound {
            resource: "session"
        }
    );
    assert_err!(
        fx.backend.messages.get(&sid, &m.id).await,
        Error::NotFound { .. }
    );
    assert!(audit_of(&fx, &m).await.is_empty());
    assert!(queued_events(&fx).await.is_empty());
    // The key was not taken: once the session exists, the same key is a new message.
    fx.backend
        .sessions
        .create(&session(&sid, base_time()))
        .await
        .unwrap();
    assert_eq!(
        fx.backend.messages.accept(&acceptance(&m)).await.unwrap(),
        Inserted::Created
    );
}

pub async fn a_replayed_acceptance_writes_no_second_audit_entry_or_event(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let sid = session_id("rep");
    fx.backend
        .sessions
        .create(&session(&sid, base_time()))
        .await
        .unwrap();
    let first = message(&sid, &chat(1), Some("order-7"), base_time());
    let replay = message(&sid, &chat(1), Some("order-7"), base_time());
    let a = acceptance(&first);
    fx.backend.messages.accept(&a).await.unwrap();

    assert_eq!(
        fx.backend
            .messages
            .accept(&acceptance(&replay))
            .await
            .unwrap(),
        Inserted::Existing(first.clone())
    );
    assert_eq!(audit_of(&fx, &first).await, vec![a.audit.clone()]);
    let events = queued_events(&fx).await;
    assert_eq!(
        events.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![a.event.id.clone()]
    );
}
