//! Webhook subscriptions, test deliveries and redelivery through the API. No deliver worker
//! runs here: a delivery stays `pending` and its job stays on the deliveries queue.
//!
//! A target refused by the SSRF guard is a 400 `invalid_request` with `field: "url"` (the
//! request is wrong, exactly like a bad scheme), not a 422.

use std::time::Duration;

use axum::http::Method;
use openwa_core::event::EventType;
use openwa_core::ports::QueueName;
use serde_json::{Value, json};

use crate::helpers::{Req, TestApp, spawn_app, spawn_app_with_loopback_webhooks};

/// A local target: only reachable with the loopback allowlist.
const LOCAL: &str = "http://127.0.0.1:9/x";
/// A public IP literal: passes the guard without a DNS lookup, and is never called here.
const PUBLIC: &str = "http://93.184.215.14/hook";

async fn create_webhook(app: &TestApp, body: Value) -> Value {
    let res = app.admin(Method::POST, "/v1/webhooks", Some(body)).await;
    res.assert_status(201);
    res.json
}

fn id_of(v: &Value) -> &str {
    v["id"].as_str().expect("id")
}

#[tokio::test]
async fn a_webhook_can_be_created_read_updated_and_deleted() {
    let app = spawn_app().await;
    let created = create_webhook(
        &app,
        json!({"url": PUBLIC, "headers": {"Authorization": "Bearer t"}}),
    )
    .await;
    assert_eq!(created["target"], json!({"kind": "http", "url": PUBLIC}));
    assert_eq!(
        created["events"],
        json!(["*"]),
        "the default filter is everything"
    );
    assert_eq!(created["headers"]["authorization"], "Bearer t");
    let path = format!("/v1/webhooks/{}", id_of(&created));

    let patched = app
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"events": ["message.*", "session.status"], "active": false})),
        )
        .await;
    patched.assert_status(200);
    assert_eq!(
        patched.json["events"],
        json!(["message.*", "session.status"])
    );
    assert_eq!(patched.json["active"], false);
    app.admin(Method::POST, &format!("{path}/test"), None)
        .await
        .assert_error(409, "conflict");

    app.admin(Method::DELETE, &path, None)
        .await
        .assert_status(204);
    app.admin(Method::GET, &path, None)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn the_secret_is_shown_on_creation_and_rotation_only() {
    let app = spawn_app().await;
    let created = create_webhook(&app, json!({"url": PUBLIC})).await;
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    let path = format!("/v1/webhooks/{}", id_of(&created));

    let got = app.admin(Method::GET, &path, None).await;
    got.assert_status(200);
    assert!(got.json.get("secret").is_none());
    let listed = app.admin(Method::GET, "/v1/webhooks", None).await;
    assert_eq!(listed.json["items"][0]["id"], created["id"]);
    let rotated = app
        .admin(Method::POST, &format!("{path}/rotate-secret"), None)
        .await;
    rotated.assert_status(200);
    let fresh = rotated.json["secret"].as_str().expect("new secret");
    assert!(fresh.starts_with("whsec_") && fresh != secret);
    assert!(rotated.json["previous_secret_until"].is_string());

    let audit = app.admin(Method::GET, "/v1/audit?limit=100", None).await;
    let after = app.admin(Method::GET, &path, None).await;
    for text in [&got.text, &listed.text, &audit.text, &after.text] {
        assert!(!text.contains(&secret) && !text.contains(fresh), "{text}");
    }
    assert!(audit.text.contains("webhook.rotate_secret"));
}

#[tokio::test]
async fn invalid_subscriptions_are_refused_with_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"url": PUBLIC, "sqs_queue_url": "https://sqs.eu-west-1.amazonaws.com/1/q"}),
            "url",
        ),
        (json!({"events": ["*"]}), "url"),
        (json!({"url": "ftp://example.com/hook"}), "url"),
        (
            json!({"url": PUBLIC, "events": ["message.nope"]}),
            "events[0]",
        ),
        (
            json!({"url": PUBLIC, "headers": {"Webhook-Signature": "v1,forged"}}),
            "headers",
        ),
        (json!({"url": PUBLIC, "secret": "not-a-secret"}), "secret"),
    ];
    for (body, field) in cases {
        let res = app.admin(Method::POST, "/v1/webhooks", Some(body)).await;
        res.assert_error(400, "invalid_request").assert_field(field);
    }
    let res = app
        .admin(
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": PUBLIC, "colour": "red"})),
        )
        .await;
    res.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn a_loopback_target_is_refused_unless_allowlisted() {
    let strict = spawn_app().await;
    let res = strict
        .admin(Method::POST, "/v1/webhooks", Some(json!({"url": LOCAL})))
        .await;
    res.assert_error(400, "invalid_request").assert_field("url");

    let local = spawn_app_with_loopback_webhooks().await;
    create_webhook(&local, json!({"url": LOCAL})).await;
}

#[tokio::test]
async fn a_viewer_can_read_webhooks_but_not_change_test_or_redeliver_them() {
    let app = spawn_app().await;
    let created = create_webhook(&app, json!({"url": PUBLIC})).await;
    let path = format!("/v1/webhooks/{}", id_of(&created));
    let viewer = app.key_with_role("viewer").await;

    app.as_key(&viewer, Method::GET, "/v1/webhooks", None)
        .await
        .assert_status(200);
    app.as_key(&viewer, Method::GET, &path, None)
        .await
        .assert_status(200);
    app.as_key(&viewer, Method::GET, &format!("{path}/deliveries"), None)
        .await
        .assert_status(200);
    let forbidden = [
        (
            Method::POST,
            "/v1/webhooks".to_owned(),
            Some(json!({"url": PUBLIC})),
        ),
        (Method::POST, format!("{path}/test"), None),
        (Method::POST, format!("{path}/rotate-secret"), None),
        (Method::DELETE, path.clone(), None),
        (
            Method::POST,
            format!("/v1/deliveries/{}/redeliver", ulid_id("dlv")),
            None,
        ),
        (
            Method::POST,
            format!("{path}/redeliver"),
            Some(json!({"since": "2024-01-01T00:00:00Z", "until": "2024-01-02T00:00:00Z"})),
        ),
    ];
    for (method, path, body) in forbidden {
        app.as_key(&viewer, method, &path, body)
            .await
            .assert_error(403, "forbidden");
    }
}

#[tokio::test]
async fn a_key_limited_to_one_session_sees_only_that_sessions_webhooks() {
    let app = spawn_app().await;
    app.create_session("a").await;
    app.create_session("b").await;
    let own = create_webhook(&app, json!({"session_id": "a", "url": PUBLIC})).await;
    let other = create_webhook(&app, json!({"session_id": "b", "url": PUBLIC})).await;
    let (key, _) = app
        .create_key(json!({"name": "a only", "role": "operator", "allowed_sessions": ["a"]}))
        .await;

    let res = app
        .as_key(
            &key,
            Method::GET,
            &format!("/v1/webhooks/{}", id_of(&other)),
            None,
        )
        .await;
    res.assert_error(404, "not_found");
    app.as_key(
        &key,
        Method::POST,
        &format!("/v1/webhooks/{}/test", id_of(&other)),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let listed = app.as_key(&key, Method::GET, "/v1/webhooks", None).await;
    let ids: Vec<&Value> = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["id"])
        .collect();
    assert_eq!(ids, [&own["id"]]);
    app.as_key(&key, Method::GET, "/v1/webhooks?session_id=b", None)
        .await
        .assert_error(404, "not_found");

    let res = app
        .as_key(
            &key,
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": PUBLIC})),
        )
        .await;
    res.assert_error(403, "forbidden");
}

#[tokio::test]
async fn listing_by_session_includes_all_session_webhooks() {
    let app = spawn_app().await;
    let for_a = create_webhook(&app, json!({"session_id": "a", "url": PUBLIC})).await;
    create_webhook(&app, json!({"session_id": "b", "url": PUBLIC})).await;
    let for_all = create_webhook(&app, json!({"url": PUBLIC})).await;

    let res = app
        .admin(Method::GET, "/v1/webhooks?session_id=a", None)
        .await;
    res.assert_status(200);
    let mut ids: Vec<&str> = res.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    ids.sort_unstable();
    let mut expected = [id_of(&for_a), id_of(&for_all)];
    expected.sort_unstable();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn a_test_event_creates_a_pending_delivery_and_a_delivery_job() {
    let app = spawn_app_with_loopback_webhooks().await;
    let created = create_webhook(&app, json!({"url": LOCAL, "events": ["message.received"]})).await;
    let path = format!("/v1/webhooks/{}", id_of(&created));

    let res = app.admin(Method::POST, &format!("{path}/test"), None).await;
    res.assert_status(202);
    assert_eq!(res.json["event_type"], "webhook.test");
    assert_eq!(res.json["status"], "pending");
    let delivery = id_of(&res.json).to_owned();

    let listed = app
        .admin(
            Method::GET,
            &format!("{path}/deliveries?status=pending"),
            None,
        )
        .await;
    listed.assert_status(200);
    let item = &listed.json["items"][0];
    assert_eq!(item["id"], delivery.as_str());
    assert_eq!(item["attempts"], 0);
    assert!(item["next_attempt_at"].is_string());
    assert!(item.get("last_status_code").is_some() && item.get("last_latency_ms").is_some());
    let detail = app
        .admin(Method::GET, &format!("{path}/deliveries/{delivery}"), None)
        .await;
    detail.assert_status(200);
    assert_eq!(detail.json["delivery"]["id"], delivery.as_str());
    assert_eq!(detail.json["attempts"], json!([]));

    let jobs = app
        .backend
        .queue
        .receive(
            &QueueName::Deliveries,
            10,
            Duration::from_secs(30),
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    let job: Value = serde_json::from_slice(&jobs[0].body).unwrap();
    assert_eq!(job["delivery_id"], delivery.as_str());

    let again = app
        .admin(
            Method::POST,
            &format!("/v1/deliveries/{delivery}/redeliver"),
            None,
        )
        .await;
    again.assert_status(202);
    assert_eq!(again.json["id"], delivery.as_str());
}

#[tokio::test]
async fn deliveries_of_an_unknown_status_are_a_400() {
    let app = spawn_app().await;
    let created = create_webhook(&app, json!({"url": PUBLIC})).await;
    let res = app
        .admin(
            Method::GET,
            &format!("/v1/webhooks/{}/deliveries?status=lost", id_of(&created)),
            None,
        )
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("status");
}

#[tokio::test]
async fn redelivering_an_unknown_delivery_is_a_404() {
    let app = spawn_app().await;
    let res = app
        .admin(
            Method::POST,
            &format!("/v1/deliveries/{}/redeliver", ulid_id("dlv")),
            None,
        )
        .await;
    res.assert_error(404, "not_found");
}

#[tokio::test]
async fn a_range_redelivery_needs_since_before_until() {
    let app = spawn_app().await;
    let created = create_webhook(&app, json!({"url": PUBLIC})).await;
    let path = format!("/v1/webhooks/{}/redeliver", id_of(&created));
    let t = "2024-11-26T01:00:00Z";
    let res = app
        .admin(Method::POST, &path, Some(json!({"since": t, "until": t})))
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("since");
    let res = app
        .admin(
            Method::POST,
            &path,
            Some(json!({"since": "yesterday", "until": t})),
        )
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("since");

    let res = app
        .admin(
            Method::POST,
            &path,
            Some(json!({"since": "2024-11-25T00:00:00Z", "until": t})),
        )
        .await;
    res.assert_status(202);
    assert_eq!(res.json, json!({"redelivered": 0}));
}

#[tokio::test]
async fn the_openapi_document_describes_every_webhook_payload_with_an_example() {
    let app = spawn_app().await;
    let res = app.send(Req::new(Method::GET, "/openapi.json")).await;
    res.assert_status(200);
    let webhooks = res.json["webhooks"].as_object().expect("a webhooks object");
    assert_eq!(webhooks.len(), EventType::ALL.len());
    for t in EventType::ALL {
        let post = &webhooks[t.as_str()]["post"];
        let body = &post["requestBody"]["content"]["application/json"];
        assert_eq!(body["example"]["type"], t.as_str());
        assert!(body["example"]["data"].is_object(), "{}", t.as_str());
        assert!(body["schema"].is_object(), "{}", t.as_str());
        let headers: Vec<&str> = post["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            assert!(headers.contains(&name), "{} lacks {name}", t.as_str());
        }
    }
    assert!(res.json["components"]["schemas"]["Event"].is_object());
}

/// A well-formed id that names nothing.
fn ulid_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new())
}
