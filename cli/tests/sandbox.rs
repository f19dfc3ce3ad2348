//! The README walkthrough in sandbox mode, against the real binary: `openwa up --sandbox`
//! starts the simulator, the runner opens it in headless Chromium, and the test plays the phone
//! through `/v1/sandbox/…`: scan the QR, send and receive text, read receipts, restart without a
//! new scan, logout.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use support::{Api, Gateway};

const LINKED: &str = "15550100001";
const CUSTOMER: &str = "15550100002";

fn chromium() -> String {
    std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| {
        openwa_runner::engine::chromium::default_binary()
            .display()
            .to_string()
    })
}

fn start(dir: &std::path::Path) -> Gateway {
    let chromium = chromium();
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium not found at {chromium}; scripts/test.sh installs it"
    );
    Gateway::start_with_args(
        dir,
        &["--sandbox", "--sandbox-qr-interval-ms", "2000"],
        &[("OPENWA_CHROMIUM", chromium.as_str())],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walkthrough_works_in_sandbox_mode_from_qr_scan_to_logout() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let key = std::fs::read_to_string(dir.path().join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let api = Api {
        http: reqwest::Client::new(),
        base: gw.base_url.clone(),
        key,
    };
    let minute = Duration::from_secs(60);

    // The sandbox control API is for operator keys: a viewer is refused, no key is 401.
    let (status, viewer) = api
        .post("/v1/api-keys", json!({"name": "watcher", "role": "viewer"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let as_viewer = Api {
        http: api.http.clone(),
        base: api.base.clone(),
        key: viewer["secret"].as_str().unwrap().to_owned(),
    };
    let (status, body) = as_viewer
        .post(
            "/v1/sandbox/accounts",
            json!({"phone": "15550100009", "pushname": "X"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let res = api
        .http
        .get(format!("{}/v1/sandbox/accounts", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The phone side: two sandbox accounts.
    for (phone, name) in [(LINKED, "Sales"), (CUSTOMER, "Customer")] {
        let (status, body) = api
            .post(
                "/v1/sandbox/accounts",
                json!({"phone": phone, "pushname": name}),
            )
            .await;
        assert!(
            status.is_success(),
            "create account {phone}: {status} {body}"
        );
    }

    let (status, _) = api
        .post("/v1/sessions", json!({"id": "sales", "start": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let qr = api
        .wait_for("a QR code", "/v1/sessions/sales/qr", minute, |s, _| {
            s == StatusCode::OK
        })
        .await;
    let payload = qr["payload"].as_str().unwrap().to_owned();
    assert_eq!(
        payload.split(',').count(),
        5,
        "QR payload has the real shape: {payload}"
    );

    let (status, body) = api
        .post(
            &format!("/v1/sandbox/accounts/{LINKED}/scan"),
            json!({"qr": payload}),
        )
        .await;
    assert!(status.is_success(), "scan: {status} {body}");
    let session = api
        .wait_for("connected", "/v1/sessions/sales", minute, |_, s| {
            s["status"] == "connected"
        })
        .await;
    assert_eq!(session["me"]["jid"], format!("{LINKED}@c.us"));

    // Send a text and follow it to the customer's phone and back through the acks.
    let (status, sent) = api
        .post(
            "/v1/sessions/sales/messages",
            json!({"to": CUSTOMER, "type": "text", "text": {"body": "Your order shipped"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/sessions/sales/messages/{id}");
    api.wait_for("delivered", &path, minute, |_, m| {
        m["status"] == "delivered" || m["status"] == "read"
    })
    .await;
    let inbox = api
        .wait_for(
            "the customer's copy",
            &format!("/v1/sandbox/accounts/{CUSTOMER}/messages?chat={LINKED}@c.us"),
            minute,
            |s, _| s.is_success(),
        )
        .await;
    let copies = inbox
        .as_array()
        .or_else(|| inbox["messages"].as_array())
        .cloned()
        .unwrap_or_default();
    let matching = copies
        .iter()
        .filter(|m| m["body"] == "Your order shipped")
        .count();
    assert_eq!(matching, 1, "exactly one copy arrived: {inbox}");

    let (status, _) = api
        .post(
            &format!("/v1/sandbox/accounts/{CUSTOMER}/read"),
            json!({"chat": format!("{LINKED}@c.us")}),
        )
        .await;
    assert!(status.is_success());
    api.wait_for("read", &path, minute, |_, m| m["status"] == "read")
        .await;

    // The customer answers.
    let (status, _) = api
        .post(
            &format!("/v1/sandbox/accounts/{CUSTOMER}/messages"),
            json!({"to": LINKED, "body": "Thanks!"}),
        )
        .await;
    assert!(status.is_success());
    let inbound = api
        .wait_for(
            "the inbound message",
            "/v1/sessions/sales/messages?direction=inbound",
            minute,
            |_, page| {
                page["items"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|m| m["content"]["body"] == "Thanks!"))
            },
        )
        .await;
    let msg = inbound["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["content"]["body"] == "Thanks!")
        .unwrap()
        .clone();
    assert_eq!(msg["chat_id"], format!("{CUSTOMER}@c.us"));
    assert_eq!(msg["status"], "received");

    // Restart the gateway: the session comes back from the stored login, without a scan.
    let (_, before) = api.get("/v1/sessions/sales").await;
    let epoch = before["lease"]["epoch"].as_u64().unwrap();
    assert!(gw.terminate().success());
    let gw = start(dir.path());
    let api = Api {
        base: gw.base_url.clone(),
        ..api
    };
    // A new runner claim (higher epoch) that reaches connected: no scan happens in between.
    api.wait_for(
        "connected again without a scan",
        "/v1/sessions/sales",
        minute,
        |_, s| s["lease"]["epoch"].as_u64() > Some(epoch) && s["status"] == "connected",
    )
    .await;
    let (_, accounts) = api
        .get(&format!(
            "/v1/sandbox/accounts/{CUSTOMER}/messages?chat={LINKED}@c.us"
        ))
        .await;
    assert!(
        accounts.to_string().contains("Your order shipped"),
        "the sandbox network kept its history: {accounts}"
    );

    let (status, _) = api.post("/v1/sessions/sales/logout", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    api.wait_for("logged out", "/v1/sessions/sales", minute, |_, s| {
        s["status"] == "logged_out"
    })
    .await;
}
