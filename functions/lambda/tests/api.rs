//! The `api` Lambda end to end through `lambda_http`: recorded API Gateway HTTP API (payload
//! 2.0) events from `tests/data/apigw-v2-*.json` go through `lambda_http::Adapter` — what
//! `lambda_http::run` calls for every invocation — into the router on an embedded backend, and
//! the serialized API Gateway response comes back.

use std::sync::Arc;

use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use openwa_api::ApiConfig;
use openwa_core::apikey::{ApiKeySecret, Role};
use openwa_core::clock::ManualClock;
use openwa_core::id::SessionId;
use openwa_core::ports::Backend;
use openwa_core::services::{ApiKeyService, AuditLog, NewApiKey};
use openwa_lambda::api::{ApiService, config_from_lookup, service};
use serde_json::{Value, json};

/// The key in the fixtures' `Authorization` / `X-API-Key` headers.
const FIXTURE_KEY: &str = "owa_tPHEq4RdIzyv6FDjXmtmiJ0X8JmY";

struct LambdaApp {
    service: ApiService,
    backend: Backend,
    keys: ApiKeyService,
    _dir: tempfile::TempDir,
}

/// What API Gateway would receive back from the function.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Value,
    /// The body as JSON (`Null` if it is not JSON) and as text.
    body: Value,
    text: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers[name].as_str()
    }

    /// The status, and the one error envelope with `code` whose request id is the header's.
    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        assert_eq!(
            self.body["error"]["request_id"].as_str(),
            self.header("x-request-id"),
            "body: {}",
            self.body
        );
    }
}

/// The Lambda's service (configured as the Lambda main configures it, apart from `trust`) on a
/// fresh embedded backend.
async fn spawn_lambda(trust: bool) -> LambdaApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let backend = openwa_infra::embedded::open(dir.path(), clock.clone()).expect("backend");
    let config = ApiConfig {
        trust_gateway_authorizer: trust,
        ..config_from_lookup(|_| None).expect("default config")
    };
    let audit = AuditLog::new(backend.audit.clone(), clock.clone());
    let keys = ApiKeyService::new(backend.keys.clone(), audit, clock);
    LambdaApp {
        service: service(backend.clone(), config),
        backend,
        keys,
        _dir: dir,
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture JSON")
}

impl LambdaApp {
    async fn invoke(&self, event: Value) -> Reply {
        let request: LambdaRequest = serde_json::from_value(event).expect("an API Gateway event");
        let adapter = Adapter::from(self.service.clone());
        let response = adapter
            .oneshot(LambdaEvent::new(request, Context::default()))
            .await
            .expect("infallible");
        let response = serde_json::to_value(response).expect("serializable response");
        let body = response["body"].as_str().unwrap_or_default();
        Reply {
            status: response["statusCode"].as_u64().expect("statusCode") as u16,
            headers: response["headers"].clone(),
            body: serde_json::from_str(body).unwrap_or(Value::Null),
            text: body.to_owned(),
        }
    }

    /// Registers the fixtures' key.
    async fn register_fixture_key(&self, role: Role, cidrs: &[&str]) {
        let new = NewApiKey {
            name: "fixture".into(),
            role,
            allowed_sessions: None,
            allowed_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            rate_limit_per_minute: None,
            expires_at: None,
        };
        let secret = ApiKeySecret::parse(FIXTURE_KEY).unwrap();
        self.keys
            .create_with_secret(None, new, secret)
            .await
            .expect("fixture key");
    }
}

#[tokio::test]
async fn health_is_served_through_lambda_http() {
    let app = spawn_lambda(true).await;

    let reply = app.invoke(fixture("apigw-v2-health.json")).await;

    assert_eq!(reply.status, 200, "body: {}", reply.body);
    assert!(reply.header("x-request-id").is_some());
}

#[tokio::test]
async fn the_docs_page_loads_the_swagger_ui_from_a_cdn_in_the_lambda() {
    let app = spawn_lambda(true).await;
    let mut event = fixture("apigw-v2-health.json");
    event["rawPath"] = json!("/docs/");
    event["requestContext"]["http"]["path"] = json!("/docs/");

    let reply = app.invoke(event).await;

    assert_eq!(reply.status, 200, "body: {}", reply.text);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        reply.text.contains("swagger-ui-bundle.js"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn a_session_is_created_for_the_caller_the_authorizer_vouched_for() {
    let app = spawn_lambda(true).await;

    // The key in the fixture's header is in no store: the trusted context alone counts.
    let reply = app.invoke(fixture("apigw-v2-create-session.json")).await;

    assert_eq!(reply.status, 201, "body: {}", reply.body);
    assert_eq!(reply.body["id"], "support");
    assert_eq!(reply.header("ratelimit-limit"), Some("120"));
    let id = SessionId::parse("support").unwrap();
    let stored = app.backend.sessions.get(&id).await.expect("stored session");
    assert_eq!(stored.id, id);
}

#[tokio::test]
async fn without_an_authorizer_context_a_trusting_api_is_unauthenticated() {
    let app = spawn_lambda(true).await;
    // Even a valid key in the header does not count: only the authorizer checks keys here.
    app.register_fixture_key(Role::Admin, &[]).await;

    let reply = app
        .invoke(fixture("apigw-v2-list-sessions-without-authorizer.json"))
        .await;

    reply.assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn a_forged_authorizer_context_is_ignored_when_trust_is_off() {
    let app = spawn_lambda(false).await;

    // The context claims an admin; the presented key is unknown.
    let reply = app
        .invoke(fixture("apigw-v2-forged-authorizer-context.json"))
        .await;

    reply.assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn a_forged_context_does_not_raise_a_real_keys_role_when_trust_is_off() {
    let app = spawn_lambda(false).await;
    app.register_fixture_key(Role::Viewer, &[]).await;

    let reply = app
        .invoke(fixture("apigw-v2-forged-authorizer-context.json"))
        .await;

    reply.assert_error(403, "forbidden");
}

#[tokio::test]
async fn the_same_forged_context_would_pass_if_trusted() {
    // The contrast to the two tests above: the fixture is a well-formed context.
    let app = spawn_lambda(true).await;

    let reply = app
        .invoke(fixture("apigw-v2-forged-authorizer-context.json"))
        .await;

    assert_eq!(reply.status, 201, "body: {}", reply.body);
}

#[tokio::test]
async fn the_authorizers_session_list_limits_the_caller() {
    let app = spawn_lambda(true).await;
    let mut event = fixture("apigw-v2-create-session.json");
    event["body"] = json!(r#"{"id":"billing","name":"Billing"}"#);

    let reply = app.invoke(event).await;

    reply.assert_error(403, "forbidden");
}

#[tokio::test]
async fn the_authorizers_rate_limit_applies() {
    let app = spawn_lambda(true).await;
    let mut event = fixture("apigw-v2-list-sessions-without-authorizer.json");
    event["requestContext"]["authorizer"] =
        fixture("apigw-v2-create-session.json")["requestContext"]["authorizer"].clone();
    event["requestContext"]["authorizer"]["lambda"]["rate_limit_per_minute"] = json!("2");

    for _ in 0..2 {
        let reply = app.invoke(event.clone()).await;
        assert_eq!(reply.status, 200, "body: {}", reply.body);
    }
    let reply = app.invoke(event).await;

    reply.assert_error(429, "rate_limited");
    assert!(reply.header("retry-after").is_some());
}

#[tokio::test]
async fn the_client_address_is_the_gateways_source_ip_not_x_forwarded_for() {
    let app = spawn_lambda(false).await;
    app.register_fixture_key(Role::Viewer, &["203.0.113.0/24"])
        .await;
    let allowed = fixture("apigw-v2-list-sessions-without-authorizer.json");
    let mut spoofed = allowed.clone();
    spoofed["requestContext"]["http"]["sourceIp"] = json!("198.51.100.7");
    spoofed["headers"]["x-forwarded-for"] = json!("203.0.113.10");

    assert_eq!(app.invoke(allowed).await.status, 200);
    app.invoke(spoofed).await.assert_error(403, "forbidden");
}

#[tokio::test]
async fn a_named_stage_prefix_does_not_hide_the_routes() {
    let app = spawn_lambda(true).await;
    let mut event = fixture("apigw-v2-health.json");
    event["rawPath"] = json!("/prod/health");
    event["requestContext"]["http"]["path"] = json!("/prod/health");
    event["requestContext"]["stage"] = json!("prod");

    let reply = app.invoke(event).await;

    assert_eq!(reply.status, 200, "body: {}", reply.body);
}
