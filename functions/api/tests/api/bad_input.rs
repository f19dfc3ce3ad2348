use axum::http::Method;
use openwa_api::ApiConfig;
use rand::Rng;
use serde_json::json;

use crate::helpers::{Req, assert_envelope, spawn_app, spawn_app_with, text_message, urlencode};

#[tokio::test]
async fn malformed_json_is_a_400_malformed_json() {
    let app = spawn_app().await;
    let req = Req::new(Method::POST, "/v1/sessions")
        .key(&app.admin)
        .raw("application/json", r#"{"id": "a","#);
    app.send(req).await.assert_error(400, "malformed_json");
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_named_in_the_error() {
    let app = spawn_app().await;
    let res = app
        .admin(
            Method::POST,
            "/v1/sessions",
            Some(json!({"id": "a", "start": "yes"})),
        )
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("start");
}

#[tokio::test]
async fn an_unknown_field_is_refused_and_named() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let body = json!({"to": "15550109999", "type": "text", "text": {"body": "hi", "bold": true}});
    let res = app
        .admin(Method::POST, "/v1/sessions/a/messages", Some(body))
        .await;
    res.assert_error(400, "invalid_request");
    assert!(
        res.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bold"),
        "{}",
        res.text
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let app = spawn_app_with(ApiConfig {
        body_limit_bytes: 1024,
        ..ApiConfig::default()
    })
    .await;
    app.create_session("a").await;
    let res = app
        .admin(
            Method::POST,
            "/v1/sessions/a/messages",
            Some(text_message("15550109999", &"x".repeat(2000))),
        )
        .await;
    res.assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = spawn_app().await;
    let req = Req::new(Method::POST, "/v1/sessions")
        .key(&app.admin)
        .raw("text/plain", r#"{"id": "a"}"#);
    app.send(req)
        .await
        .assert_error(415, "unsupported_media_type");
    let no_type = Req::new(Method::POST, "/v1/sessions").key(&app.admin);
    app.send(no_type)
        .await
        .assert_error(415, "unsupported_media_type");
}

#[tokio::test]
async fn an_invalid_recipient_is_refused_with_the_to_field() {
    let app = spawn_app().await;
    app.create_session("a").await;
    for to in ["12345", "abc@g.us", "+1 555 CALL NOW", "1555@example.com"] {
        let res = app
            .admin(
                Method::POST,
                "/v1/sessions/a/messages",
                Some(text_message(to, "hi")),
            )
            .await;
        res.assert_error(400, "invalid_request").assert_field("to");
    }
}

#[tokio::test]
async fn an_invalid_mention_is_refused_with_its_index() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let body = json!({"to": "15550109999", "type": "text", "text": {"body": "hi"}, "mentions": ["15550109998", "nope"]});
    let res = app
        .admin(Method::POST, "/v1/sessions/a/messages", Some(body))
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("mentions[1]");
}

#[tokio::test]
async fn text_of_4097_characters_is_refused_and_4096_is_accepted() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let long = app
        .admin(
            Method::POST,
            "/v1/sessions/a/messages",
            Some(text_message("15550109999", &"a".repeat(4097))),
        )
        .await;
    long.assert_error(400, "invalid_request")
        .assert_field("text.body");
    let max = app
        .admin(
            Method::POST,
            "/v1/sessions/a/messages",
            Some(text_message("15550109999", &"a".repeat(4096))),
        )
        .await;
    max.assert_status(202);
}

#[tokio::test]
async fn bad_pagination_parameters_are_a_400() {
    let app = spawn_app().await;
    for query in ["limit=0", "limit=101", "limit=abc", "limit=-1", "cursor="] {
        let res = app
            .admin(Method::GET, &format!("/v1/sessions?{query}"), None)
            .await;
        if query == "cursor=" {
            // An empty cursor is treated as absent: the first page.
            res.assert_status(200);
            continue;
        }
        res.assert_error(400, "invalid_request")
            .assert_field("limit");
    }
    app.admin(Method::GET, "/v1/sessions?status=sleeping", None)
        .await
        .assert_error(400, "invalid_request")
        .assert_field("status");
    app.admin(Method::GET, "/v1/audit?since=yesterday", None)
        .await
        .assert_error(400, "invalid_request")
        .assert_field("since");
}

#[tokio::test]
async fn an_unknown_route_is_a_404_envelope() {
    let app = spawn_app().await;
    app.send(Req::new(Method::GET, "/v1/nothing-here"))
        .await
        .assert_error(404, "not_found");
    app.send(Req::new(Method::GET, "/"))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_envelope() {
    let app = spawn_app().await;
    let res = app
        .send(Req::new(Method::PUT, "/v1/sessions").key(&app.admin))
        .await;
    res.assert_error(405, "method_not_allowed");
    assert!(
        res.header("allow").is_some_and(|a| a.contains("POST")),
        "{:?}",
        res.headers
    );
}

#[tokio::test]
async fn an_invalid_session_id_in_the_path_is_a_400() {
    let app = spawn_app().await;
    let res = app
        .admin(Method::GET, "/v1/sessions/NOT_A_SLUG", None)
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("session_id");
}

#[tokio::test]
async fn an_incoming_request_id_is_echoed_and_a_missing_one_is_generated() {
    let app = spawn_app().await;
    let res = app
        .send(Req::new(Method::GET, "/health").header("x-request-id", "trace-123"))
        .await;
    assert_eq!(res.header("x-request-id"), Some("trace-123"));
    let res = app
        .send(Req::new(Method::GET, "/health").header("x-request-id", "bad id with spaces"))
        .await;
    assert!(
        res.header("x-request-id")
            .is_some_and(|id| id.starts_with("req_"))
    );
}

/// Garbled bodies and paths: whatever comes in, the answer is never a 5xx, and every error is
/// the envelope.
#[tokio::test]
async fn random_and_garbled_input_never_yields_a_5xx_or_a_bare_error() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let mut rng = rand::rng();
    let seeds = [
        json!({"to": "15550109999", "type": "text", "text": {"body": "hi"}}),
        json!({"to": "15550109999", "type": "image", "image": {"base64": "aGVsbG8=", "mimetype": "image/png"}}),
        json!({"to": "15550109999", "type": "poll", "poll": {"name": "q", "options": ["a", "b"]}}),
        json!({"to": "15550109999", "type": "location", "location": {"latitude": 1.0, "longitude": 2.0}}),
        json!({"to": "15550109999", "type": "reaction", "reaction": {"message_id": "true_15550109999@c.us_ABC", "emoji": "👍"}}),
        json!({"id": "b", "name": "x", "config": {"pacing": {"enabled": true}}}),
        json!({"name": "k", "role": "viewer", "allowed_cidrs": ["10.0.0.0/8"]}),
    ];
    let paths = [
        "/v1/sessions",
        "/v1/sessions/a/messages",
        "/v1/api-keys",
        "/v1/sessions/a",
        "/v1/audit",
        "/v1/sessions/a/start",
    ];
    let methods = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
    ];
    for i in 0..300 {
        let mut body = seeds[rng.random_range(0..seeds.len())]
            .to_string()
            .into_bytes();
        for _ in 0..rng.random_range(0..4) {
            let pos = rng.random_range(0..body.len());
            match rng.random_range(0..3) {
                0 => body[pos] = rng.random(),
                1 => {
                    body.remove(pos);
                }
                _ => {
                    let junk = b"{}[]\":,0-e\\\x00\xff";
                    body.insert(pos, junk[rng.random_range(0..junk.len())]);
                }
            }
        }
        let mut path = paths[rng.random_range(0..paths.len())].to_owned();
        if i % 5 == 0 {
            let junk: String = (0..rng.random_range(1..12))
                .map(|_| rng.random_range(b'!'..=b'~') as char)
                .collect();
            path.push('/');
            path.push_str(&urlencode(&junk));
        }
        if i % 7 == 0 {
            path.push_str("?limit=%ff&cursor=%00&status=x");
        }
        let method = methods[rng.random_range(0..methods.len())].clone();
        let res = app
            .send(
                Req::new(method.clone(), &path)
                    .key(&app.admin)
                    .raw("application/json", body.clone()),
            )
            .await;
        assert!(
            !res.status.is_server_error(),
            "{method} {path} {:?} -> {} {}",
            String::from_utf8_lossy(&body),
            res.status,
            res.text
        );
        if res.status.is_client_error() {
            assert_envelope(&res);
        }
    }
}

#[tokio::test]
async fn a_cursor_this_api_did_not_issue_is_a_400() {
    let app = spawn_app().await;
    app.create_session("a").await;
    for path in [
        "/v1/sessions",
        "/v1/sessions/a/messages",
        "/v1/api-keys",
        "/v1/audit",
    ] {
        for cursor in ["garbage", "eyJ0IjoxfQ", "0:0", "99999999999999999999999:x"] {
            let res = app
                .admin(Method::GET, &format!("{path}?cursor={cursor}"), None)
                .await;
            res.assert_error(400, "invalid_request")
                .assert_field("cursor");
        }
    }
}
