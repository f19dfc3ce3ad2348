//! Engine events -> stored records and published events.

use std::time::Duration;

use openwa_core::content::{Content, MessageType};
use openwa_core::event::EventType;
use openwa_core::jid::WaMessageId;
use openwa_core::message::{Direction, MessageStatus};
use openwa_core::services::messages::media_key;
use openwa_core::session::{Pacing, SessionStatus};
use openwa_runner::engine::{EngineEvent, InboundMessage, MediaPayload};

use crate::support::{TestEnv, chat, eventually};

const WAIT: Duration = Duration::from_secs(10);

fn inbound(
    wa_id: &str,
    kind: MessageType,
    body: Option<&str>,
    media: Option<MediaPayload>,
) -> InboundMessage {
    let wa_id = WaMessageId::parse(wa_id).unwrap();
    InboundMessage {
        chat: wa_id.remote(),
        wa_id,
        author: None,
        from_me: false,
        timestamp: chrono::Utc::now(),
        kind,
        body: body.map(str::to_owned),
        caption: None,
        media,
        location: None,
        quoted: None,
        mentions: vec![],
        is_forwarded: false,
        raw: serde_json::json!({}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_messages_are_stored_and_published_and_acks_move_sent_messages_forward() {
    let env = TestEnv::new();
    let id = env.session("s1", Pacing::default()).await;
    let runner = env.start(env.config("r1"));
    eventually(WAIT, "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;
    env.drain_events().await;

    let text = inbound(
        "false_15550200001@c.us_AAA111",
        MessageType::Text,
        Some("hi there"),
        None,
    );
    let photo = MediaPayload {
        mimetype: "image/jpeg".into(),
        filename: None,
        bytes: vec![0xff, 0xd8, 0xff, 1, 2, 3],
    };
    let image = inbound(
        "false_15550200001@c.us_BBB222",
        MessageType::Image,
        Some("look"),
        Some(photo.clone()),
    );
    assert!(env.fake.emit(&id, EngineEvent::Message(text.clone())).await);
    assert!(
        env.fake
            .emit(&id, EngineEvent::Message(image.clone()))
            .await
    );
    // The same message again (e.g. replayed after a restart) is not stored twice.
    assert!(env.fake.emit(&id, EngineEvent::Message(text.clone())).await);

    let to = chat(1);
    let sent = env.enqueue_text(&id, &to, "outbound").await;
    eventually(WAIT, "sent", || async {
        env.message(&id, &sent).await.status == MessageStatus::Sent
    })
    .await;
    let wa_id = env.message(&id, &sent).await.wa_id.unwrap();
    env.fake
        .emit(
            &id,
            EngineEvent::Ack {
                wa_id: wa_id.clone(),
                level: 3,
            },
        )
        .await;
    env.fake
        .emit(
            &id,
            EngineEvent::Ack {
                wa_id: wa_id.clone(),
                level: 2,
            },
        )
        .await;
    eventually(WAIT, "read", || async {
        env.message(&id, &sent).await.status == MessageStatus::Read
    })
    .await;

    let stored = env
        .backend
        .messages
        .get_by_wa_id(&id, &text.wa_id)
        .await
        .unwrap();
    assert_eq!(
        (stored.direction, stored.status),
        (Direction::Inbound, MessageStatus::Received)
    );
    assert_eq!(
        stored.content,
        Content::Text {
            body: "hi there".into(),
            link_preview: false
        }
    );
    let stored_image = env
        .backend
        .messages
        .get_by_wa_id(&id, &image.wa_id)
        .await
        .unwrap();
    let Content::Image { media, caption } = stored_image.content else {
        panic!("an image: {:?}", stored_image.content)
    };
    assert_eq!(caption.as_deref(), Some("look"));
    assert_eq!(
        env.backend
            .blobs
            .get(&media_key(&media.media_id))
            .await
            .unwrap()
            .0,
        photo.bytes
    );

    // Give the late (backwards) ack a moment; it must not move the status back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.message(&id, &sent).await.status, MessageStatus::Read);
    let events = env.drain_events().await;
    let received: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventType::MessageReceived)
        .collect();
    assert_eq!(received.len(), 2, "one event per new inbound message");
    assert!(
        received
            .iter()
            .all(|e| e.metadata.get("team").map(String::as_str) == Some("qa"))
    );
    let acks: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventType::MessageAck)
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].data["status"], "read");
    runner.stop().await;
}
