//! Bench: one simulator carrying many connected pages and a steady message load.
//!
//! The pages are raw WebSocket clients speaking the page protocol (`src/protocol.rs`) — the
//! same frames the simulated WhatsApp Web page sends — so the figure measures the network, not
//! Chromium. Run with `cargo bench -p openwa-simulator --bench network` (env `PAGES`, `MSGS`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use openwa_simulator::{Simulator, SimulatorConfig};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;

struct Client {
    tx: mpsc::UnboundedSender<Value>,
    ready: tokio::sync::watch::Receiver<bool>,
}

async fn connect(
    url: &str,
    phone: String,
    sim: Arc<Simulator>,
    base: Instant,
    lat: Arc<Mutex<Vec<u64>>>,
    got: Arc<AtomicU64>,
) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .expect("ws connect");
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let (ready_tx, ready) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            if sink
                .send(Message::Text(v.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let hello = json!({"type": "hello", "client_id": format!("bench-{phone}"), "keys": ["a", "b", "c"], "login": null});
    tx.send(hello).expect("hello");
    tokio::spawn(async move {
        let mut local = Vec::new();
        while let Some(Ok(Message::Text(text))) = stream.next().await {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match v["type"].as_str() {
                Some("qr") => {
                    let r = v["ref"].as_str().unwrap_or_default().to_owned();
                    sim.network().scan(&phone, &r).expect("scan");
                }
                Some("ready") => {
                    let _ = ready_tx.send(true);
                }
                Some("msg") if v["msg"]["id"]["fromMe"] == json!(false) => {
                    if let Some(sent) = v["msg"]["body"]
                        .as_str()
                        .and_then(|b| b.parse::<u64>().ok())
                    {
                        local.push(base.elapsed().as_micros() as u64 - sent);
                        lat.lock().await.append(&mut local);
                        got.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {}
            }
        }
        lat.lock().await.append(&mut local);
    });
    Client { tx, ready }
}

fn pct(v: &[u64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let pages: usize = std::env::var("PAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let msgs: usize = std::env::var("MSGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30_000);
    let config = SimulatorConfig {
        qr_interval: Duration::from_secs(60),
        pairing_delay: Duration::from_millis(10),
        ..SimulatorConfig::default()
    };
    let sim = Arc::new(Simulator::start(config).await.expect("start"));
    let url = format!("ws://{}/ws", sim.addr());
    let base = Instant::now();
    let lat = Arc::new(Mutex::new(Vec::new()));
    let got = Arc::new(AtomicU64::new(0));
    let phones: Vec<String> = (0..pages).map(|i| format!("49170{i:07}")).collect();
    for p in &phones {
        sim.network().create_account(p, p).expect("account");
    }
    let t0 = Instant::now();
    let mut clients = Vec::new();
    for p in &phones {
        clients.push(connect(&url, p.clone(), sim.clone(), base, lat.clone(), got.clone()).await);
    }
    for c in &mut clients {
        while !*c.ready.borrow() {
            c.ready.changed().await.expect("ready");
        }
    }
    let connected = sim
        .network()
        .pages()
        .iter()
        .filter(|p| p["phase"]["state"] == json!("CONNECTED"))
        .count();
    println!(
        "pages connected: {connected} (raw WebSocket clients speaking the page protocol) in {:?}",
        t0.elapsed()
    );

    // Burst: every page sends to the next one, round-robin, as fast as the network accepts.
    let (delivered, elapsed) = run(&clients, &phones, msgs, None, base, &got).await;
    println!(
        "burst: {delivered}/{msgs} messages delivered in {elapsed:.2?} -> {:.0} msgs/s",
        delivered as f64 / elapsed.as_secs_f64()
    );
    let l = take(&lat).await;
    println!(
        "burst latency (queueing included): p50 {:.2} ms, p99 {:.2} ms",
        pct(&l, 0.5),
        pct(&l, 0.99)
    );

    // Paced: a steady 2,000 msgs/s for 3 s, to read latency without self-inflicted queues.
    let rate = 2_000usize;
    let (delivered, elapsed) = run(&clients, &phones, rate * 3, Some(rate), base, &got).await;
    let l = take(&lat).await;
    println!(
        "paced {rate} msgs/s: {delivered} delivered in {elapsed:.2?}; latency p50 {:.2} ms, p99 {:.2} ms",
        pct(&l, 0.5),
        pct(&l, 0.99)
    );
}

async fn take(lat: &Mutex<Vec<u64>>) -> Vec<u64> {
    let mut l = std::mem::take(&mut *lat.lock().await);
    l.sort_unstable();
    l
}

async fn run(
    clients: &[Client],
    phones: &[String],
    msgs: usize,
    rate: Option<usize>,
    base: Instant,
    got: &AtomicU64,
) -> (u64, Duration) {
    let pages = phones.len();
    got.store(0, Ordering::Relaxed);
    let t1 = Instant::now();
    for i in 0..msgs {
        let from = i % pages;
        let to = &phones[(from + 1) % pages];
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(t1.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let body = (base.elapsed().as_micros() as u64).to_string();
        let frame = json!({"type": "call", "req": i, "op": "send", "msg": {"to": format!("{to}@c.us"), "type": "chat", "body": body}});
        clients[from].tx.send(frame).expect("send");
        if rate.is_none() && i % 500 == 499 {
            tokio::task::yield_now().await;
        }
    }
    while (got.load(Ordering::Relaxed) as usize) < msgs && t1.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (got.load(Ordering::Relaxed), t1.elapsed())
}
