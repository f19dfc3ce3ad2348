use std::time::Duration;

use axum::http::Method;
use base64::Engine;
use openwa_core::clock::Clock;
use openwa_core::id::SessionId;
use openwa_core::message::{MessageStatus, SendJob, StatusUpdate};
use openwa_core::page::PageRequest;
use openwa_core::ports::{MessageFilter, QueueName};
use serde_json::json;

use crate::helpers::{spawn_app, text_message, urlencode};

fn send_queue(session: &str) -> QueueName {
    QueueName::Send(SessionId::parse(session).unwrap())
}

#[tokio::test]
async fn a_text_send_is_queued_in_the_store_and_once_on_the_sessions_queue() {
    let app = spawn_app().await;
    app.create_session("a").await;

    let res = app
        .admin(
            Method::POST,
            "/v1/sessions/a/messages",
            Some(text_message("+1 (555) 010-9999", "hello")),
        )
        .await;

    res.assert_status(202);
    assert_eq!(res.json["status"], "queued");
    assert_eq!(res.json["chat_id"], "15550109999@c.us");
    let id = res.json["id"].as_str().unwrap();
    let stored = app
        .admin(Method::GET, &format!("/v1/sessions/a/messages/{id}"), None)
        .await;
    stored.assert_status(200);
    assert_eq!(stored.json["status"], "queued");
    assert_eq!(stored.json["content"]["body"], "hello");

    let jobs = app
        .backend
        .queue
        .receive(
            &send_queue("a"),
            10,
            Duration::from_secs(30),
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    let job: SendJob = serde_json::from_slice(&jobs[0].body).unwrap();
    assert_eq!(job.message_id.as_str(), id);
    assert_eq!(jobs[0].group.as_deref(), Some("15550109999@c.us"));
}

#[tokio::test]
async fn inline_base64_media_is_stored_and_sent_by_reference() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let bytes = b"\x89PNG\r\n\x1a\nnot really a png";
    let body = json!({
        "to": "15550109999",
        "type": "image",
        "image": {"base64": base64::engine::general_purpose::STANDARD.encode(bytes), "mimetype": "image/png", "caption": "look"}
    });

    let res = app
        .admin(Method::POST, "/v1/sessions/a/messages", Some(body))
        .await;

    res.assert_status(202);
    let media = &res.json["content"]["media"];
    assert_eq!(media["size"], bytes.len());
    assert_eq!(media["mimetype"], "image/png");
    let key = format!("media/{}", media["media_id"].as_str().unwrap());
    let (stored, _) = app.backend.blobs.get(&key).await.unwrap();
    assert_eq!(stored, bytes);
}

#[tokio::test]
async fn media_of_the_wrong_mimetype_or_bad_base64_is_refused() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let wrong_type = json!({"to": "15550109999", "type": "sticker", "sticker": {"base64": "aGVsbG8=", "mimetype": "image/png"}});
    let res = app
        .admin(Method::POST, "/v1/sessions/a/messages", Some(wrong_type))
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("sticker.media");
    let bad = json!({"to": "15550109999", "type": "image", "image": {"base64": "%%%", "mimetype": "image/png"}});
    let res = app
        .admin(Method::POST, "/v1/sessions/a/messages", Some(bad))
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("image.base64");
}

#[tokio::test]
async fn an_unknown_media_id_is_refused_with_its_field() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let body = json!({"to": "15550109999", "type": "document", "document": {"media_id": "med_01J0000000000000000000000"}});
    let res = app
        .admin(Method::POST, "/v1/sessions/a/messages", Some(body))
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("document.media_id");
}

#[tokio::test]
async fn every_non_media_content_type_is_accepted() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let bodies = [
        json!({"to": "15550109999", "type": "location", "location": {"latitude": 52.5, "longitude": 13.4, "name": "Berlin"}}),
        json!({"to": "15550109999", "type": "contact", "contact": {"contacts": [{"name": "Ann", "phone": "+15550109998"}]}}),
        json!({"to": "120363025246125486@g.us", "type": "poll", "poll": {"name": "Lunch?", "options": ["yes", "no"]}}),
        json!({"to": "15550109999", "type": "reaction", "reaction": {"message_id": "false_15550109999@c.us_3EB0C0FFEE", "emoji": "👍"}}),
        json!({"to": "15550109999", "type": "text", "text": {"body": "re", "preview_url": true},
               "reply_to": "false_15550109999@c.us_3EB0C0FFEE", "mentions": ["15550109998"]}),
    ];
    for body in bodies {
        let res = app
            .admin(Method::POST, "/v1/sessions/a/messages", Some(body.clone()))
            .await;
        res.assert_status(202);
        assert_eq!(res.json["type"], body["type"]);
    }
}

#[tokio::test]
async fn sending_to_an_unknown_session_is_a_404() {
    let app = spawn_app().await;
    let res = app
        .admin(
            Method::POST,
            "/v1/sessions/ghost/messages",
            Some(text_message("15550109999", "hi")),
        )
        .await;
    res.assert_error(404, "not_found");
}

#[tokio::test]
async fn messages_are_listed_newest_first_and_filtered() {
    let app = spawn_app().await;
    app.create_session("a").await;
    for (to, body) in [
        ("15550109999", "one"),
        ("15550109998", "two"),
        ("15550109999", "three"),
    ] {
        app.admin(
            Method::POST,
            "/v1/sessions/a/messages",
            Some(text_message(to, body)),
        )
        .await
        .assert_status(202);
        app.clock.advance(chrono::Duration::seconds(1));
    }

    let all = app
        .admin(Method::GET, "/v1/sessions/a/messages?limit=2", None)
        .await;
    all.assert_status(200);
    let bodies: Vec<&str> = all.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["three", "two"]);
    let cursor = all.json["next_cursor"].as_str().expect("a second page");
    let rest = app
        .admin(
            Method::GET,
            &format!(
                "/v1/sessions/a/messages?limit=2&cursor={}",
                urlencode(cursor)
            ),
            None,
        )
        .await;
    assert_eq!(rest.json["items"][0]["content"]["body"], "one");

    let chat = app
        .admin(
            Method::GET,
            "/v1/sessions/a/messages?chat_id=15550109998&direction=outbound&status=queued",
            None,
        )
        .await;
    assert_eq!(chat.json["items"].as_array().unwrap().len(), 1);
    app.admin(
        Method::GET,
        "/v1/sessions/a/messages?direction=sideways",
        None,
    )
    .await
    .assert_error(400, "invalid_request")
    .assert_field("direction");
}

#[tokio::test]
async fn an_unknown_message_is_a_404_and_a_malformed_id_a_400() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let missing = app
        .admin(
            Method::GET,
            "/v1/sessions/a/messages/msg_01J00000000000000000000000",
            None,
        )
        .await;
    missing.assert_error(404, "not_found");
    let malformed = app
        .admin(Method::GET, "/v1/sessions/a/messages/nope", None)
        .await;
    malformed
        .assert_error(400, "invalid_request")
        .assert_field("message_id");
}

#[tokio::test]
async fn a_send_with_wait_returns_201_once_a_runner_has_sent_it() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let store = app.backend.messages.clone();
    let now = app.clock.now();
    // Plays the runner: marks the first queued message of session `a` as sent.
    let runner = tokio::spawn(async move {
        let session = SessionId::parse("a").unwrap();
        loop {
            let page = store
                .list(&session, &MessageFilter::default(), &PageRequest::default())
                .await
                .unwrap();
            if let Some(m) = page.items.first() {
                let sent = StatusUpdate {
                    status: MessageStatus::Sent,
                    wa_id: None,
                    failure: None,
                    at: now,
                };
                store.update_status(&session, &m.id, &sent).await.unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let res = app
        .admin(
            Method::POST,
            "/v1/sessions/a/messages?wait=10",
            Some(text_message("15550109999", "hi")),
        )
        .await;

    res.assert_status(201);
    assert_eq!(res.json["status"], "sent");
    runner.await.unwrap();
}

#[tokio::test]
async fn a_send_whose_wait_runs_out_is_still_accepted_with_202() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let res = app
        .admin(
            Method::POST,
            "/v1/sessions/a/messages?wait=1",
            Some(text_message("15550109999", "hi")),
        )
        .await;
    res.assert_status(202);
    assert_eq!(res.json["status"], "queued");
    let bad = app
        .admin(
            Method::POST,
            "/v1/sessions/a/messages?wait=31",
            Some(text_message("15550109999", "hi")),
        )
        .await;
    bad.assert_error(400, "invalid_request")
        .assert_field("wait");
}

#[tokio::test]
async fn an_accepted_send_publishes_one_message_queued_event_with_the_session_metadata() {
    let app = spawn_app().await;
    app.admin(
        Method::POST,
        "/v1/sessions",
        Some(json!({"id": "s1", "config": {"metadata": {"team": "sales"}}})),
    )
    .await
    .assert_status(201);
    let req = crate::helpers::Req::new(Method::POST, "/v1/sessions/s1/messages")
        .key(&app.admin)
        .header("Idempotency-Key", "k1")
        .json(&text_message("15550109999", "hi"));
    let first = app.send(req).await;
    first.assert_status(202);
    // A replay is not a second acceptance: no second event.
    let replay = crate::helpers::Req::new(Method::POST, "/v1/sessions/s1/messages")
        .key(&app.admin)
        .header("Idempotency-Key", "k1")
        .json(&text_message("15550109999", "hi"));
    app.send(replay).await.assert_status(202);

    let jobs = app
        .backend
        .queue
        .receive(
            &QueueName::Events,
            10,
            Duration::from_secs(30),
            Duration::ZERO,
        )
        .await
        .unwrap();
    let events: Vec<serde_json::Value> = jobs
        .iter()
        .map(|j| serde_json::from_slice(&j.body).unwrap())
        .filter(|e: &serde_json::Value| e["type"] == "message.queued")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["id"], first.json["id"]);
    assert_eq!(events[0]["session_id"], "s1");
    assert_eq!(events[0]["metadata"]["team"], "sales");
}
