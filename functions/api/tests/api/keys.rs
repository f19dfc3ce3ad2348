use axum::http::Method;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_secret_is_shown_once_and_never_in_list_get_or_audit() {
    let app = spawn_app().await;

    let (secret, created) = app
        .create_key(json!({"name": "ci", "role": "operator", "allowed_sessions": ["a"]}))
        .await;

    assert!(secret.starts_with("owa_"));
    assert_eq!(created["role"], "operator");
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    assert!(created.get("secret_hash").is_none());
    let id = created["id"].as_str().unwrap();
    let list = app.admin(Method::GET, "/v1/api-keys", None).await;
    list.assert_status(200);
    assert!(
        list.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id)
    );
    let get = app
        .admin(Method::GET, &format!("/v1/api-keys/{id}"), None)
        .await;
    get.assert_status(200);
    let audit = app
        .admin(Method::GET, "/v1/audit?action=api_key.create", None)
        .await;
    audit.assert_status(200);
    assert!(!audit.json["items"].as_array().unwrap().is_empty());
    for body in [&list.text, &get.text, &audit.text] {
        assert!(!body.contains(&secret), "secret leaked: {body}");
        assert!(
            !body.contains("secret"),
            "a secret-ish field leaked: {body}"
        );
    }
}

#[tokio::test]
async fn a_key_with_a_bad_network_or_role_is_refused_with_the_field() {
    let app = spawn_app().await;
    let res = app
        .admin(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "x", "role": "viewer", "allowed_cidrs": ["10.0.0.0/33"]})),
        )
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("allowed_cidrs[0]");
    let res = app
        .admin(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "x", "role": "root"})),
        )
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("role");
    let res = app
        .admin(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "x", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"})),
        )
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("expires_at");
}

#[tokio::test]
async fn an_unknown_key_id_is_a_404() {
    let app = spawn_app().await;
    app.admin(
        Method::GET,
        "/v1/api-keys/key_01J00000000000000000000000",
        None,
    )
    .await
    .assert_error(404, "not_found");
    app.admin(
        Method::DELETE,
        "/v1/api-keys/key_01J00000000000000000000000",
        None,
    )
    .await
    .assert_error(404, "not_found");
}

#[tokio::test]
async fn mutations_are_in_the_audit_log_with_who_did_them() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let res = app
        .admin(
            Method::GET,
            "/v1/audit?action=session.create&session_id=a",
            None,
        )
        .await;
    res.assert_status(200);
    let entry = &res.json["items"][0];
    assert_eq!(entry["resource"], "session:a");
    assert_eq!(entry["key_name"], "bootstrap");
    assert_eq!(entry["result"], "ok");
}
