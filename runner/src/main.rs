//! The `openwa-runner` binary: hosts sessions in headless Chromium. Thin: tracing, typed
//! config from flags / `OPENWA_*`, the backend (`OPENWA_BACKEND`: embedded from
//! `OPENWA_DATA_DIR`, or the AWS adapters configured by `OPENWA_TABLE`, `OPENWA_BUCKET`,
//! `OPENWA_QUEUE_PREFIX`, `OPENWA_SECRET_PREFIX`, `OPENWA_MAX_RECEIVES` and the AWS SDK's own
//! variables), the Chromium engine, the ECS reporting of [`openwa_runner::cloud`], and `run`
//! until SIGTERM or ctrl-c (then it drains).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use openwa_core::clock::SystemClock;
use openwa_runner::engine::chromium::{ChromiumConfig, ChromiumEngine, choose_binary};
use openwa_runner::{IsolationMode, Runner, RunnerConfig};

/// Hosts WhatsApp Web sessions: claims them with leases, runs send jobs, publishes events.
#[derive(Debug, Parser)]
#[command(name = "openwa-runner", version)]
struct Args {
    /// Which adapters hold the state: `embedded` (SQLite + files in the data dir) or `aws`.
    #[arg(long, env = "OPENWA_BACKEND", default_value = "embedded")]
    backend: BackendKind,
    /// Data directory of the embedded backend (SQLite + files); with `aws`, the browser
    /// profiles' parent.
    #[arg(long, env = "OPENWA_DATA_DIR", default_value = "./openwa-data")]
    data_dir: PathBuf,
    /// Lease owner id; defaults to hostname + a random suffix.
    #[arg(long, env = "OPENWA_RUNNER_ID")]
    runner_id: Option<String>,
    /// Most sessions hosted at once.
    #[arg(long, env = "OPENWA_RUNNER_CAPACITY", default_value_t = 20)]
    capacity: usize,
    /// Lease duration in seconds (renewed every third).
    #[arg(long, env = "OPENWA_LEASE_SECS", default_value_t = 30)]
    lease_secs: u64,
    /// Seconds between looks for claimable sessions.
    #[arg(long, env = "OPENWA_CLAIM_INTERVAL_SECS", default_value_t = 2)]
    claim_interval_secs: u64,
    /// Browser profiles root (one directory per session; in context mode also the shared
    /// browser's).
    #[arg(long, env = "OPENWA_PROFILES_DIR")]
    profiles_dir: Option<PathBuf>,
    /// How sessions are isolated: `process` (one Chromium per session) or `context` (one
    /// shared Chromium, a browser context per session).
    #[arg(long, env = "OPENWA_RUNNER_ISOLATION", default_value = "process")]
    isolation: IsolationMode,
    /// WhatsApp Web URL (the simulator's URL in sandbox and tests).
    #[arg(
        long,
        env = "OPENWA_WA_URL",
        default_value = "https://web.whatsapp.com/"
    )]
    wa_url: String,
    /// Take a session back when it is opened elsewhere (CONFLICT).
    #[arg(long, env = "OPENWA_TAKEOVER_ON_CONFLICT")]
    takeover_on_conflict: bool,
    /// Seconds between auth snapshots of a connected session.
    #[arg(long, env = "OPENWA_SNAPSHOT_INTERVAL_SECS", default_value_t = 300)]
    snapshot_interval_secs: u64,
    /// Seconds a drain waits for in-flight sends.
    #[arg(long, env = "OPENWA_DRAIN_GRACE_SECS", default_value_t = 20)]
    drain_grace_secs: u64,
    /// Restart backoff bounds in milliseconds.
    #[arg(long, env = "OPENWA_RESTART_BACKOFF_MIN_MS", default_value_t = 1000)]
    restart_backoff_min_ms: u64,
    #[arg(long, env = "OPENWA_RESTART_BACKOFF_MAX_MS", default_value_t = 60_000)]
    restart_backoff_max_ms: u64,
    /// Visibility timeout of received send jobs, in seconds.
    #[arg(long, env = "OPENWA_JOB_VISIBILITY_SECS", default_value_t = 60)]
    job_visibility_secs: u64,
    /// Address for /health, /ready and /metrics.
    #[arg(long, env = "OPENWA_RUNNER_LISTEN")]
    listen: Option<SocketAddr>,
    /// The Chromium binary [default: /usr/lib/chromium/chromium-headless-shell when installed,
    /// else the full /usr/lib/chromium/chromium].
    #[arg(long, env = "OPENWA_CHROMIUM")]
    chromium: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendKind {
    Embedded,
    Aws,
}

impl Args {
    fn config(&self) -> RunnerConfig {
        let defaults = RunnerConfig::default();
        RunnerConfig {
            runner_id: self.runner_id.clone().unwrap_or(defaults.runner_id),
            capacity: self.capacity,
            lease_duration: Duration::from_secs(self.lease_secs.max(3)),
            claim_interval: Duration::from_secs(self.claim_interval_secs.max(1)),
            profiles_root: self
                .profiles_dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("profiles")),
            wa_url: self.wa_url.clone(),
            isolation: self.isolation,
            takeover_on_conflict: self.takeover_on_conflict,
            snapshot_interval: Duration::from_secs(self.snapshot_interval_secs.max(10)),
            drain_grace: Duration::from_secs(self.drain_grace_secs),
            restart_backoff_min: Duration::from_millis(self.restart_backoff_min_ms),
            restart_backoff_max: Duration::from_millis(
                self.restart_backoff_max_ms.max(self.restart_backoff_min_ms),
            ),
            job_visibility: Duration::from_secs(self.job_visibility_secs.max(5)),
            listen: self.listen,
            ..defaults
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,chromiumoxide=error".into()),
        )
        .init();
    let args = Args::parse();
    let shutdown = openwa_infra::shutdown::signal();
    let chromium = choose_binary(args.chromium.as_deref());
    if let Some(reason) = &chromium.fallback_reason {
        tracing::warn!(%reason, "not using the default Chromium headless shell");
    }
    if !chromium.binary.exists() {
        bail!(
            "Chromium not found at {}; install the `chromium-headless-shell` (or `chromium`) package or set OPENWA_CHROMIUM to the browser binary",
            chromium.binary.display()
        );
    }
    tracing::info!(chromium = %chromium.binary.display(), "engine binary");
    let config = args.config();
    let backend = match args.backend {
        BackendKind::Embedded => {
            openwa_infra::embedded::open(&args.data_dir, Arc::new(SystemClock)).with_context(
                || {
                    format!(
                        "opening the embedded backend in {}",
                        args.data_dir.display()
                    )
                },
            )?
        }
        BackendKind::Aws => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("creating {}", args.data_dir.display()))?;
            openwa_aws::open_from_env()
                .await
                .context("configuring the AWS backend")?
                .0
        }
    };
    let mut chromium_config = ChromiumConfig::for_binary(chromium.binary);
    if config.isolation == IsolationMode::Context {
        chromium_config = chromium_config.in_context_mode(config.shared_browser_dir());
    }
    tracing::info!(isolation = %config.isolation, "session isolation");
    let engine = Arc::new(ChromiumEngine::new(chromium_config));
    let reporting = openwa_runner::cloud::CloudReporting::from_env(config.capacity);
    let runner = Runner::new(config, backend, engine);
    // One shutdown signal for both: the reporter stops when the runner's drain has begun.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if reporting.enabled() {
        let metrics = runner.metrics();
        let mut rx = stop_rx.clone();
        tokio::spawn(openwa_runner::cloud::report(
            reporting,
            metrics,
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ));
    }
    let result = runner.run(shutdown).await.context("runner failed");
    let _ = stop_tx.send(true);
    drop(stop_rx);
    result
}
