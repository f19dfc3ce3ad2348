//! QR (JSON and PNG), pairing code and logout. A test plays the runner: it claims the session's
//! lease, writes what a runner writes, and answers commands from the control queue.

use std::time::Duration;

use axum::http::Method;
use openwa_core::id::SessionId;
use openwa_core::ports::QueueName;
use openwa_core::session::{
    DesiredState, PairingCode, Qr, RuntimeUpdate, SessionCommand, SessionStatus,
};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

/// Claims `id` as a fake runner and reports `status` (with a QR when given); returns the epoch.
async fn play_runner(app: &TestApp, id: &str, status: SessionStatus, qr: Option<&str>) -> u64 {
    let id = SessionId::parse(id).unwrap();
    let mut s = app.backend.sessions.get(&id).await.unwrap();
    s.desired = DesiredState::Running;
    app.backend.sessions.update(&s).await.unwrap();
    let now = app.backend.clock.now();
    let claimed = app
        .backend
        .sessions
        .claim(&id, "test-runner", now, now + chrono::Duration::seconds(60))
        .await
        .unwrap();
    let update = RuntimeUpdate {
        status: Some(status),
        qr: Some(qr.map(|payload| Qr {
            payload: payload.into(),
            expires_at: now + chrono::Duration::seconds(20),
        })),
        ..Default::default()
    };
    app.backend
        .sessions
        .update_runtime(&id, claimed.lease.epoch, &update)
        .await
        .unwrap();
    claimed.lease.epoch
}

#[tokio::test]
async fn a_session_without_a_qr_answers_409_for_both_qr_forms() {
    let app = spawn_app().await;
    app.create_session("s1").await;
    app.admin(Method::GET, "/v1/sessions/s1/qr", None)
        .await
        .assert_error(409, "conflict");
    app.admin(Method::GET, "/v1/sessions/s1/qr.png", None)
        .await
        .assert_error(409, "conflict");
}

#[tokio::test]
async fn the_current_qr_is_served_as_json_and_as_a_png_image() {
    let app = spawn_app().await;
    app.create_session("s1").await;
    let payload = "2@abc,noise=,identity=,adv=,WEB";
    play_runner(&app, "s1", SessionStatus::Qr, Some(payload)).await;

    let res = app.admin(Method::GET, "/v1/sessions/s1/qr", None).await;
    res.assert_status(200);
    assert_eq!(res.json["payload"], payload);
    assert!(res.json["expires_at"].is_string());

    let req = crate::helpers::Req::new(Method::GET, "/v1/sessions/s1/qr.png").key(&app.admin);
    let png = app.send(req).await;
    png.assert_status(200);
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(png.header("cache-control"), Some("no-store"));
}

#[test]
fn the_png_is_a_valid_square_image_with_a_quiet_zone() {
    let bytes = openwa_api::routes::login::render_png("2@abc,def,ghi,jkl,WEB").unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.width, info.height);
    assert_eq!(info.width % 8, 0);
    // Top-left pixel is quiet zone (white); the finder pattern starts 4 modules in (black).
    assert_eq!(buf[0], 255);
    let at = |x: u32, y: u32| buf[(y * info.width + x) as usize];
    assert_eq!(at(32, 32), 0);
}

#[tokio::test]
async fn an_expired_qr_is_not_served() {
    let app = spawn_app().await;
    app.create_session("s1").await;
    play_runner(&app, "s1", SessionStatus::Qr, Some("2@abc,d,e,f,WEB")).await;
    app.clock.advance(chrono::Duration::seconds(21));
    app.admin(Method::GET, "/v1/sessions/s1/qr", None)
        .await
        .assert_error(409, "conflict");
}

#[tokio::test]
async fn a_pairing_code_request_reaches_the_runner_and_returns_its_code() {
    let app = spawn_app().await;
    app.create_session("s1").await;
    let epoch = play_runner(&app, "s1", SessionStatus::Qr, Some("2@abc,d,e,f,WEB")).await;

    // The fake runner answers the first command on the control queue.
    let backend = app.backend.clone();
    let runner = tokio::spawn(async move {
        let id = SessionId::parse("s1").unwrap();
        let queue = QueueName::Control(id.clone());
        let jobs = backend
            .queue
            .receive(&queue, 1, Duration::from_secs(30), Duration::from_secs(10))
            .await
            .unwrap();
        let command: SessionCommand = serde_json::from_slice(&jobs[0].body).unwrap();
        let SessionCommand::RequestPairingCode { phone } = command else {
            panic!("unexpected {command:?}")
        };
        let code = PairingCode {
            code: "ABCD1234".into(),
            phone,
            expires_at: backend.clock.now() + chrono::Duration::minutes(3),
        };
        let update = RuntimeUpdate {
            status: Some(SessionStatus::Pairing),
            pairing_code: Some(Some(code)),
            ..Default::default()
        };
        backend
            .sessions
            .update_runtime(&id, epoch, &update)
            .await
            .unwrap();
        backend.queue.ack(&queue, &jobs[0].receipt).await.unwrap();
    });

    let res = app
        .admin(
            Method::POST,
            "/v1/sessions/s1/pairing-code",
            Some(json!({"phone": "+1 555 010 9999"})),
        )
        .await;
    runner.await.unwrap();
    res.assert_status(200);
    assert_eq!(res.json["status"], "ready");
    assert_eq!(res.json["code"], "ABCD1234");
    assert_eq!(res.json["phone"], "15550109999@c.us");
}

#[tokio::test]
async fn a_pairing_code_for_a_connected_session_or_a_bad_phone_is_refused() {
    let app = spawn_app().await;
    app.create_session("s1").await;
    app.admin(
        Method::POST,
        "/v1/sessions/s1/pairing-code",
        Some(json!({"phone": "not a phone"})),
    )
    .await
    .assert_error(400, "invalid_request")
    .assert_field("phone");
    play_runner(&app, "s1", SessionStatus::Connected, None).await;
    app.admin(
        Method::POST,
        "/v1/sessions/s1/pairing-code",
        Some(json!({"phone": "15550109999"})),
    )
    .await
    .assert_error(409, "conflict");
}

#[tokio::test]
async fn logout_puts_a_command_on_the_control_queue_when_a_runner_holds_the_session() {
    let app = spawn_app().await;
    app.create_session("s1").await;
    app.admin(Method::POST, "/v1/sessions/s1/logout", None)
        .await
        .assert_error(409, "conflict");

    play_runner(&app, "s1", SessionStatus::Connected, None).await;
    app.admin(Method::POST, "/v1/sessions/s1/logout", None)
        .await
        .assert_status(202);
    let queue = QueueName::Control(SessionId::parse("s1").unwrap());
    let jobs = app
        .backend
        .queue
        .receive(&queue, 10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    let command: SessionCommand = serde_json::from_slice(&jobs[0].body).unwrap();
    assert_eq!(command, SessionCommand::Logout);
}

#[tokio::test]
async fn a_viewer_cannot_request_a_pairing_code_or_log_out() {
    let app = spawn_app().await;
    app.create_session("s1").await;
    let viewer = app.key_with_role("viewer").await;
    app.as_key(&viewer, Method::POST, "/v1/sessions/s1/logout", None)
        .await
        .assert_error(403, "forbidden");
    app.as_key(
        &viewer,
        Method::POST,
        "/v1/sessions/s1/pairing-code",
        Some(json!({"phone": "15550109999"})),
    )
    .await
    .assert_error(403, "forbidden");
}
