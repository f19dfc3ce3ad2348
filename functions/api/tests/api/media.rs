use axum::http::Method;
use serde_json::json;

use crate::helpers::{Req, spawn_app};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nnot really a png";

#[tokio::test]
async fn an_uploaded_file_can_be_sent_by_media_id_and_downloaded() {
    let app = spawn_app().await;
    app.create_session("a").await;

    let upload = app
        .send(
            Req::new(Method::POST, "/v1/media?filename=pic.png")
                .key(&app.admin)
                .raw("image/png", PNG),
        )
        .await;
    upload.assert_status(201);
    assert_eq!(upload.json["size"], PNG.len());
    assert_eq!(upload.json["filename"], "pic.png");
    let media_id = upload.json["media_id"].as_str().unwrap();

    let body = json!({"to": "15550109999", "type": "image", "image": {"media_id": media_id, "caption": "look"}});
    let sent = app
        .admin(Method::POST, "/v1/sessions/a/messages", Some(body))
        .await;
    sent.assert_status(202);
    assert_eq!(sent.json["content"]["media"]["media_id"], media_id);
    assert_eq!(
        sent.json["content"]["media"]["sha256"],
        upload.json["sha256"]
    );

    let download = app
        .send(Req::new(Method::GET, &format!("/v1/media/{media_id}")).key(&app.admin))
        .await;
    download.assert_status(200);
    assert_eq!(download.header("content-type"), Some("image/png"));
    assert_eq!(
        download.text.as_bytes(),
        String::from_utf8_lossy(PNG).as_bytes()
    );
}

#[tokio::test]
async fn an_upload_needs_a_content_type_bytes_and_the_operator_role() {
    let app = spawn_app().await;
    let no_type = app
        .send(Req::new(Method::POST, "/v1/media").key(&app.admin))
        .await;
    no_type.assert_error(415, "unsupported_media_type");
    let empty = app
        .send(
            Req::new(Method::POST, "/v1/media")
                .key(&app.admin)
                .raw("image/png", ""),
        )
        .await;
    empty.assert_error(400, "invalid_request");
    let viewer = app.key_with_role("viewer").await;
    let res = app
        .send(
            Req::new(Method::POST, "/v1/media")
                .key(&viewer)
                .raw("image/png", PNG),
        )
        .await;
    res.assert_error(403, "forbidden");
}

#[tokio::test]
async fn a_media_id_with_a_mimetype_or_base64_is_refused() {
    let app = spawn_app().await;
    app.create_session("a").await;
    let upload = app
        .send(
            Req::new(Method::POST, "/v1/media")
                .key(&app.admin)
                .raw("image/png", PNG),
        )
        .await;
    let media_id = upload.json["media_id"].as_str().unwrap();
    let both = json!({"to": "15550109999", "type": "image", "image": {"media_id": media_id, "base64": "aGk="}});
    let res = app
        .admin(Method::POST, "/v1/sessions/a/messages", Some(both))
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("image.media_id");
    let typed = json!({"to": "15550109999", "type": "image", "image": {"media_id": media_id, "mimetype": "image/png"}});
    let res = app
        .admin(Method::POST, "/v1/sessions/a/messages", Some(typed))
        .await;
    res.assert_error(400, "invalid_request")
        .assert_field("image.mimetype");
}

#[tokio::test]
async fn downloading_unknown_media_is_a_404() {
    let app = spawn_app().await;
    let res = app
        .send(Req::new(Method::GET, "/v1/media/med_01J00000000000000000000000").key(&app.admin))
        .await;
    res.assert_error(404, "not_found");
}
