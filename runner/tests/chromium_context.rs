//! Context isolation mode against the simulator in real Chromium: sessions of one engine share
//! one browser but nothing else (accounts, messages, storage), a login comes back only from its
//! dump, and a killed shared browser ends every session on it, which then start again on a new
//! browser from their dumps.

mod chromium_support;

use std::time::Duration;

use chromium_support::*;
use openwa_core::jid::ChatId;
use openwa_runner::engine::{EngineEvent, EngineSession, IsolationMode};
use serde_json::{Value, json};

const SECOND_PHONE: &str = "15550100003";

async fn world_with_two_gateways() -> World {
    let world = World::new_in(IsolationMode::Context).await;
    world
        .control(
            "POST",
            "/accounts",
            json!({"phone": SECOND_PHONE, "pushname": "Second"}),
        )
        .await;
    world
}

/// The browser process serving a context-mode session.
fn browser_of(session: &dyn EngineSession) -> u32 {
    browser_pid(&session.pids())
}

/// Bodies of the friend's chat with `gateway`.
async fn friend_chat_with(world: &World, gateway: &str) -> Vec<String> {
    let v = world
        .control(
            "GET",
            &format!("/accounts/{FRIEND_PHONE}/messages?chat={gateway}@c.us"),
            Value::Null,
        )
        .await;
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn two_context_sessions_share_a_browser_but_not_their_accounts_messages_or_storage() {
    let _serial = SERIAL.lock().await;
    let world = world_with_two_gateways().await;
    let (a, mut a_events) = world.logged_in_as("a", GATEWAY_PHONE).await;
    let (b, mut b_events) = world.logged_in_as("b", SECOND_PHONE).await;
    assert_eq!(
        browser_of(a.as_ref()),
        browser_of(b.as_ref()),
        "one browser"
    );

    // Each sends as its own account.
    a.send(&text_to_friend("from a")).await.expect("a sends");
    b.send(&text_to_friend("from b")).await.expect("b sends");
    assert_eq!(friend_chat_with(&world, GATEWAY_PHONE).await, ["from a"]);
    assert_eq!(friend_chat_with(&world, SECOND_PHONE).await, ["from b"]);

    // Each receives only its own.
    for (to, body) in [(GATEWAY_PHONE, "to a"), (SECOND_PHONE, "to b")] {
        world
            .control(
                "POST",
                &format!("/accounts/{FRIEND_PHONE}/messages"),
                json!({"to": to, "body": body}),
            )
            .await;
    }
    for (events, want, other) in [
        (&mut a_events, "to a", "to b"),
        (&mut b_events, "to b", "to a"),
    ] {
        let EngineEvent::Message(m) = next_matching(
            events,
            |e| matches!(e, EngineEvent::Message(m) if !m.from_me),
        )
        .await
        else {
            unreachable!()
        };
        assert_eq!(m.body.as_deref(), Some(want), "not {other}");
        assert_eq!(m.chat, ChatId::parse(FRIEND_PHONE).unwrap());
    }

    // Local Storage and IndexedDB are per context: each dump holds its own login only.
    let a_dump = String::from_utf8(a.export_auth().await.unwrap().into_bytes()).unwrap();
    let b_dump = String::from_utf8(b.export_auth().await.unwrap().into_bytes()).unwrap();
    assert!(a_dump.contains(&format!("{GATEWAY_PHONE}:")));
    assert!(!a_dump.contains(&format!("{SECOND_PHONE}:")));
    assert!(b_dump.contains(&format!("{SECOND_PHONE}:")));
    assert!(!b_dump.contains(&format!("{GATEWAY_PHONE}:")));
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn a_context_session_started_without_its_dump_shows_a_qr() {
    let _serial = SERIAL.lock().await;
    let world = World::new_in(IsolationMode::Context).await;
    let (session, events) = world.logged_in("forgetful").await;
    world.wait_connections(2).await;
    let dump = world.stop_keeping_login(session, events).await;
    assert!(dump.is_some());

    // Off the record: nothing of the login outlives the context.
    let (session, mut events) = world.start_with("forgetful", None).await;
    let first = next_matching(&mut events, |e| {
        matches!(e, EngineEvent::Qr { .. } | EngineEvent::Ready { .. })
    })
    .await;
    assert!(
        matches!(first, EngineEvent::Qr { .. }),
        "expected a QR, got {first:?}"
    );
    session.stop().await.unwrap();
}

#[tokio::test]
async fn killing_the_shared_browser_ends_every_session_and_they_come_back_on_a_new_one() {
    let _serial = SERIAL.lock().await;
    let world = world_with_two_gateways().await;
    let (a, mut a_events) = world.logged_in_as("a", GATEWAY_PHONE).await;
    let (b, mut b_events) = world.logged_in_as("b", SECOND_PHONE).await;
    world.wait_connections(2).await;
    let dumps = [
        a.export_auth().await.unwrap(),
        b.export_auth().await.unwrap(),
    ];
    let browser = browser_of(a.as_ref());

    // Act: the shared browser dies from outside.
    openwa_runner::engine::chromium::launch::kill_group(browser);

    // Both streams end, each with a failure that says the browser is gone.
    for events in [&mut a_events, &mut b_events] {
        let seen = until_end(events, Duration::from_secs(10)).await;
        assert!(
            matches!(seen.last(), Some(EngineEvent::Failed { .. })),
            "{seen:?}"
        );
    }
    drop((a, b));

    // What the runner's supervision does next: start them again, from their dumps.
    let [a_dump, b_dump] = dumps;
    let (a, mut a_events) = world.start_with("a", Some(a_dump)).await;
    let (b, mut b_events) = world.start_with("b", Some(b_dump)).await;
    for events in [&mut a_events, &mut b_events] {
        let first = next_matching(events, |e| {
            matches!(e, EngineEvent::Qr { .. } | EngineEvent::Ready { .. })
        })
        .await;
        assert!(
            matches!(first, EngineEvent::Ready { .. }),
            "expected Ready without a QR, got {first:?}"
        );
    }
    let new_browser = browser_of(a.as_ref());
    assert_ne!(new_browser, browser, "a new shared browser");
    assert_eq!(browser_of(b.as_ref()), new_browser);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
