//! AWS calls of an accepted send on the deployed path, on moto (`AWS_ENDPOINT_URL`): a recorded
//! API Gateway v2 event that carries the authorizer's context goes through `lambda_http` into
//! the api function's router on the AWS adapters, and the SDK interceptor
//! (`AwsContext::calls`) counts what the send cost. Call counts are deterministic, so they are
//! asserted; the figure is printed too (`-- --nocapture`).

use openwa_aws::context::calls_between;
use std::collections::BTreeMap;

use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use openwa_api::ApiConfig;
use openwa_core::id::SessionId;
use openwa_core::session::{Session, SessionConfig};
use openwa_lambda::api::{config_from_lookup, service};
use serde_json::{Value, json};

type Calls = BTreeMap<String, u64>;

/// The fixture's request (authorizer context: an operator allowed `sales`), as a text send.
fn send_event(n: u32) -> Value {
    let path = format!(
        "{}/tests/data/apigw-v2-create-session.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["rawPath"] = json!("/v1/sessions/sales/messages");
    event["requestContext"]["http"]["path"] = json!("/v1/sessions/sales/messages");
    event["pathParameters"]["proxy"] = json!("sessions/sales/messages");
    let body = json!({"to": "15557654321", "type": "text", "text": {"body": format!("hello {n}")}});
    event["body"] = json!(body.to_string());
    event["headers"]["content-length"] = json!(body.to_string().len().to_string());
    event
}

#[tokio::test]
async fn a_send_behind_the_authorizer_costs_three_aws_calls() {
    let ctx = openwa_aws::testing::fresh_stack("apicalls").await;
    let backend = openwa_aws::open(&ctx);
    let session = Session::new(
        SessionId::parse("sales").unwrap(),
        None,
        SessionConfig::default(),
        chrono::Utc::now(),
    )
    .unwrap();
    backend.sessions.create(&session).await.unwrap();
    let config = ApiConfig {
        trust_gateway_authorizer: true,
        ..config_from_lookup(|_| None).expect("default config")
    };
    let adapter = Adapter::from(service(backend.clone(), config));
    let invoke = |event: Value| {
        let adapter = adapter.clone();
        async move {
            let request: LambdaRequest = serde_json::from_value(event).unwrap();
            let response = adapter
                .oneshot(LambdaEvent::new(request, Context::default()))
                .await
                .expect("infallible");
            serde_json::to_value(response).unwrap()
        }
    };

    // The first send creates the session's queue and learns its URL; a warm function does not.
    let first = invoke(send_event(1)).await;
    assert_eq!(first["statusCode"], 202, "{first}");
    let before = ctx.calls.snapshot();
    let second = invoke(send_event(2)).await;
    let calls = calls_between(&before, &ctx.calls.snapshot());

    assert_eq!(second["statusCode"], 202, "{second}");
    println!("an accepted send behind the authorizer: {calls:?}");
    let want: Calls = [
        ("DynamoDB.UpdateItem", 1),         // the key's rate limit
        ("DynamoDB.TransactWriteItems", 1), // session check, message, audit, outbox event
        ("SQS.SendMessage", 1),             // the send job
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(calls, want);
}
