//! The `authorizer` Lambda's handler against recorded API Gateway HTTP API authorizer events
//! (payload 2.0, `tests/data/apigw-authorizer-v2-*.json`) on an embedded backend.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerSimpleResponse;
use openwa_core::apikey::{ApiKey, ApiKeySecret, Role};
use openwa_core::clock::ManualClock;
use openwa_core::id::SessionId;
use openwa_core::ports::Backend;
use openwa_core::services::{ApiKeyService, AuditLog, NewApiKey};
use openwa_lambda::authorizer::{
    Authorizer, AuthorizerContext, AuthorizerRequest, AuthorizerResponse,
};
use serde_json::{Value, json};

/// The key in the fixtures' `Authorization` header; the source IP is 203.0.113.10.
const FIXTURE_KEY: &str = "owa_tPHEq4RdIzyv6FDjXmtmiJ0X8JmY";

struct Setup {
    authorizer: Authorizer,
    keys: ApiKeyService,
    _backend: Backend,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let backend = openwa_infra::embedded::open(dir.path(), clock.clone()).expect("backend");
    let audit = AuditLog::new(backend.audit.clone(), clock.clone());
    Setup {
        authorizer: Authorizer::new(&backend),
        keys: ApiKeyService::new(backend.keys.clone(), audit, clock),
        _backend: backend,
        _dir: dir,
    }
}

/// The fixture key as an operator limited to two sessions, 120 requests a minute.
fn operator_key(cidrs: &[&str]) -> NewApiKey {
    NewApiKey {
        name: "support-bot".into(),
        role: Role::Operator,
        allowed_sessions: Some(
            ["support", "sales"]
                .iter()
                .map(|s| SessionId::parse(s).unwrap())
                .collect(),
        ),
        allowed_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
        rate_limit_per_minute: Some(120),
        expires_at: None,
    }
}

impl Setup {
    async fn register(&self, new: NewApiKey) -> ApiKey {
        let secret = ApiKeySecret::parse(FIXTURE_KEY).unwrap();
        let (key, _) = self
            .keys
            .create_with_secret(None, new, secret)
            .await
            .expect("fixture key");
        key
    }

    async fn authorize(&self, event: Value) -> AuthorizerResponse {
        let event: AuthorizerRequest = serde_json::from_value(event).expect("authorizer event");
        self.authorizer
            .authorize(&event)
            .await
            .expect("a verdict, not an error")
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture JSON")
}

#[tokio::test]
async fn a_valid_key_is_allowed_with_its_identity_in_the_context() {
    let s = setup();
    let key = s.register(operator_key(&["203.0.113.0/24"])).await;

    let response = s
        .authorize(fixture("apigw-authorizer-v2-request.json"))
        .await;

    // The wire shape API Gateway reads: a simple response whose context values are strings.
    let wire = serde_json::to_value(&response).unwrap();
    assert_eq!(
        wire,
        json!({
            "isAuthorized": true,
            "context": {
                "key_id": key.id.to_string(),
                "key_name": "support-bot",
                "role": "operator",
                "allowed_sessions": "sales,support",
                "rate_limit_per_minute": "120",
            }
        })
    );
    let parsed: ApiGatewayV2CustomAuthorizerSimpleResponse =
        serde_json::from_value(wire).expect("the aws_lambda_events shape");
    assert!(parsed.is_authorized);
}

#[tokio::test]
async fn the_context_reads_back_into_the_same_principal() {
    let s = setup();
    let key = s.register(operator_key(&[])).await;
    let response = s
        .authorize(fixture("apigw-authorizer-v2-request.json"))
        .await;
    let wire = serde_json::to_value(response.context.unwrap()).unwrap();
    let fields = serde_json::from_value(wire).unwrap();

    let principal = AuthorizerContext::from_fields(&fields)
        .and_then(|c| c.into_principal(None))
        .unwrap();

    assert_eq!(principal.key_id, key.id);
    assert_eq!(principal.role, Role::Operator);
    assert_eq!(principal.allowed_sessions, key.allowed_sessions);
    assert_eq!(principal.rate_limit_per_minute, Some(120));
}

#[tokio::test]
async fn an_unknown_key_is_denied() {
    let s = setup();

    let response = s
        .authorize(fixture("apigw-authorizer-v2-request.json"))
        .await;

    assert_eq!(response, AuthorizerResponse::deny());
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"isAuthorized": false})
    );
}

#[tokio::test]
async fn a_revoked_key_is_denied() {
    let s = setup();
    let key = s.register(operator_key(&[])).await;
    s.keys.revoke(None, &key.id).await.expect("revoke");

    let response = s
        .authorize(fixture("apigw-authorizer-v2-request.json"))
        .await;

    assert!(!response.is_authorized);
}

#[tokio::test]
async fn a_source_ip_outside_the_keys_networks_is_denied() {
    let s = setup();
    s.register(operator_key(&["198.51.100.0/24"])).await;

    let response = s
        .authorize(fixture("apigw-authorizer-v2-request.json"))
        .await;

    assert!(!response.is_authorized);
}

#[tokio::test]
async fn a_forwarded_for_header_does_not_move_the_caller_into_the_keys_network() {
    let s = setup();
    s.register(operator_key(&["198.51.100.0/24"])).await;
    let mut event = fixture("apigw-authorizer-v2-request.json");
    event["headers"]["x-forwarded-for"] = json!("198.51.100.7");

    let response = s.authorize(event).await;

    assert!(!response.is_authorized);
}

#[tokio::test]
async fn a_request_without_a_key_is_denied() {
    let s = setup();
    s.register(operator_key(&[])).await;

    let response = s
        .authorize(fixture("apigw-authorizer-v2-request-without-key.json"))
        .await;

    assert!(!response.is_authorized);
}

#[tokio::test]
async fn the_x_api_key_header_is_read_like_the_api_reads_it() {
    let s = setup();
    s.register(operator_key(&[])).await;
    let mut event = fixture("apigw-authorizer-v2-request-without-key.json");
    event["headers"]["x-api-key"] = json!(FIXTURE_KEY);

    let response = s.authorize(event).await;

    assert!(response.is_authorized);
}
