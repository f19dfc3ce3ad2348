//! `openwa-simulator`: run the WhatsApp Web simulator as a standalone server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use openwa_simulator::{Simulator, SimulatorConfig};

/// WhatsApp Web simulator and simulated phone network.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "OPENWA_SIM_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// QR ref rotation interval in milliseconds.
    #[arg(long, env = "OPENWA_SIM_QR_INTERVAL_MS", default_value_t = 20_000)]
    qr_interval_ms: u64,
    /// Refs issued before the page goes UNPAIRED_IDLE.
    #[arg(long, env = "OPENWA_SIM_QR_REFS", default_value_t = 6)]
    qr_refs: u32,
    /// Version reported as window.Debug.VERSION.
    #[arg(long, env = "OPENWA_SIM_VERSION", default_value = "2.3000.1017054665")]
    wa_version: String,
    /// Create an account at start: `PHONE` or `PHONE:Push name` (repeatable).
    #[arg(long = "account", value_name = "PHONE[:NAME]")]
    accounts: Vec<String>,
    /// Keep the network in this file across restarts (created 0600; default: in memory).
    #[arg(long, env = "OPENWA_SIM_STATE_FILE", value_name = "PATH")]
    state_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = SimulatorConfig {
        listen: args.listen,
        qr_interval: Duration::from_millis(args.qr_interval_ms),
        qr_refs_before_idle: args.qr_refs,
        version: args.wa_version,
        accounts: args
            .accounts
            .iter()
            .map(|a| match a.split_once(':') {
                Some((phone, name)) => (phone.to_owned(), name.to_owned()),
                None => (a.clone(), format!("User {a}")),
            })
            .collect(),
        state_file: args.state_file,
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(config)
        .await
        .context("starting the simulator")?;
    println!("openwa-simulator listening on {}", sim.base_url());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate() => {}
    }
    sim.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn terminate() {
    if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        s.recv().await;
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}
