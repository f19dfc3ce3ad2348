//! `ApiConfig::trust_gateway_authorizer`: behind API Gateway the caller comes from the
//! authorizer's context (the `GatewayIdentity` extension the Lambda adapter inserts); anywhere
//! else that extension is ignored and only a presented key counts.

use std::collections::BTreeSet;

use axum::http::Method;
use openwa_api::ApiConfig;
use openwa_api::auth::GatewayIdentity;
use openwa_core::apikey::Role;
use openwa_core::auth::Principal;
use openwa_core::id::{ApiKeyId, SessionId};
use serde_json::json;

use crate::helpers::{Req, spawn_app, spawn_app_with};

fn vouched(role: Role, sessions: Option<&[&str]>, per_minute: Option<u32>) -> GatewayIdentity {
    GatewayIdentity(Principal {
        key_id: ApiKeyId::generate(),
        key_name: "from the authorizer".into(),
        role,
        allowed_sessions: sessions.map(|s| {
            s.iter()
                .map(|id| SessionId::parse(id).unwrap())
                .collect::<BTreeSet<_>>()
        }),
        rate_limit_per_minute: per_minute,
        source_ip: None,
    })
}

async fn trusting_app() -> crate::helpers::TestApp {
    spawn_app_with(ApiConfig {
        trust_gateway_authorizer: true,
        ..ApiConfig::default()
    })
    .await
}

#[tokio::test]
async fn a_gateway_identity_is_ignored_unless_the_gateway_is_trusted() {
    let app = spawn_app().await;

    let res = app
        .send(Req::new(Method::GET, "/v1/sessions").extension(vouched(Role::Admin, None, None)))
        .await;

    res.assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn a_gateway_identity_does_not_raise_a_presented_keys_role_unless_trusted() {
    let app = spawn_app().await;
    let viewer = app.key_with_role("viewer").await;

    let res = app
        .send(
            Req::new(Method::POST, "/v1/sessions")
                .key(&viewer)
                .json(&json!({"id": "a"}))
                .extension(vouched(Role::Admin, None, None)),
        )
        .await;

    res.assert_error(403, "forbidden");
}

#[tokio::test]
async fn a_trusting_api_acts_for_the_gateway_identity() {
    let app = trusting_app().await;

    let res = app
        .send(
            Req::new(Method::POST, "/v1/sessions")
                .json(&json!({"id": "a"}))
                .extension(vouched(Role::Operator, None, None)),
        )
        .await;

    res.assert_status(201);
}

#[tokio::test]
async fn a_trusting_api_refuses_a_request_without_a_gateway_identity_even_with_a_key() {
    let app = trusting_app().await;

    let res = app
        .send(Req::new(Method::GET, "/v1/sessions").key(&app.admin.clone()))
        .await;

    res.assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn a_gateway_identitys_session_list_hides_other_sessions() {
    let app = trusting_app().await;
    app.send(
        Req::new(Method::POST, "/v1/sessions")
            .json(&json!({"id": "b"}))
            .extension(vouched(Role::Admin, None, None)),
    )
    .await
    .assert_status(201);

    let res = app
        .send(Req::new(Method::GET, "/v1/sessions/b").extension(vouched(
            Role::Admin,
            Some(&["a"]),
            None,
        )))
        .await;

    res.assert_error(404, "not_found");
}

#[tokio::test]
async fn a_gateway_identitys_rate_limit_applies() {
    let app = trusting_app().await;
    let identity = vouched(Role::Viewer, None, Some(2));
    for _ in 0..2 {
        app.send(Req::new(Method::GET, "/v1/sessions").extension(identity.clone()))
            .await
            .assert_status(200);
    }

    let res = app
        .send(Req::new(Method::GET, "/v1/sessions").extension(identity))
        .await;

    res.assert_error(429, "rate_limited");
    assert!(res.header("retry-after").is_some());
}
