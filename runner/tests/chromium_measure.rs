//! Figures for the Chromium engine against the in-process simulator: start-to-ready time, the
//! latency of a bridge call, and memory (PSS) per session, for full Chromium in new headless
//! mode and for `chromium-headless-shell`. Prints, asserts nothing about timing.
//!
//! Run: `cargo test -p openwa-runner --test chromium_measure -- --ignored --nocapture`
//! (`MEASURE_SESSIONS=5` for more sessions at once).

mod chromium_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chromium_support::*;
use openwa_core::jid::ChatId;
use openwa_runner::engine::chromium::{ChromiumConfig, ChromiumEngine};
use openwa_runner::engine::{EngineEvent, EngineSession};
use serde_json::json;

/// Sum of the PSS of `pids`, in MiB.
fn pss_mib(pids: &[u32]) -> f64 {
    let kib: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|text| {
            text.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .sum();
    kib as f64 / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(binary: PathBuf, sessions: usize) {
    let mut world = World::new().await;
    world.engine = ChromiumEngine::new(ChromiumConfig::for_binary(&binary));
    let mut running: Vec<Box<dyn EngineSession>> = Vec::new();
    let mut ready_times = Vec::new();
    for i in 0..sessions {
        let phone = format!("1555020{i:04}");
        world
            .control("POST", "/accounts", json!({"phone": phone}))
            .await;
        let started = Instant::now();
        let (session, mut events) = world.start(&format!("measure-{i}")).await;
        let EngineEvent::Qr { payload, .. } =
            next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await
        else {
            unreachable!()
        };
        let qr_at = started.elapsed();
        world
            .control(
                "POST",
                &format!("/accounts/{phone}/scan"),
                json!({"qr": payload}),
            )
            .await;
        next_matching(&mut events, |e| matches!(e, EngineEvent::Ready { .. })).await;
        ready_times.push((qr_at, started.elapsed()));
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        running.push(session);
    }
    // Let the post-login reloads settle before measuring calls and memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let friend = ChatId::parse(FRIEND_PHONE).unwrap();
    let mut lat = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        running[0]
            .check_number(&friend)
            .await
            .expect("check_number");
        lat.push(t.elapsed());
    }
    lat.sort();
    let pids: Vec<u32> = running.iter().flat_map(|s| s.pids()).collect();
    let pss = pss_mib(&pids);
    println!(
        "{} x{sessions}: first QR {:?}, start-to-ready (incl. scan) {:?}; bridge call (check_number) p50 {:?} p99 {:?}; \
         PSS total {pss:.0} MiB, per session {:.0} MiB, {} processes",
        binary.display(),
        ready_times[0].0,
        ready_times.iter().map(|r| r.1).max().unwrap(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        pss / sessions as f64,
        pids.len(),
    );
    for s in &running {
        s.stop().await.unwrap();
    }
}

#[tokio::test]
#[ignore = "prints measurements; run with --ignored --nocapture"]
async fn measure_new_headless_and_headless_shell() {
    let _serial = SERIAL.lock().await;
    let sessions: usize = std::env::var("MEASURE_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    measure(chromium(), sessions).await;
    let shell = PathBuf::from("/usr/lib/chromium/chromium-headless-shell");
    if shell.exists() {
        measure(shell, sessions).await;
    } else {
        println!("chromium-headless-shell not installed; skipped");
    }
}
