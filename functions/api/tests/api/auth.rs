use axum::http::Method;
use openwa_core::apikey::ApiKeySecret;
use openwa_core::clock::Clock;
use serde_json::json;

use crate::helpers::{Req, spawn_app, text_message};

#[tokio::test]
async fn a_request_without_a_key_is_unauthenticated() {
    let app = spawn_app().await;
    let res = app.send(Req::new(Method::GET, "/v1/sessions")).await;
    res.assert_error(401, "unauthenticated");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn a_malformed_key_is_unauthenticated() {
    let app = spawn_app().await;
    for header in [
        ("authorization", "Bearer nope"),
        ("authorization", "Basic Zm9vOmJhcg=="),
        ("x-api-key", "owa_short"),
    ] {
        let res = app
            .send(Req::new(Method::GET, "/v1/sessions").header(header.0, header.1))
            .await;
        res.assert_error(401, "unauthenticated");
    }
}

#[tokio::test]
async fn an_unknown_key_is_unauthenticated() {
    let app = spawn_app().await;
    let stranger = ApiKeySecret::generate();
    app.as_key(stranger.expose(), Method::GET, "/v1/sessions", None)
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn the_x_api_key_header_is_accepted_like_a_bearer_token() {
    let app = spawn_app().await;
    let res = app
        .send(Req::new(Method::GET, "/v1/sessions").header("x-api-key", &app.admin))
        .await;
    res.assert_status(200);
}

#[tokio::test]
async fn a_revoked_key_is_unauthenticated_afterwards() {
    let app = spawn_app().await;
    let (secret, record) = app
        .create_key(json!({"name": "temp", "role": "viewer"}))
        .await;
    app.as_key(&secret, Method::GET, "/v1/sessions", None)
        .await
        .assert_status(200);

    let id = record["id"].as_str().unwrap();
    app.admin(Method::DELETE, &format!("/v1/api-keys/{id}"), None)
        .await
        .assert_status(204);

    app.as_key(&secret, Method::GET, "/v1/sessions", None)
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn a_key_revoked_through_the_revoke_action_is_unauthenticated_afterwards() {
    let app = spawn_app().await;
    let (secret, record) = app
        .create_key(json!({"name": "temp", "role": "viewer"}))
        .await;
    let id = record["id"].as_str().unwrap();
    let res = app
        .admin(Method::POST, &format!("/v1/api-keys/{id}/revoke"), None)
        .await;
    res.assert_status(200);
    assert!(res.json["revoked_at"].is_string());
    app.as_key(&secret, Method::GET, "/v1/sessions", None)
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn an_expired_key_is_unauthenticated() {
    let app = spawn_app().await;
    let expires_at = (app.clock.now() + chrono::Duration::minutes(1)).to_rfc3339();
    let (secret, _) = app
        .create_key(json!({"name": "short", "role": "viewer", "expires_at": expires_at}))
        .await;
    app.as_key(&secret, Method::GET, "/v1/sessions", None)
        .await
        .assert_status(200);

    app.clock.advance(chrono::Duration::minutes(2));

    app.as_key(&secret, Method::GET, "/v1/sessions", None)
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn a_viewer_cannot_send_messages() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let viewer = app.key_with_role("viewer").await;
    let res = app
        .as_key(
            &viewer,
            Method::POST,
            "/v1/sessions/a/messages",
            Some(text_message("15550109999", "hi")),
        )
        .await;
    res.assert_error(403, "forbidden");
}

#[tokio::test]
async fn an_operator_cannot_create_api_keys() {
    let app = spawn_app().await;
    let operator = app.key_with_role("operator").await;
    let res = app
        .as_key(
            &operator,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "x", "role": "admin"})),
        )
        .await;
    res.assert_error(403, "forbidden");
    app.as_key(&operator, Method::GET, "/v1/audit", None)
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn a_key_limited_to_one_session_cannot_see_others() {
    let app = spawn_app().await;
    app.create_session("a").await;
    app.create_session("b").await;
    let (limited, _) = app
        .create_key(json!({"name": "only a", "role": "operator", "allowed_sessions": ["a"]}))
        .await;

    app.as_key(&limited, Method::GET, "/v1/sessions/a", None)
        .await
        .assert_status(200);
    app.as_key(&limited, Method::GET, "/v1/sessions/b", None)
        .await
        .assert_error(404, "not_found");
    let send = app
        .as_key(
            &limited,
            Method::POST,
            "/v1/sessions/b/messages",
            Some(text_message("15550109999", "hi")),
        )
        .await;
    send.assert_error(404, "not_found");

    let list = app
        .as_key(&limited, Method::GET, "/v1/sessions", None)
        .await;
    let ids: Vec<&str> = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a"]);
}

#[tokio::test]
async fn a_request_from_outside_the_keys_networks_is_forbidden() {
    let app = spawn_app().await;
    let (secret, _) = app
        .create_key(json!({"name": "office", "role": "viewer", "allowed_cidrs": ["10.0.0.0/8"]}))
        .await;

    let outside = app
        .send(
            Req::new(Method::GET, "/v1/sessions")
                .key(&secret)
                .peer("203.0.113.7:5000"),
        )
        .await;
    outside.assert_error(403, "forbidden");

    let inside = app
        .send(
            Req::new(Method::GET, "/v1/sessions")
                .key(&secret)
                .peer("10.1.2.3:5000"),
        )
        .await;
    inside.assert_status(200);
}

#[tokio::test]
async fn forwarded_for_is_not_trusted_by_default() {
    let app = spawn_app().await;
    let (secret, _) = app
        .create_key(json!({"name": "office", "role": "viewer", "allowed_cidrs": ["10.0.0.0/8"]}))
        .await;
    let req = Req::new(Method::GET, "/v1/sessions")
        .key(&secret)
        .peer("203.0.113.7:5000")
        .header("x-forwarded-for", "10.0.0.1");
    app.send(req).await.assert_error(403, "forbidden");
}
