use std::time::Duration;

use axum::http::Method;
use openwa_core::id::SessionId;
use openwa_core::ports::QueueName;

use crate::helpers::{Req, TestApp, spawn_app, text_message};

async fn send_with_key(
    app: &TestApp,
    key: &str,
    body: &serde_json::Value,
) -> crate::helpers::TestResponse {
    let req = Req::new(Method::POST, "/v1/sessions/a/messages")
        .key(&app.admin)
        .header("idempotency-key", key)
        .json(body);
    app.send(req).await
}

#[tokio::test]
async fn the_same_key_and_body_return_the_first_message_marked_as_replayed() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let body = text_message("15550109999", "hello");

    let first = send_with_key(&app, "order-42", &body).await;
    first.assert_status(202);
    assert_eq!(first.header("idempotent-replayed"), None);

    let again = send_with_key(&app, "order-42", &body).await;
    again.assert_status(202);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(again.json, first.json);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_422() {
    let app = spawn_app().await;
    app.create_session("a").await;
    send_with_key(&app, "order-42", &text_message("15550109999", "hello"))
        .await
        .assert_status(202);

    let other = send_with_key(&app, "order-42", &text_message("15550109999", "goodbye")).await;
    other.assert_error(422, "idempotency_key_reused");
}

#[tokio::test]
async fn an_invalid_idempotency_key_is_a_400() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let res = send_with_key(
        &app,
        &"k".repeat(300),
        &text_message("15550109999", "hello"),
    )
    .await;
    res.assert_error(400, "invalid_request")
        .assert_field("Idempotency-Key");
}

#[tokio::test]
async fn ten_concurrent_identical_requests_produce_one_message_and_one_job() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let body = text_message("15550109999", "only once");

    let responses =
        futures::future::join_all((0..10).map(|_| send_with_key(&app, "burst-1", &body))).await;

    let ids: std::collections::BTreeSet<String> = responses
        .iter()
        .map(|r| {
            r.assert_status(202);
            r.json["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let list = app
        .admin(Method::GET, "/v1/sessions/a/messages", None)
        .await;
    assert_eq!(list.json["items"].as_array().unwrap().len(), 1);
    let queue = QueueName::Send(SessionId::parse("a").unwrap());
    let jobs = app
        .backend
        .queue
        .receive(&queue, 10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        jobs.len(),
        1,
        "the dedup id keeps replays from enqueueing twice"
    );
}
