//! A standalone webhook worker on the embedded backend: fan-out and delivery loops against one
//! data directory. `openwa up` runs the same two loops in-process; this binary exists for
//! single-purpose deployments and for the crash-safety test, which SIGKILLs it mid-burst.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use openwa_core::clock::SystemClock;
use openwa_core::webhook::RetrySchedule;
use openwa_deliver::{AllowList, DeliverConfig};
use openwa_fanout::FanoutConfig;

/// Runs webhook fan-out and delivery against an embedded data directory.
#[derive(Debug, Parser)]
struct Config {
    /// The embedded data directory (as used by `openwa up`).
    #[arg(long, env = "OPENWA_DATA_DIR")]
    data_dir: PathBuf,
    /// CIDRs, IPs and host names the SSRF guard lets through (local development only).
    #[arg(long, env = "OPENWA_WEBHOOK_ALLOWLIST", default_value = "")]
    allowlist: String,
    /// Per-attempt HTTP timeout, in milliseconds.
    #[arg(long, env = "OPENWA_WEBHOOK_TIMEOUT_MS", default_value_t = 15_000)]
    timeout_ms: u64,
    /// How long a received job stays hidden, in milliseconds (must exceed the timeout).
    #[arg(long, env = "OPENWA_WEBHOOK_VISIBILITY_MS", default_value_t = 60_000)]
    visibility_ms: u64,
    /// Multiplies every retry delay (1 = the real schedule; tests use less).
    #[arg(long, env = "OPENWA_WEBHOOK_SCHEDULE_FACTOR", default_value_t = 1.0)]
    schedule_factor: f64,
    /// Deliveries in flight at once.
    #[arg(long, env = "OPENWA_WEBHOOK_CONCURRENCY", default_value_t = 256)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let config = Config::parse();
    let shutdown = openwa_infra::shutdown::signal();
    let backend = openwa_infra::embedded::open(&config.data_dir, Arc::new(SystemClock))
        .context("opening the data directory")?;

    let mut deliver = DeliverConfig {
        allowlist: AllowList::parse(&config.allowlist).context("parsing the allowlist")?,
        request_timeout: Duration::from_millis(config.timeout_ms),
        schedule: RetrySchedule::scaled(config.schedule_factor),
        concurrency: config.concurrency,
        ..DeliverConfig::default()
    };
    deliver.poll.visibility = Duration::from_millis(config.visibility_ms);
    let mut fanout = FanoutConfig::default();
    fanout.poll.visibility = Duration::from_millis(config.visibility_ms);

    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let fanout_task = tokio::spawn(openwa_fanout::run(
        backend.clone(),
        fanout,
        stopped(rx.clone()),
    ));
    let deliver_task = tokio::spawn(openwa_deliver::run(backend, deliver, stopped(rx)));
    shutdown.await;
    tracing::info!("shutting down");
    let _ = tx.send(true);
    fanout_task.await.context("fan-out task")?;
    deliver_task
        .await
        .context("deliver task")?
        .context("deliver worker")?;
    Ok(())
}
