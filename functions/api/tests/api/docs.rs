use axum::http::Method;

use crate::helpers::{Req, spawn_app};

#[tokio::test]
async fn health_answers_without_a_key() {
    let app = spawn_app().await;
    let res = app.send(Req::new(Method::GET, "/health")).await;
    res.assert_status(200);
    assert_eq!(res.json["status"], "ok");
    assert!(res.json["version"].is_string());
    assert!(res.header("x-request-id").is_some());
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_lists_every_route() {
    let app = spawn_app().await;
    let res = app.send(Req::new(Method::GET, "/openapi.json")).await;
    res.assert_status(200);
    let doc = &res.json;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let routes = [
        ("/health", "get"),
        ("/openapi.json", "get"),
        ("/v1/sessions", "post"),
        ("/v1/sessions", "get"),
        ("/v1/sessions/{id}", "get"),
        ("/v1/sessions/{id}", "patch"),
        ("/v1/sessions/{id}", "delete"),
        ("/v1/sessions/{id}/start", "post"),
        ("/v1/sessions/{id}/stop", "post"),
        ("/v1/sessions/{id}/messages", "post"),
        ("/v1/sessions/{id}/messages", "get"),
        ("/v1/sessions/{id}/messages/{message_id}", "get"),
        ("/v1/media", "post"),
        ("/v1/media/{media_id}", "get"),
        ("/v1/api-keys", "post"),
        ("/v1/api-keys", "get"),
        ("/v1/api-keys/{id}", "get"),
        ("/v1/api-keys/{id}", "delete"),
        ("/v1/api-keys/{id}/revoke", "post"),
        ("/v1/audit", "get"),
        ("/v1/webhooks", "post"),
        ("/v1/webhooks", "get"),
        ("/v1/webhooks/{id}", "get"),
        ("/v1/webhooks/{id}", "patch"),
        ("/v1/webhooks/{id}", "delete"),
        ("/v1/webhooks/{id}/test", "post"),
        ("/v1/webhooks/{id}/rotate-secret", "post"),
        ("/v1/webhooks/{id}/deliveries", "get"),
        ("/v1/webhooks/{id}/deliveries/{delivery_id}", "get"),
        ("/v1/webhooks/{id}/redeliver", "post"),
        ("/v1/deliveries/{delivery_id}/redeliver", "post"),
    ];
    for (path, method) in routes {
        assert!(
            doc["paths"][path][method].is_object(),
            "missing {method} {path}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "ErrorEnvelope",
        "SendMessageRequest",
        "Session",
        "Message",
        "CreatedApiKey",
    ] {
        assert!(schemas[schema].is_object(), "missing schema {schema}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn the_docs_page_is_html() {
    let app = spawn_app().await;
    let redirect = app.send(Req::new(Method::GET, "/docs")).await;
    assert!(
        redirect.status.is_redirection() || redirect.status.is_success(),
        "{}",
        redirect.status
    );
    let page = app.send(Req::new(Method::GET, "/docs/")).await;
    page.assert_status(200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.text.contains("<html")
            || page.text.contains("<!DOCTYPE html>")
            || page.text.contains("<!doctype html>")
    );
}
