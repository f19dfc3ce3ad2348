//! The whole AWS-adapter path end to end, on the AWS-compatible endpoint the test command
//! started (moto), and on LocalStack in Docker where a Docker engine answers (testcontainers;
//! skipped with a printed reason elsewhere): `openwa up --backend aws --bootstrap --sandbox`
//! serves the API's router on
//! DynamoDB/SQS/S3/Secrets Manager, its runner drives the simulator in headless Chromium, and
//! fan-out and delivery push events through SQS to a local webhook receiver.
//!
//! Checked: bootstrap makes the admin key in Secrets Manager (read back from there, never from a
//! file); QR scan -> connected; a send goes API -> SQS FIFO -> runner -> the customer's phone
//! with acks; the customer's answer comes back as a stored inbound message and as a signed
//! `message.received` webhook; the state is in DynamoDB, not in a local database.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use openwa_core::webhook::WebhookSecret;
use openwa_core::webhook::signature::{DEFAULT_TOLERANCE, SignedHeaders, verify};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use support::{Api, Gateway};

/// How long each step of the flow may take.
const PATIENCE: Duration = Duration::from_secs(90);

const LINKED: &str = "15550100011";
const CUSTOMER: &str = "15550100012";

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A webhook receiver on loopback that answers 200 and keeps every request.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let received = received.clone();
            move |headers: HeaderMap, body: Bytes| {
                let received = received.clone();
                async move {
                    received.lock().unwrap().push((headers, body));
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_goes_out_and_comes_back_through_the_aws_adapters() {
    run_flow(&openwa_aws::testing::endpoint()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_flow_runs_on_localstack_in_docker() {
    use testcontainers_modules::localstack::LocalStack;
    use testcontainers_modules::testcontainers::ImageExt;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;

    if let Err(reason) = docker_engine() {
        println!("SKIPPED the_same_flow_runs_on_localstack_in_docker: {reason}");
        return;
    }
    let mut image =
        LocalStack::default().with_env_var("SERVICES", "sqs,dynamodb,s3,secretsmanager");
    if let Ok(token) = std::env::var("LOCALSTACK_AUTH_TOKEN") {
        image = image.with_env_var("LOCALSTACK_AUTH_TOKEN", token);
    }
    let node = image.start().await.expect("LocalStack starts in Docker");
    let port = node
        .get_host_port_ipv4(4566)
        .await
        .expect("LocalStack's port");
    run_flow(&format!("http://127.0.0.1:{port}")).await;
}

/// Whether a Docker engine answers (`DOCKER_HOST` or the default socket), and if not, why.
fn docker_engine() -> Result<(), String> {
    use std::io::{Read, Write};
    let ping = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
    let mut answer = String::new();
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("tcp://") => {
            let addr = host.trim_start_matches("tcp://");
            let mut s = std::net::TcpStream::connect(addr)
                .map_err(|e| format!("no Docker engine answers at {host}: {e}"))?;
            s.write_all(ping)
                .and_then(|()| s.read_to_string(&mut answer))
                .map_err(|e| e.to_string())?;
        }
        other => {
            let path = other
                .ok()
                .and_then(|h| h.strip_prefix("unix://").map(str::to_owned))
                .unwrap_or_else(|| "/var/run/docker.sock".into());
            let mut s = std::os::unix::net::UnixStream::connect(&path)
                .map_err(|e| format!("no Docker engine answers at unix://{path}: {e}"))?;
            s.write_all(ping)
                .and_then(|()| s.read_to_string(&mut answer))
                .map_err(|e| e.to_string())?;
        }
    }
    if answer.contains("OK") {
        Ok(())
    } else {
        Err("the Docker engine did not answer its ping".into())
    }
}

async fn run_flow(endpoint: &str) {
    let endpoint = endpoint.to_owned();
    let settings = openwa_aws::testing::unique_settings("e2e");
    let chromium = std::env::var("CHROMIUM_BIN")
        .unwrap_or_else(|_| "/usr/lib/chromium/chromium-headless-shell".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium not found at {chromium}; scripts/test.sh installs it"
    );
    let max_receives = settings.max_receives.to_string();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("OPENWA_TABLE", settings.table.as_str()),
        ("OPENWA_BUCKET", settings.bucket.as_str()),
        ("OPENWA_QUEUE_PREFIX", settings.queue_prefix.as_str()),
        ("OPENWA_SECRET_PREFIX", settings.secret_prefix.as_str()),
        ("OPENWA_MAX_RECEIVES", max_receives.as_str()),
        ("OPENWA_CHROMIUM", chromium.as_str()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with_args(
        dir.path(),
        &[
            "--backend",
            "aws",
            "--bootstrap",
            "--sandbox",
            "--sandbox-qr-interval-ms",
            "2000",
            "--webhook-allowlist",
            "127.0.0.1",
        ],
        &env,
    );
    assert!(
        gw.banner.iter().any(|l| l.contains("Secrets Manager")),
        "banner points at the secret: {:?}",
        gw.banner
    );
    assert!(
        !dir.path().join("admin.key").exists() && !dir.path().join("openwa.db").exists(),
        "nothing of the state is kept locally on the AWS backend"
    );

    // The admin key, from where bootstrap put it.
    let ctx = openwa_aws::testing::context_at(
        &endpoint,
        settings.clone(),
        Arc::new(openwa_core::clock::SystemClock),
    )
    .await;
    let key = openwa_aws::open(&ctx)
        .secrets
        .get(openwa_aws::resources::secrets::ADMIN_KEY)
        .await
        .unwrap()
        .expect("bootstrap stored the admin key in Secrets Manager");
    let api = Api {
        http: reqwest::Client::new(),
        base: gw.base_url.clone(),
        key: key.expose_secret().to_owned(),
    };

    let (hook_url, received) = receiver().await;
    let (status, hook) = api
        .post(
            "/v1/webhooks",
            json!({"url": hook_url, "events": ["message.received"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook_secret = WebhookSecret::parse(hook["secret"].as_str().unwrap()).unwrap();
    // A second subscriber: a customer's SQS queue (a webhook target on the AWS backend).
    let target = ctx
        .sqs
        .create_queue()
        .queue_name(format!("{}-customer", settings.queue_prefix))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let (status, sqs_hook) = api
        .post(
            "/v1/webhooks",
            json!({"sqs_queue_url": target, "events": ["message.received"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sqs_hook}");

    for (phone, name) in [(LINKED, "Sales"), (CUSTOMER, "Customer")] {
        let (status, body) = api
            .post(
                "/v1/sandbox/accounts",
                json!({"phone": phone, "pushname": name}),
            )
            .await;
        assert!(status.is_success(), "account {phone}: {status} {body}");
    }
    let (status, body) = api
        .post("/v1/sessions", json!({"id": "sales", "start": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let qr = api
        .wait_for("a QR code", "/v1/sessions/sales/qr", PATIENCE, |s, _| {
            s == StatusCode::OK
        })
        .await;
    let (status, body) = api
        .post(
            &format!("/v1/sandbox/accounts/{LINKED}/scan"),
            json!({"qr": qr["payload"]}),
        )
        .await;
    assert!(status.is_success(), "scan: {status} {body}");
    api.wait_for("connected", "/v1/sessions/sales", PATIENCE, |_, s| {
        s["status"] == "connected"
    })
    .await;

    // Out: API -> the session's SQS FIFO queue -> runner -> the customer's phone, with acks.
    let (status, sent) = api
        .post(
            "/v1/sessions/sales/messages",
            json!({"to": CUSTOMER, "type": "text", "text": {"body": "Shipped via AWS"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let path = format!(
        "/v1/sessions/sales/messages/{}",
        sent["id"].as_str().unwrap()
    );
    api.wait_for("delivered", &path, PATIENCE, |_, m| {
        m["status"] == "delivered" || m["status"] == "read"
    })
    .await;
    let inbox = api
        .wait_for(
            "the customer's copy",
            &format!("/v1/sandbox/accounts/{CUSTOMER}/messages?chat={LINKED}@c.us"),
            PATIENCE,
            |s, _| s.is_success(),
        )
        .await;
    let copies = inbox
        .as_array()
        .or_else(|| inbox["messages"].as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        copies
            .iter()
            .filter(|m| m["body"] == "Shipped via AWS")
            .count(),
        1,
        "exactly one copy arrived: {inbox}"
    );

    // In: the customer answers; stored in DynamoDB and pushed as a signed webhook.
    let (status, _) = api
        .post(
            &format!("/v1/sandbox/accounts/{CUSTOMER}/messages"),
            json!({"to": LINKED, "body": "Thanks, AWS!"}),
        )
        .await;
    assert!(status.is_success());
    api.wait_for(
        "the inbound message",
        "/v1/sessions/sales/messages?direction=inbound",
        PATIENCE,
        |_, page| {
            page["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|m| m["content"]["body"] == "Thanks, AWS!"))
        },
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (headers, body) = loop {
        let found = received.lock().unwrap().iter().find_map(|(h, b)| {
            let event: Value = serde_json::from_slice(b).ok()?;
            (event["type"] == "message.received" && event.to_string().contains("Thanks, AWS!"))
                .then(|| (h.clone(), b.clone()))
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook receiver never got the message.received event"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let signed = SignedHeaders::from((
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ));
    verify(&hook_secret, signed, &body, DEFAULT_TOLERANCE).expect("the delivery verifies");

    // The same event on the customer's queue, its signature in the message attributes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let message = loop {
        let out = ctx
            .sqs
            .receive_message()
            .queue_url(&target)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if let Some(m) = out
            .messages()
            .iter()
            .find(|m| m.body().is_some_and(|b| b.contains("Thanks, AWS!")))
        {
            break m.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the SQS target never got the message.received event"
        );
    };
    let attribute = |name: &str| {
        message
            .message_attributes()
            .and_then(|a| a.get(name))
            .and_then(|v| v.string_value())
            .unwrap_or("")
            .to_owned()
    };
    let sqs_secret = WebhookSecret::parse(sqs_hook["secret"].as_str().unwrap()).unwrap();
    let (id, ts, sig) = (
        attribute("webhook-id"),
        attribute("webhook-timestamp"),
        attribute("webhook-signature"),
    );
    verify(
        &sqs_secret,
        SignedHeaders::from((id.as_str(), ts.as_str(), sig.as_str())),
        message.body().unwrap().as_bytes(),
        DEFAULT_TOLERANCE,
    )
    .expect("the SQS delivery verifies");

    // The state lives in DynamoDB: the session item is there.
    let item = ctx
        .dynamo
        .scan()
        .table_name(&settings.table)
        .send()
        .await
        .unwrap();
    assert!(
        item.items().iter().any(|i| {
            i.values()
                .any(|v| v.as_s().is_ok_and(|s| s.contains("sales")))
        }),
        "the session is stored in the DynamoDB table"
    );
    assert_eq!(gw.terminate().code(), Some(0));
}
