//! Receiving and the other calls through the Chromium engine against the in-process
//! simulator: inbound messages and media (12 MiB both ways), edits, revokes, reactions,
//! number checks, read receipts, a surface change limited to one feature.

mod chromium_support;

use chromium_support::*;
use openwa_core::jid::ChatId;
use openwa_runner::engine::EngineEvent;
use serde_json::json;

#[tokio::test]
async fn an_inbound_text_becomes_a_message_event() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.logged_in("inbound").await;
    world.wait_connections(2).await;

    let sent = world
        .control(
            "POST",
            &format!("/accounts/{FRIEND_PHONE}/messages"),
            json!({"to": GATEWAY_PHONE, "body": "ping from the phone"}),
        )
        .await;
    let EngineEvent::Message(m) =
        next_matching(&mut events, |e| matches!(e, EngineEvent::Message(_))).await
    else {
        unreachable!()
    };
    assert_eq!(m.chat.as_str(), format!("{FRIEND_PHONE}@c.us"));
    assert_eq!(m.body.as_deref(), Some("ping from the phone"));
    assert!(!m.from_me);
    assert_eq!(m.kind, openwa_core::content::MessageType::Text);
    assert_eq!(m.wa_id.inner(), sent["id"].as_str().unwrap());
    assert_eq!(
        m.wa_id.as_str(),
        format!("false_{FRIEND_PHONE}@c.us_{}", sent["id"].as_str().unwrap())
    );
    session.stop().await.unwrap();
}

#[tokio::test]
async fn revokes_edits_and_reactions_from_the_phone_become_events() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.logged_in("inbound-changes").await;
    world.wait_connections(2).await;
    let mine = session
        .send(&text_to_friend("react to me"))
        .await
        .expect("send");

    let friend = format!("/accounts/{FRIEND_PHONE}");
    let sent = world
        .control(
            "POST",
            &format!("{friend}/messages"),
            json!({"to": GATEWAY_PHONE, "body": "typo"}),
        )
        .await;
    let inner = sent["id"].as_str().unwrap().to_owned();
    let EngineEvent::Message(m) =
        next_matching(&mut events, |e| matches!(e, EngineEvent::Message(_))).await
    else {
        unreachable!()
    };
    world
        .control(
            "POST",
            &format!("{friend}/edit"),
            json!({"id": inner, "body": "fixed"}),
        )
        .await;
    let EngineEvent::Edited { wa_id, body } =
        next_matching(&mut events, |e| matches!(e, EngineEvent::Edited { .. })).await
    else {
        unreachable!()
    };
    assert_eq!((wa_id, body.as_str()), (m.wa_id.clone(), "fixed"));
    world
        .control("POST", &format!("{friend}/revoke"), json!({"id": inner}))
        .await;
    let EngineEvent::Revoked { wa_id } =
        next_matching(&mut events, |e| matches!(e, EngineEvent::Revoked { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(wa_id, m.wa_id);
    world
        .control(
            "POST",
            &format!("{friend}/react"),
            json!({"id": mine.wa_id.as_str(), "text": "🎉"}),
        )
        .await;
    let EngineEvent::Reaction {
        target,
        sender,
        emoji,
    } = next_matching(&mut events, |e| matches!(e, EngineEvent::Reaction { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(target, mine.wa_id);
    assert_eq!(sender.as_str(), format!("{FRIEND_PHONE}@c.us"));
    assert_eq!(emoji, "🎉");
    session.stop().await.unwrap();
}

#[tokio::test]
async fn numbers_are_checked_and_chats_marked_read() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.logged_in("lookups").await;
    world.wait_connections(2).await;

    let friend = ChatId::parse(FRIEND_PHONE).unwrap();
    assert_eq!(
        session.check_number(&friend).await.unwrap(),
        Some(friend.clone())
    );
    assert_eq!(
        session
            .check_number(&ChatId::parse("15559999999").unwrap())
            .await
            .unwrap(),
        None
    );

    world
        .control(
            "POST",
            &format!("/accounts/{FRIEND_PHONE}/messages"),
            json!({"to": GATEWAY_PHONE, "body": "read me"}),
        )
        .await;
    next_matching(&mut events, |e| matches!(e, EngineEvent::Message(_))).await;
    session.mark_read(&friend).await.expect("mark read");
    let seen = world.friend_messages().await;
    let mine = seen.iter().find(|m| m["body"] == "read me").unwrap();
    assert_eq!(mine["ack"], 3, "the sender sees the read receipt: {mine}");
    session.stop().await.unwrap();
}

#[tokio::test]
async fn inbound_media_arrives_with_its_bytes() {
    use base64::Engine as _;
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.logged_in("inbound-media").await;
    world.wait_connections(2).await;

    let bytes = b"\x89PNG\r\n\x1a\ninbound picture bytes".to_vec();
    let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let body = json!({"to": GATEWAY_PHONE, "type": "image", "caption": "look", "media": {"data": data, "mimetype": "image/png"}});
    world
        .control("POST", &format!("/accounts/{FRIEND_PHONE}/messages"), body)
        .await;
    let EngineEvent::Message(m) =
        next_matching(&mut events, |e| matches!(e, EngineEvent::Message(_))).await
    else {
        unreachable!()
    };
    assert_eq!(m.kind, openwa_core::content::MessageType::Image);
    assert_eq!(m.caption.as_deref(), Some("look"));
    let media = m.media.expect("media bytes");
    assert_eq!(media.mimetype, "image/png");
    assert_eq!(media.bytes, bytes);
    session.stop().await.unwrap();
}

#[tokio::test]
async fn a_renamed_feature_module_fails_only_the_call_that_needs_it() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, _events) = world.logged_in("feature-surface").await;
    world.wait_connections(2).await;
    world
        .control(
            "POST",
            "/faults",
            json!({"rename_module": "WAWebQueryExistsJob"}),
        )
        .await;

    // The fault reaches the page over its socket, a moment after the control call returns:
    // call until the page has applied it (bounded), then the error must name the module.
    let friend = ChatId::parse(FRIEND_PHONE).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let err = loop {
        match session.check_number(&friend).await {
            Err(err) => break err,
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Ok(found) => panic!("the renamed module was still reachable after 10 s: {found:?}"),
        }
    };
    assert!(
        matches!(&err, openwa_runner::engine::EngineError::SurfaceChanged { module, .. } if module == "WAWebQueryExistsJob"),
        "{err:?}"
    );
    session
        .send(&text_to_friend("still sending"))
        .await
        .expect("the session goes on");
    session.stop().await.unwrap();
}

#[tokio::test]
async fn large_media_goes_both_ways() {
    use base64::Engine as _;
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.logged_in("large-media").await;
    world.wait_connections(2).await;
    let bytes: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();

    let mut out = to_friend(openwa_core::content::Content::Document {
        media: media_ref("application/pdf", &bytes),
        caption: None,
    });
    out.media = Some(openwa_runner::engine::MediaPayload {
        mimetype: "application/pdf".into(),
        filename: Some("big.pdf".into()),
        bytes: bytes.clone(),
    });
    session
        .send(&out)
        .await
        .expect("a 12 MiB document goes out");

    let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let body = json!({"to": GATEWAY_PHONE, "type": "document", "media": {"data": data, "mimetype": "application/pdf", "filename": "in.pdf"}});
    world
        .control("POST", &format!("/accounts/{FRIEND_PHONE}/messages"), body)
        .await;
    let EngineEvent::Message(m) =
        next_matching(&mut events, |e| matches!(e, EngineEvent::Message(_))).await
    else {
        unreachable!()
    };
    assert_eq!(m.media.expect("media").bytes.len(), bytes.len());
    session.stop().await.unwrap();
}
