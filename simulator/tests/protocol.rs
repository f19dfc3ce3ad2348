//! The network over its WebSocket protocol, without a browser: pairing, the connection log,
//! conflicts between profiles, offline delivery and the control API's error envelope.

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw page: connects and says hello.
async fn page(base: &str, client_id: &str, login: Value) -> Ws {
    let url = format!("ws://{}/ws", base.trim_start_matches("http://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let hello =
        json!({"type": "hello", "client_id": client_id, "keys": ["n", "i", "a"], "login": login});
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .expect("hello");
    ws
}

/// The next frame of `kind`, skipping others.
async fn next(ws: &mut Ws, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame"))
            .expect("socket open")
            .expect("frame");
        if let Message::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == kind {
                return v;
            }
        }
    }
}

async fn pair(base: &str, phone: &str, client: &str) -> (Ws, Value) {
    let mut ws = page(base, client, Value::Null).await;
    let qr = next(&mut ws, "qr").await;
    assert_eq!(qr["payload"].as_str().unwrap().split(',').count(), 5);
    post(
        base,
        &format!("/control/accounts/{phone}/scan"),
        json!({"qr": qr["payload"]}),
    )
    .await;
    next(&mut ws, "pairing").await;
    let login = next(&mut ws, "paired").await["login"].clone();
    next(&mut ws, "ready").await;
    (ws, login)
}

#[tokio::test]
async fn a_second_profile_with_the_same_login_gets_conflict_until_takeover() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, "4915400000001", "Dana").await;
    let (mut first, login) = pair(&base, "4915400000001", "profile-a").await;

    let mut second = page(&base, "profile-b", login.clone()).await;
    next(&mut second, "conflict").await;
    let call = json!({"type": "call", "req": 7, "op": "takeover"});
    second
        .send(Message::Text(call.to_string().into()))
        .await
        .unwrap();
    next(&mut second, "ready").await;
    next(&mut first, "conflict").await;

    let log = get(&base, "/control/connections?phone=4915400000001").await;
    let kinds: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "paired",
            "connected",
            "conflict",
            "disconnected",
            "conflict",
            "connected"
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn messages_for_an_offline_device_arrive_as_new_after_reconnect() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, "4915400000002", "Eve").await;
    account(&base, "4915400000003", "Finn").await;
    let (ws, login) = pair(&base, "4915400000002", "profile-e").await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let sent = post(
        &base,
        "/control/accounts/4915400000003/messages",
        json!({"to": "4915400000002", "body": "while you were away"}),
    )
    .await;
    let mut ws = page(&base, "profile-e", login).await;
    let ready = next(&mut ws, "ready").await;
    assert!(
        ready["sync"]["messages"].as_array().unwrap().is_empty(),
        "{ready}"
    );
    let msg = next(&mut ws, "msg").await;
    assert_eq!(msg["msg"]["isNewMsg"], json!(true));
    assert_eq!(
        msg["msg"]["id"]["_serialized"],
        json!(format!(
            "false_4915400000003@c.us_{}",
            sent["id"].as_str().unwrap()
        ))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stale_login_is_told_it_was_logged_out() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    let mut ws = page(
        &base,
        "profile-x",
        json!({"phone": "4915499999999", "device": 1, "token": "nope"}),
    )
    .await;
    next(&mut ws, "logged_out").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn control_errors_use_one_envelope() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, "4915400000004", "Gil").await;
    let cases = [
        (
            "POST",
            "/control/accounts",
            Some(json!({"phone": "12"})),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/control/accounts",
            Some(json!({"phone": "4915400000004"})),
            409,
            "conflict",
        ),
        (
            "GET",
            "/control/accounts/4915000000000",
            None,
            404,
            "not_found",
        ),
        (
            "POST",
            "/control/accounts/4915400000004/scan",
            Some(json!({"qr": "2@nothing,a,b,c,1"})),
            404,
            "not_found",
        ),
        (
            "DELETE",
            "/control/accounts/4915400000004/devices/9",
            None,
            404,
            "not_found",
        ),
        (
            "POST",
            "/control/accounts/4915400000004/groups",
            Some(json!({"subject": " "})),
            400,
            "invalid_request",
        ),
        ("GET", "/control/nope", None, 404, "not_found"),
    ];
    for (method, path, body, status, code) in cases {
        let (got, v) = http(&base, method, path, body).await;
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {v}"
        );
        assert!(v["error"]["message"].is_string());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_acks_arrive_late_and_poll_votes_reach_the_sender() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, "4915400000005", "Hana").await;
    account(&base, "4915400000006", "Ivo").await;
    let (mut ws, _) = pair(&base, "4915400000005", "profile-h").await;
    post(&base, "/control/faults", json!({"ack_delay_ms": 300})).await;

    let started = tokio::time::Instant::now();
    let send = json!({"type": "call", "req": 1, "op": "send", "msg": {"to": "4915400000006@c.us", "type": "poll_creation", "pollName": "Tea?", "pollOptions": [{"name": "yes", "localId": 0}, {"name": "no", "localId": 1}]}});
    ws.send(Message::Text(send.to_string().into()))
        .await
        .unwrap();
    let reply = next(&mut ws, "reply").await;
    assert_eq!(reply["result"]["ack"], json!(1));
    let id = reply["result"]["id"].as_str().unwrap().to_owned();
    let ack = next(&mut ws, "ack").await;
    assert_eq!(
        (ack["id"].as_str(), ack["ack"].as_i64()),
        (Some(id.as_str()), Some(2))
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "ack 2 came before the injected delay"
    );

    post(
        &base,
        "/control/accounts/4915400000006/poll-vote",
        json!({"id": id, "selected": ["yes"]}),
    )
    .await;
    let update = next(&mut ws, "update").await;
    assert_eq!(
        update["changes"]["pollVotes"]["4915400000006@c.us"],
        json!(["yes"])
    );
    sim.shutdown().await;
}
