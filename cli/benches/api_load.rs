//! Load bench for `openwa up` on embedded backends, over loopback. Prints figures; asserts
//! nothing about speed.
//!
//! Run: `cargo bench -p openwa-cli --bench api_load` (env: `BENCH_SECONDS`, default 10;
//! `BENCH_CONCURRENCY`, default 32). The load generator shares the machine's cores with the
//! gateway, so the figures are a floor for what the gateway alone can do.

#[path = "../tests/support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    ok: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Figures {
    fn print(&mut self, what: &str) {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| {
            if self.latencies_us.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
            self.latencies_us[i] as f64 / 1000.0
        };
        println!(
            "{what:<34} {:>9.0} req/s  ok {:>7}  errors {:>4}  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
            self.ok as f64 / self.elapsed.as_secs_f64(),
            self.ok,
            self.errors,
            pct(0.50),
            pct(0.90),
            pct(0.99),
            pct(1.0),
        );
    }
}

/// Runs `make_request` from `concurrency` workers for `duration`.
async fn drive<F, Fut>(
    concurrency: u64,
    duration: Duration,
    expect: u16,
    make_request: F,
) -> Figures
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send,
{
    let make_request = Arc::new(make_request);
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let make_request = make_request.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut lat) = (0u64, 0u64, Vec::with_capacity(100_000));
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                match make_request(n).await {
                    Ok(res) if res.status().as_u16() == expect => {
                        let _ = res.bytes().await;
                        ok += 1;
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    _ => errors += 1,
                }
            }
            (ok, errors, lat)
        }));
    }
    let mut figures = Figures {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        let (ok, errors, lat) = t.await.expect("worker");
        figures.ok += ok;
        figures.errors += errors;
        figures.latencies_us.extend(lat);
    }
    figures.elapsed = start.elapsed();
    figures
}

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 10);
    let concurrency = env_or("BENCH_CONCURRENCY", 32);
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = support::Gateway::start(dir.path(), &[("OPENWA_RATE_LIMIT_PER_MINUTE", "100000000")]);
    let key = std::fs::read_to_string(dir.path().join("admin.key"))
        .expect("admin.key")
        .trim()
        .to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .build()
        .expect("client");
    let base = gw.base_url.clone();

    let res = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&key)
        .json(&json!({"id": "bench"}))
        .send()
        .await
        .expect("create session");
    assert_eq!(res.status().as_u16(), 201, "create session");

    println!(
        "openwa api_load: {seconds} s per phase, {concurrency} concurrent clients, embedded backends, loopback"
    );
    let duration = Duration::from_secs(seconds);

    let (h, k, b) = (http.clone(), key.clone(), base.clone());
    let mut sends = drive(concurrency, duration, 202, move |n| {
        h.post(format!("{b}/v1/sessions/bench/messages"))
            .bearer_auth(&k)
            .json(&json!({"to": format!("1555{:07}", n % 10_000_000), "type": "text", "text": {"body": "bench message"}}))
            .send()
    })
    .await;
    sends.print("POST /v1/sessions/{id}/messages");

    let (h, k, b) = (http.clone(), key.clone(), base.clone());
    let mut lists = drive(concurrency, duration, 200, move |_| {
        h.get(format!("{b}/v1/sessions")).bearer_auth(&k).send()
    })
    .await;
    lists.print("GET /v1/sessions");

    drop(gw);
}
