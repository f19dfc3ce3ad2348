use axum::http::Method;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_session_can_be_created_read_updated_started_stopped_and_deleted() {
    let app = spawn_app().await;

    let created = app
        .admin(
            Method::POST,
            "/v1/sessions",
            Some(json!({"id": "sales", "name": "Sales"})),
        )
        .await;
    created.assert_status(201);
    assert_eq!(created.json["desired"], "stopped");
    assert_eq!(created.json["status"], "stopped");

    let got = app.admin(Method::GET, "/v1/sessions/sales", None).await;
    got.assert_status(200);
    assert_eq!(got.json["name"], "Sales");

    let patched = app
        .admin(
            Method::PATCH,
            "/v1/sessions/sales",
            Some(json!({"name": "Sales EU"})),
        )
        .await;
    patched.assert_status(200);
    assert_eq!(patched.json["name"], "Sales EU");
    let cleared = app
        .admin(
            Method::PATCH,
            "/v1/sessions/sales",
            Some(json!({"name": null})),
        )
        .await;
    assert_eq!(cleared.json["name"], serde_json::Value::Null);

    let started = app
        .admin(Method::POST, "/v1/sessions/sales/start", None)
        .await;
    started.assert_status(200);
    assert_eq!(started.json["desired"], "running");
    let stopped = app
        .admin(Method::POST, "/v1/sessions/sales/stop", None)
        .await;
    assert_eq!(stopped.json["desired"], "stopped");

    app.admin(Method::DELETE, "/v1/sessions/sales", None)
        .await
        .assert_status(204);
    app.admin(Method::GET, "/v1/sessions/sales", None)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn creating_a_session_that_exists_is_a_409() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let res = app
        .admin(Method::POST, "/v1/sessions", Some(json!({"id": "a"})))
        .await;
    res.assert_error(409, "conflict");
}

#[tokio::test]
async fn sessions_are_listed_newest_first_with_a_cursor() {
    let app = spawn_app().await;
    for id in ["one", "two", "three"] {
        app.create_session(id).await;
        app.clock.advance(chrono::Duration::seconds(1));
    }
    let first = app.admin(Method::GET, "/v1/sessions?limit=2", None).await;
    let ids: Vec<&str> = first.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["three", "two"]);
    let cursor = first.json["next_cursor"].as_str().expect("a next page");
    let next = app
        .admin(
            Method::GET,
            &format!(
                "/v1/sessions?limit=2&cursor={}",
                crate::helpers::urlencode(cursor)
            ),
            None,
        )
        .await;
    assert_eq!(next.json["items"][0]["id"], "one");
    assert!(next.json["next_cursor"].is_null());
}

#[tokio::test]
async fn a_session_with_invalid_config_is_refused_with_the_field() {
    let app = spawn_app().await;
    let res = app
        .admin(
            Method::POST,
            "/v1/sessions",
            Some(json!({"id": "a", "config": {"proxy": "ftp://x"}})),
        )
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("config.proxy");
    let res = app
        .admin(
            Method::POST,
            "/v1/sessions",
            Some(json!({"id": "Not A Slug"})),
        )
        .await;
    res.assert_error(400, "invalid_request").assert_field("id");
    let res = app
        .admin(
            Method::POST,
            "/v1/sessions",
            Some(json!({"id": "a", "config": {"colour": "red"}})),
        )
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("config.colour");
}
