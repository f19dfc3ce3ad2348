//! Sending through the Chromium engine against the in-process simulator: the idempotent send
//! (also across page reloads), acks, every content type, groups.

mod chromium_support;

use std::time::Duration;

use chromium_support::*;
use openwa_core::content::Content;
use openwa_core::jid::ChatId;
use openwa_runner::engine::EngineEvent;
use serde_json::{Value, json};

#[tokio::test]
async fn a_sent_text_arrives_once_with_the_derived_key_and_acks_follow() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.logged_in("send-text").await;
    world.wait_connections(2).await;

    let msg = text_to_friend("hello friend");
    let receipt = session.send(&msg).await.expect("send");
    assert!(!receipt.already_sent);
    assert_eq!(receipt.wa_id.inner(), msg.wa_key);
    assert_eq!(
        receipt.wa_id.remote().as_str(),
        format!("{FRIEND_PHONE}@c.us")
    );

    let acked = |level: i8| {
        let id = receipt.wa_id.clone();
        move |e: &EngineEvent| matches!(e, EngineEvent::Ack { wa_id, level: l } if *wa_id == id && *l == level)
    };
    next_matching(&mut events, acked(1)).await;
    next_matching(&mut events, acked(2)).await;
    world
        .control(
            "POST",
            &format!("/accounts/{FRIEND_PHONE}/read"),
            json!({"chat": format!("{GATEWAY_PHONE}@c.us")}),
        )
        .await;
    next_matching(&mut events, acked(3)).await;

    // The same job again (a redelivery): nothing new is sent.
    let again = session.send(&msg).await.expect("second send");
    assert!(again.already_sent);
    assert_eq!(again.wa_id, receipt.wa_id);
    let received: Vec<Value> = world
        .friend_messages()
        .await
        .into_iter()
        .filter(|m| m["body"] == "hello friend")
        .collect();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["id"]["id"], msg.wa_key.as_str());
    session.stop().await.unwrap();
}

#[tokio::test]
async fn location_contact_poll_image_reply_and_reaction_reach_the_recipient() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, _events) = world.logged_in("content").await;
    world.wait_connections(2).await;

    let first = session
        .send(&text_to_friend("quote me"))
        .await
        .expect("text");
    let location = Content::Location {
        latitude: 52.52,
        longitude: 13.405,
        name: Some("Berlin".into()),
        address: None,
    };
    session.send(&to_friend(location)).await.expect("location");
    let contact = Content::Contact {
        contacts: vec![openwa_core::content::ContactCard {
            name: "Ada".into(),
            phone: "+15550100003".into(),
        }],
    };
    session.send(&to_friend(contact)).await.expect("contact");
    let poll = Content::Poll {
        name: "Lunch?".into(),
        options: vec!["yes".into(), "no".into()],
        selectable_count: 1,
    };
    session.send(&to_friend(poll)).await.expect("poll");
    let png = b"\x89PNG\r\n\x1a\nnot really a png".to_vec();
    let mut image = to_friend(Content::Image {
        media: media_ref("image/png", &png),
        caption: Some("a picture".into()),
    });
    image.media = Some(openwa_runner::engine::MediaPayload {
        mimetype: "image/png".into(),
        filename: Some("pic.png".into()),
        bytes: png,
    });
    session.send(&image).await.expect("image");
    let mut reply = text_to_friend("replying");
    reply.reply_to = Some(first.wa_id.clone());
    reply.mentions = vec![ChatId::parse(FRIEND_PHONE).unwrap()];
    session.send(&reply).await.expect("reply with a mention");
    let reaction = Content::Reaction {
        message_id: first.wa_id.clone(),
        emoji: "👍".into(),
    };
    session.send(&to_friend(reaction)).await.expect("reaction");

    let got = world.friend_messages().await;
    let by_type = |t: &str| {
        got.iter()
            .find(|m| m["type"] == t)
            .unwrap_or_else(|| panic!("no {t} in {got:#?}"))
            .clone()
    };
    assert_eq!(by_type("location")["lat"], 52.52);
    assert!(
        by_type("vcard")["body"]
            .as_str()
            .unwrap()
            .contains("waid=15550100003")
    );
    assert_eq!(by_type("poll_creation")["pollName"], "Lunch?");
    let img = by_type("image");
    assert_eq!(img["caption"], "a picture");
    let path = img["directPath"]
        .as_str()
        .expect("uploaded media has a direct path");
    let url = format!("{}{path}", world.sim.base_url());
    let uploaded = world
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        &uploaded[..],
        b"\x89PNG\r\n\x1a\nnot really a png",
        "the recipient can fetch the bytes"
    );
    let replied = got
        .iter()
        .find(|m| m["body"] == "replying")
        .expect("the reply");
    assert_eq!(replied["quotedStanzaID"], first.wa_id.inner(), "{replied}");
    assert_eq!(
        replied["mentionedJidList"][0],
        format!("{FRIEND_PHONE}@c.us")
    );
    let quoted = got
        .iter()
        .find(|m| m["body"] == "quote me")
        .expect("the quoted message");
    assert_eq!(
        quoted["reactions"][format!("{GATEWAY_PHONE}@c.us")],
        "👍",
        "{quoted}"
    );
    session.stop().await.unwrap();
}

#[tokio::test]
async fn a_send_that_makes_the_page_reload_still_sends_once() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, _events) = world.logged_in("reload-on-send").await;
    world.wait_connections(2).await;
    world
        .control("POST", "/faults", json!({"reload_on_send": true}))
        .await;

    let msg = text_to_friend("through a reload");
    let receipt = session
        .send(&msg)
        .await
        .expect("the send survives the reload");
    assert_eq!(receipt.wa_id.inner(), msg.wa_key);
    let received: Vec<Value> = world
        .friend_messages()
        .await
        .into_iter()
        .filter(|m| m["body"] == "through a reload")
        .collect();
    assert_eq!(received.len(), 1, "{received:?}");
    session.stop().await.unwrap();
}

#[tokio::test]
async fn group_messages_go_out_once_and_come_in_with_their_author() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.logged_in("group").await;
    world.wait_connections(2).await;
    let group = world
        .control(
            "POST",
            &format!("/accounts/{FRIEND_PHONE}/groups"),
            json!({"subject": "Team", "participants": [GATEWAY_PHONE]}),
        )
        .await;
    let gid = ChatId::parse(group["id"].as_str().unwrap()).unwrap();
    next_matching(
        &mut events,
        |e| matches!(e, EngineEvent::Group { chat, .. } if *chat == gid),
    )
    .await;

    let mut msg = text_to_friend("hello team");
    msg.chat = gid.clone();
    let first = session.send(&msg).await.expect("group send");
    let again = session.send(&msg).await.expect("group resend");
    assert!(!first.already_sent);
    assert!(again.already_sent, "the resend finds the first message");
    let received: Vec<Value> = world
        .friend_messages()
        .await
        .into_iter()
        .filter(|m| m["body"] == "hello team")
        .collect();
    assert_eq!(received.len(), 1, "{received:?}");

    world
        .control(
            "POST",
            &format!("/accounts/{FRIEND_PHONE}/messages"),
            json!({"to": gid.as_str(), "body": "hi all"}),
        )
        .await;
    let EngineEvent::Message(m) = next_matching(
        &mut events,
        |e| matches!(e, EngineEvent::Message(m) if m.body.as_deref() == Some("hi all")),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(m.chat, gid);
    assert_eq!(
        m.author.as_ref().map(|a| a.as_str().to_owned()),
        Some(format!("{FRIEND_PHONE}@c.us"))
    );
    session.stop().await.unwrap();
}

#[tokio::test]
async fn every_media_kind_is_sent_as_its_whatsapp_type() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, _events) = world.logged_in("media-kinds").await;
    world.wait_connections(2).await;

    let cases = [
        ("video/mp4", "video"),
        ("audio/mpeg", "audio"),
        ("audio/ogg", "ptt"),
        ("application/pdf", "document"),
        ("image/webp", "sticker"),
    ];
    for (mimetype, wa_type) in cases {
        let bytes = format!("{wa_type} bytes").into_bytes();
        let media = media_ref(mimetype, &bytes);
        let content = match wa_type {
            "video" => Content::Video {
                media,
                caption: Some("a video".into()),
            },
            "audio" => Content::Audio { media },
            "ptt" => Content::Voice { media },
            "document" => Content::Document {
                media,
                caption: None,
            },
            _ => Content::Sticker { media },
        };
        let mut msg = to_friend(content);
        msg.media = Some(openwa_runner::engine::MediaPayload {
            mimetype: mimetype.into(),
            filename: Some(format!("file.{wa_type}")),
            bytes,
        });
        let receipt = session
            .send(&msg)
            .await
            .unwrap_or_else(|e| panic!("{wa_type}: {e}"));
        let got = world.friend_messages().await;
        let m = got
            .iter()
            .find(|m| m["id"]["id"] == receipt.wa_id.inner())
            .unwrap_or_else(|| panic!("{wa_type} not received"));
        assert_eq!(m["type"], wa_type, "{m}");
        assert_eq!(m["mimetype"], mimetype, "{m}");
    }
    session.stop().await.unwrap();
}

#[tokio::test]
async fn a_call_waiting_through_a_page_reload_is_retried_in_the_new_document() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.logged_in("retry").await;
    world.wait_connections(2).await;
    let account = world
        .control("GET", &format!("/accounts/{GATEWAY_PHONE}"), Value::Null)
        .await;
    let device = account["devices"][0]["id"].as_u64().unwrap();

    // Opened elsewhere: the page is not ready, so the send waits inside it...
    world
        .control(
            "POST",
            &format!("/accounts/{GATEWAY_PHONE}/devices/{device}/conflict"),
            Value::Null,
        )
        .await;
    next_matching(
        &mut events,
        |e| matches!(e, EngineEvent::State { state } if state == "CONFLICT"),
    )
    .await;
    let msg = text_to_friend("sent after a reload");
    let phone = async {
        // ...until the page reloads under it; the new document takes the device back.
        tokio::time::sleep(Duration::from_millis(500)).await;
        world.control("POST", "/pages/reload", Value::Null).await;
    };
    let (receipt, ()) = tokio::join!(session.send(&msg), phone);
    let receipt = receipt.expect("the send is retried in the new document");
    assert!(!receipt.already_sent);
    let received: Vec<Value> = world
        .friend_messages()
        .await
        .into_iter()
        .filter(|m| m["body"] == "sent after a reload")
        .collect();
    assert_eq!(received.len(), 1, "{received:?}");
    session.stop().await.unwrap();
}
