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

/// PSS of `n` unpaired WhatsApp Web pages (until the first QR): one Chromium per session (the
/// engine's design) vs one Chromium with one browser context per page (not implemented; for
/// comparison only).
async fn measure_contexts(binary: PathBuf, n: usize) {
    use chromiumoxide::Browser;
    use chromiumoxide::cdp::browser_protocol::target::{
        CreateBrowserContextParams, CreateTargetParams,
    };
    use futures::StreamExt;
    use openwa_runner::engine::chromium::launch::{LaunchSpec, launch, process_tree};

    let mut world = World::new().await;
    world.engine = ChromiumEngine::new(ChromiumConfig::for_binary(&binary));
    let mut sessions = Vec::new();
    for i in 0..n {
        let (s, mut events) = world.start(&format!("per-process-{i}")).await;
        next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await;
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        sessions.push(s);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_process = pss_mib(&sessions.iter().flat_map(|s| s.pids()).collect::<Vec<_>>());
    for s in &sessions {
        s.stop().await.unwrap();
    }

    let config = ChromiumConfig::for_binary(&binary);
    let spec = LaunchSpec {
        binary: binary.clone(),
        headless: config.headless.clone(),
        profile_dir: world.profile("shared"),
        proxy: None,
        extra_args: Vec::new(),
        timeout: Duration::from_secs(20),
    };
    let mut proc = launch(&spec).await.expect("launch");
    let (mut browser, mut handler) = Browser::connect(proc.ws_url.clone())
        .await
        .expect("connect");
    let pump = tokio::spawn(async move { while let Some(Ok(())) = handler.next().await {} });
    let url = format!("{}/", world.sim.base_url());
    for _ in 0..n {
        let ctx = browser
            .create_browser_context(CreateBrowserContextParams::default())
            .await
            .unwrap();
        let target = CreateTargetParams::builder()
            .url(url.clone())
            .browser_context_id(ctx)
            .build()
            .unwrap();
        browser.new_page(target).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let shared = pss_mib(&process_tree(proc.pid));
    let _ = browser.close().await;
    let _ = proc.child.wait().await;
    pump.abort();
    println!(
        "{} x{n} unpaired pages: one Chromium per session {:.0} MiB/session; one Chromium + contexts {:.0} MiB/session",
        binary.display(),
        per_process / n as f64,
        shared / n as f64,
    );
}

#[tokio::test]
#[ignore = "prints measurements; run with --ignored --nocapture"]
async fn measure_one_browser_per_session_against_shared_contexts() {
    let _serial = SERIAL.lock().await;
    let n: usize = std::env::var("MEASURE_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    measure_contexts(chromium(), n).await;
    let shell = PathBuf::from("/usr/lib/chromium/chromium-headless-shell");
    if shell.exists() {
        measure_contexts(shell, n).await;
    }
}
