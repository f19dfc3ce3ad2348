//! Delivery throughput and latency on the embedded backend with local receivers. Prints
//! figures; asserts nothing about timing.
//!
//! 1. burst: events to four fast endpoints as fast as the worker can deliver -> deliveries/s
//! 2. steady: events at a fixed rate to four fast endpoints -> event-to-receiver p50/p99
//! 3. the same two with one of the four endpoints dead (it accepts and never answers): the
//!    three live endpoints' figures
//!
//! Run: `cargo bench -p openwa-deliver --bench throughput`

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Receiver, Reply, eventually, receiver, spawn_app, test_config};
use openwa_core::event::{Event, EventType};
use openwa_core::services::EventPublisher;
use openwa_deliver::DeliverConfig;

const BURST_EVENTS: usize = 2_000;
const STEADY_EVENTS: usize = 600;
const STEADY_RATE: f64 = 200.0; // events/s, x3 or x4 deliveries

struct Figures {
    per_second: f64,
    /// Deliveries per second per live endpoint (the fair comparison between 4 and 3 live).
    per_endpoint: f64,
    p50: Duration,
    p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn latencies(receivers: &[Receiver], sent: &HashMap<String, Instant>) -> Vec<Duration> {
    let mut out: Vec<Duration> = receivers
        .iter()
        .flat_map(|r| r.hits())
        .filter_map(|h| {
            let id = h.headers.get("webhook-id")?.to_str().ok()?;
            sent.get(id).map(|at| h.at.saturating_duration_since(*at))
        })
        .collect();
    out.sort();
    out
}

async fn scenario(dead_endpoint: bool) -> (Figures, Figures) {
    let config = DeliverConfig {
        request_timeout: Duration::from_secs(15),
        ..test_config(1.0)
    };
    let app = spawn_app(config).await;
    let mut live = vec![];
    for _ in 0..if dead_endpoint { 3 } else { 4 } {
        let (r, url) = receiver(vec![]).await;
        app.subscribe(&url, None, &["*"]).await;
        live.push(r);
    }
    if dead_endpoint {
        let (dead, url) = receiver(vec![]).await;
        dead.set_default(Reply::Hang(Duration::from_secs(3600)));
        app.subscribe(&url, None, &["*"]).await;
    }
    let _running = app.start_workers();
    let publisher = EventPublisher::new(app.backend.sessions.clone(), app.backend.queue.clone());
    let total_live = |rs: &[Receiver]| rs.iter().map(|r| r.hits().len()).sum::<usize>();

    // Burst.
    let mut sent = HashMap::new();
    let start = Instant::now();
    for _ in 0..BURST_EVENTS {
        let e = Event::new(
            EventType::MessageReceived,
            None,
            Utc::now(),
            serde_json::json!({"text": "hello"}),
        );
        sent.insert(e.id.to_string(), Instant::now());
        publisher.publish_raw(&e).await.unwrap();
    }
    let want = BURST_EVENTS * live.len();
    eventually(Duration::from_secs(300), async || total_live(&live) >= want).await;
    let elapsed = start.elapsed();
    let lat = latencies(&live, &sent);
    let rate = total_live(&live) as f64 / elapsed.as_secs_f64();
    let burst = Figures {
        per_second: rate,
        per_endpoint: rate / live.len() as f64,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
    };

    // Steady rate.
    let before = total_live(&live);
    let mut sent = HashMap::new();
    let start = Instant::now();
    for n in 0..STEADY_EVENTS {
        let due = start + Duration::from_secs_f64(n as f64 / STEADY_RATE);
        tokio::time::sleep_until(due.into()).await;
        let e = Event::new(
            EventType::MessageReceived,
            None,
            Utc::now(),
            serde_json::json!({"text": "hello"}),
        );
        sent.insert(e.id.to_string(), Instant::now());
        publisher.publish_raw(&e).await.unwrap();
    }
    eventually(Duration::from_secs(120), async || {
        total_live(&live) >= before + STEADY_EVENTS * live.len()
    })
    .await;
    let lat = latencies(&live, &sent);
    let rate = (STEADY_EVENTS * live.len()) as f64 / start.elapsed().as_secs_f64();
    let steady = Figures {
        per_second: rate,
        per_endpoint: rate / live.len() as f64,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
    };
    (burst, steady)
}

fn print(label: &str, f: &Figures) {
    println!(
        "{label:<44} {:>6.0} deliveries/s ({:>5.0} per endpoint)   p50 {:>7.1} ms   p99 {:>7.1} ms",
        f.per_second,
        f.per_endpoint,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (burst, steady) = scenario(false).await;
        print("burst, 4 live endpoints", &burst);
        print(&format!("steady {STEADY_RATE} events/s, 4 live endpoints"), &steady);
        let (burst_dead, steady_dead) = scenario(true).await;
        print("burst, 3 live + 1 dead (live figures)", &burst_dead);
        print(&format!("steady {STEADY_RATE} events/s, 3 live + 1 dead"), &steady_dead);
        println!(
            "dead endpoint cost to the others: burst throughput per endpoint {:+.1}%, steady p50 {:+.1} ms, p99 {:+.1} ms",
            (burst_dead.per_endpoint / burst.per_endpoint - 1.0) * 100.0,
            (steady_dead.p50.as_secs_f64() - steady.p50.as_secs_f64()) * 1e3,
            (steady_dead.p99.as_secs_f64() - steady.p99.as_secs_f64()) * 1e3,
        );
    });
}
