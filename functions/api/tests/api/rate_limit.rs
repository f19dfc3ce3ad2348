use axum::http::Method;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_key_over_its_per_minute_limit_gets_a_429_with_retry_after() {
    let app = spawn_app().await;
    let (secret, _) = app
        .create_key(json!({"name": "slow", "role": "viewer", "rate_limit_per_minute": 3}))
        .await;

    for remaining in ["2", "1", "0"] {
        let ok = app.as_key(&secret, Method::GET, "/v1/sessions", None).await;
        ok.assert_status(200);
        assert_eq!(ok.header("ratelimit-limit"), Some("3"));
        assert_eq!(ok.header("ratelimit-remaining"), Some(remaining));
    }

    let refused = app.as_key(&secret, Method::GET, "/v1/sessions", None).await;
    refused.assert_error(429, "rate_limited");
    let retry_after: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
}

#[tokio::test]
async fn the_budget_is_per_key() {
    let app = spawn_app().await;
    let (slow, _) = app
        .create_key(json!({"name": "slow", "role": "viewer", "rate_limit_per_minute": 1}))
        .await;
    app.as_key(&slow, Method::GET, "/v1/sessions", None)
        .await
        .assert_status(200);
    app.as_key(&slow, Method::GET, "/v1/sessions", None)
        .await
        .assert_error(429, "rate_limited");
    app.admin(Method::GET, "/v1/sessions", None)
        .await
        .assert_status(200);
}
