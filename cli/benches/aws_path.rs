//! The AWS-adapter path against the embedded one, same run, same machine: send-accept latency
//! and throughput through the API router, AWS calls per accepted send, and AWS calls per
//! delivered webhook event (outbox relay + fan-out + delivery workers). Prints figures; asserts
//! nothing.
//!
//! The outbox relay (which forwards the `message.queued` events the deliveries here come from)
//! runs on a context of its own, so its calls are counted apart: on AWS the outbox Lambda's
//! event source reads the stream (and keeps the position) itself. The Lambda handlers' own
//! figures per batch size are printed by `functions/lambda/tests/fanout_deliver_calls.rs`.
//!
//! Run: `eval "$(scripts/moto.sh start)"; cargo bench -p openwa-cli --bench aws_path`
//! (env: `BENCH_SENDS`, default 500; `BENCH_CONCURRENCY`, default 16; `BENCH_DELIVERIES`,
//! default 200). moto is a Python emulator on the same two cores: absolute AWS figures are
//! moto's, not AWS's; the call counts are exact.

use openwa_aws::context::calls_between;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openwa_api::{ApiConfig, AppState};
use openwa_core::apikey::Role;
use openwa_core::clock::SystemClock;
use openwa_core::ports::Backend;
use openwa_core::services::NewApiKey;
use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Stack {
    name: &'static str,
    backend: Backend,
    calls: Option<Arc<openwa_aws::context::CallCounter>>,
    /// AWS only: the outbox relay, on its own context (its own call counter).
    relay: Option<Arc<openwa_aws::AwsContext>>,
    _dir: Option<tempfile::TempDir>,
}

impl Stack {
    fn calls(&self) -> BTreeMap<String, u64> {
        self.calls
            .as_ref()
            .map(|c| c.snapshot())
            .unwrap_or_default()
    }
}

fn per(counts: &BTreeMap<String, u64>, n: u64) -> String {
    let total: u64 = counts.values().sum();
    let detail: Vec<String> = counts
        .iter()
        .map(|(k, v)| format!("{k} {:.2}", *v as f64 / n as f64))
        .collect();
    format!(
        "{:.2} calls ({})",
        total as f64 / n as f64,
        detail.join(", ")
    )
}

async fn serve(backend: Backend) -> (String, String) {
    let config = ApiConfig {
        default_rate_limit_per_minute: 100_000_000,
        webhook_allowlist: openwa_deliver::AllowList::loopback(),
        ..ApiConfig::default()
    };
    let state = AppState::new(backend, config);
    let (_, secret) = state
        .keys
        .create(
            None,
            NewApiKey {
                name: "bench".into(),
                role: Role::Admin,
                allowed_sessions: None,
                allowed_cidrs: Vec::new(),
                rate_limit_per_minute: None,
                expires_at: None,
            },
        )
        .await
        .expect("admin key");
    let app = openwa_api::app(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    (base, secret.expose().to_owned())
}

async fn sends(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    n: u64,
    concurrency: u64,
) -> (f64, Vec<u64>) {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, base, key, next) = (http.clone(), base.to_owned(), key.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break lat;
                }
                let t = Instant::now();
                let res = http
                    .post(format!("{base}/v1/sessions/bench/messages"))
                    .bearer_auth(&key)
                    .json(&json!({"to": format!("1555{:07}", i), "type": "text", "text": {"body": "bench"}}))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(res.status().as_u16(), 202, "{}", res.text().await.unwrap_or_default());
                lat.push(t.elapsed().as_micros() as u64);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    all.sort_unstable();
    (rate, all)
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

async fn receiver() -> (String, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let count = count.clone();
            move || {
                count.fetch_add(1, Ordering::Relaxed);
                async { "ok" }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

async fn run(stack: &Stack, n: u64, concurrency: u64, deliveries: u64) {
    let (base, key) = serve(stack.backend.clone()).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&key)
        .json(&json!({"id": "bench"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);

    // Accept path alone: no workers, no webhooks.
    let (_, lat) = sends(&http, &base, &key, 20, 1).await; // warm-up: connections, caches
    drop(lat);
    let before = stack.calls();
    let (_, serial) = sends(&http, &base, &key, n.min(200), 1).await;
    let serial_calls = calls_between(&before, &stack.calls());
    let (rate, parallel) = sends(&http, &base, &key, n, concurrency).await;
    println!(
        "{:<9} send accept: 1 client p50 {:>6.2} ms p99 {:>6.2} ms | {concurrency} clients {:>7.0} sends/s p50 {:>6.2} ms p99 {:>6.2} ms",
        stack.name,
        pct(&serial, 0.5),
        pct(&serial, 0.99),
        rate,
        pct(&parallel, 0.5),
        pct(&parallel, 0.99),
    );
    if stack.calls.is_some() {
        println!(
            "{:<9} per accepted send: {}",
            stack.name,
            per(&serial_calls, serial.len() as u64)
        );
    }

    // Deliveries: a webhook on message.queued; each send below yields one delivery.
    let (url, received) = receiver().await;
    let res = http
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"url": url, "events": ["message.queued"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    // Drain what the accept phases left on the events queue (no webhook then: no deliveries).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let relay = stack.relay.as_ref().map(|ctx| {
        let own = openwa_aws::open(ctx);
        let relay = openwa_aws::outbox::OutboxRelay::new(own.sessions.clone(), own.queue.clone());
        openwa_aws::outbox::StreamRelay::new(ctx.clone(), relay)
    });
    let relay = match relay {
        Some(mut relay) => {
            // Forward the accept phases' outbox before anything is measured.
            while relay.pass().await.expect("outbox relay pass") > 0 {}
            Some(tokio::spawn(relay.run(stopped())))
        }
        None => None,
    };
    let relay_calls = || {
        stack
            .relay
            .as_ref()
            .map(|c| c.calls.snapshot())
            .unwrap_or_default()
    };
    let fanout = tokio::spawn(openwa_fanout::run(
        stack.backend.clone(),
        openwa_fanout::FanoutConfig::default(),
        stopped(),
    ));
    let deliver = tokio::spawn(openwa_deliver::run(
        stack.backend.clone(),
        openwa_deliver::DeliverConfig {
            allowlist: openwa_deliver::AllowList::loopback(),
            ..Default::default()
        },
        stopped(),
    ));
    let settle = Instant::now();
    loop {
        let depth = stack
            .backend
            .queue
            .depth(&openwa_core::ports::QueueName::Events)
            .await
            .unwrap_or(0);
        if depth == 0 || settle.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let already = received.load(Ordering::Relaxed);
    let before = stack.calls();
    let relay_before = relay_calls();
    let start = Instant::now();
    let _ = sends(&http, &base, &key, deliveries, concurrency).await;
    while received.load(Ordering::Relaxed) < already + deliveries {
        if start.elapsed() > Duration::from_secs(300) {
            println!(
                "{:<9} deliveries: only {} of {deliveries} arrived in 300 s",
                stack.name,
                received.load(Ordering::Relaxed) - already
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    // Idle long polls keep calling ReceiveMessage; stop counting at the last delivery.
    let during = calls_between(&before, &stack.calls());
    let relayed = calls_between(&relay_before, &relay_calls());
    let _ = stop_tx.send(true);
    let _ = fanout.await;
    let _ = deliver.await;
    if let Some(relay) = relay {
        let _ = relay.await;
    }
    println!(
        "{:<9} {deliveries} sends -> {deliveries} webhook deliveries in {:.2} s ({:.0}/s end to end)",
        stack.name,
        elapsed.as_secs_f64(),
        deliveries as f64 / elapsed.as_secs_f64()
    );
    if stack.calls.is_some() {
        // Subtract the accept path's share measured above.
        let mut pipeline = during.clone();
        for (op, v) in &serial_calls {
            let share = (*v as f64 / serial.len() as f64 * deliveries as f64).round() as u64;
            if let Some(x) = pipeline.get_mut(op) {
                *x = x.saturating_sub(share);
            }
        }
        pipeline.retain(|_, v| *v > 0);
        println!(
            "{:<9} per delivered event (fan-out + delivery, polling workers): {}",
            stack.name,
            per(&pipeline, deliveries)
        );
        println!(
            "{:<9} per delivered event (outbox relay, polling the stream): {}",
            stack.name,
            per(&relayed, deliveries)
        );
        // The polling workers write each delivery outcome alone and receive/delete jobs
        // themselves; the Lambda handlers batch both. Their exact per-event figures:
        println!(
            "{:<9} (Lambda handlers, batch 1 and 10: cargo test -p openwa-lambda --test fanout_deliver_calls -- --nocapture)",
            stack.name
        );
    }
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let n = env_or("BENCH_SENDS", 500);
    let concurrency = env_or("BENCH_CONCURRENCY", 16);
    let deliveries = env_or("BENCH_DELIVERIES", 200);
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        eprintln!(
            "aws_path needs an AWS-compatible endpoint: eval \"$(scripts/moto.sh start)\" first"
        );
        std::process::exit(2);
    }
    println!(
        "openwa aws_path: {n} sends ({concurrency} clients), {deliveries} deliveries; API on loopback, in-process workers"
    );

    let dir = tempfile::tempdir().unwrap();
    let embedded = Stack {
        name: "embedded",
        backend: openwa_infra::embedded::open(dir.path(), Arc::new(SystemClock)).unwrap(),
        calls: None,
        relay: None,
        _dir: Some(dir),
    };
    run(&embedded, n, concurrency, deliveries).await;

    let ctx = openwa_aws::testing::fresh_stack("bench").await;
    let relay_ctx = openwa_aws::testing::context(ctx.settings.clone(), Arc::new(SystemClock)).await;
    let aws = Stack {
        name: "aws/moto",
        backend: openwa_aws::open(&ctx),
        calls: Some(ctx.calls.clone()),
        relay: Some(Arc::new(relay_ctx)),
        _dir: None,
    };
    run(&aws, n, concurrency, deliveries).await;
}
