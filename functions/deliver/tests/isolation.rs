//! A hanging endpoint holds only its own slots: another endpoint's deliveries stay fast.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Reply, eventually, receiver, spawn_app, test_config};
use openwa_core::event::{Event, EventType};
use openwa_core::services::EventPublisher;
use openwa_deliver::DeliverConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_adds_no_latency_to_another_endpoints_deliveries() {
    // The 15 s timeout, scaled to 2 s; the hanging host answers after 10 s.
    let config = DeliverConfig {
        request_timeout: Duration::from_secs(2),
        per_host: 4,
        concurrency: 32,
        ..test_config(0.001)
    };
    let app = spawn_app(config).await;
    let (hanging, hanging_url) = receiver(vec![]).await;
    hanging.set_default(Reply::Hang(Duration::from_secs(10)));
    let (fast, fast_url) = receiver(vec![]).await;
    app.subscribe(&hanging_url, None, &["*"]).await;
    app.subscribe(&fast_url, None, &["*"]).await;
    let _running = app.start_workers();
    let publisher = EventPublisher::new(app.backend.sessions.clone(), app.backend.queue.clone());

    let mut sent = vec![];
    for _ in 0..60 {
        let e = Event::new(
            EventType::MessageReceived,
            None,
            Utc::now(),
            serde_json::json!({}),
        );
        publisher.publish(e.clone()).await.unwrap();
        sent.push(e);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        eventually(Duration::from_secs(20), async || fast.hits().len()
            >= sent.len())
        .await,
        "fast endpoint got {}",
        fast.hits().len()
    );

    let mut latencies: Vec<Duration> = fast
        .hits()
        .iter()
        .map(|hit| {
            let body: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
            let occurred =
                chrono::DateTime::parse_from_rfc3339(body["occurred_at"].as_str().unwrap())
                    .unwrap();
            (hit.wall - occurred.with_timezone(&Utc))
                .to_std()
                .unwrap_or_default()
        })
        .collect();
    latencies.sort();
    let (p50, max) = (
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    eprintln!(
        "fast endpoint while the other hangs: p50 {p50:?}, max {max:?}; hanging endpoint held {} requests",
        hanging.hits().len()
    );
    // Generous bounds: this checks isolation (no waiting behind 2 s timeouts), not speed.
    assert!(p50 < Duration::from_millis(500), "p50 {p50:?}");
    assert!(max < Duration::from_millis(1500), "max {max:?}");
    // Before the first timeout (2 s) frees a slot, the hanging host holds exactly its 4 slots.
    let hits = hanging.hits();
    let first = hits[0].at;
    let concurrent = hits
        .iter()
        .filter(|h| h.at < first + Duration::from_millis(1900))
        .count();
    assert_eq!(
        concurrent, 4,
        "the hanging host should hold exactly its slots"
    );
}
