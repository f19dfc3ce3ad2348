//! `openwa up`: the all-in-one gateway. Opens the backends (embedded in the data dir, or the AWS
//! adapters with `--backend aws`), makes sure
//! an admin key exists, and runs every part in this process until the shutdown signal: the HTTP
//! API, a runner (sessions in headless Chromium), fan-out and webhook delivery (and on AWS the
//! outbox relay, reading the table's stream). With
//! `--sandbox` it also starts the WhatsApp Web simulator, points the runner at it and exposes
//! the simulator's control API under `/v1/sandbox/…` for operator keys.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openwa_api::{ApiConfig, AppState};
use openwa_core::clock::SystemClock;
use openwa_core::ports::Backend;
use openwa_runner::engine::chromium::{ChromiumConfig, ChromiumEngine, choose_binary};
use openwa_runner::{IsolationMode, Runner, RunnerConfig};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin_key::{AdminKey, ensure_admin_key};
use crate::args::{BackendKind, UpConfig};
use crate::sandbox;

pub async fn run(
    config: UpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let data_dir = &config.data_dir.path;
    let (backend, aws) = open_backend(&config).await?;
    let allowlist = openwa_deliver::AllowList::parse(&config.webhook_allowlist)?;
    let api_config = ApiConfig {
        default_rate_limit_per_minute: config.rate_limit_per_minute,
        body_limit_bytes: config.body_limit_bytes,
        trust_forwarded_for: config.trust_forwarded_for,
        public_base_url: None,
        webhook_allowlist: allowlist.clone(),
        // `openwa up` authenticates every request itself; no gateway in front.
        trust_gateway_authorizer: false,
    };
    let state = AppState::new(backend.clone(), api_config);
    let admin = match &aws {
        Some(ctx) if config.admin_key.is_none() => {
            openwa_aws::admin_key::ensure_admin_key(&backend).await?;
            let secret = openwa_aws::resources::secret_name(
                &ctx.settings,
                openwa_aws::resources::secrets::ADMIN_KEY,
            );
            AdminKey::InSecretsManager { secret }
        }
        _ => {
            ensure_admin_key(
                &state.keys,
                &state.backend,
                data_dir,
                config.admin_key.as_deref(),
            )
            .await?
        }
    };

    // One signal for every part: flipped once, each part drains in its own way.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let simulator = if config.sandbox {
        let sim = openwa_simulator::Simulator::start(openwa_simulator::SimulatorConfig {
            listen: config.sandbox_listen,
            qr_interval: Duration::from_millis(config.sandbox_qr_interval_ms.max(200)),
            // The simulated network survives restarts, like the logins in the browser profiles.
            state_file: Some(data_dir.join("sandbox").join("network.json")),
            ..Default::default()
        })
        .await
        .context("starting the sandbox simulator")?;
        Some(sim)
    } else {
        None
    };
    let wa_url = simulator
        .as_ref()
        .map_or_else(|| config.wa_url.clone(), |s| format!("{}/", s.base_url()));

    let mut parts = JoinSet::new();
    let runner_note = start_runner(&config, &backend, &wa_url, &mut parts, stopped());
    parts.spawn({
        let backend = backend.clone();
        let stop = stopped();
        async move {
            openwa_fanout::run(backend, openwa_fanout::FanoutConfig::default(), stop).await;
            Ok(())
        }
    });
    // On AWS, events written through the table's outbox (an accepted send's `message.queued`)
    // reach the events queue through its stream; on Lambda the outbox function does this.
    if let Some(ctx) = &aws {
        let relay =
            openwa_aws::outbox::OutboxRelay::new(backend.sessions.clone(), backend.queue.clone());
        let stream = openwa_aws::outbox::StreamRelay::new(Arc::new(ctx.clone()), relay);
        let stop = stopped();
        parts.spawn(async move {
            stream.run(stop).await;
            Ok(())
        });
    }
    parts.spawn({
        let backend = backend.clone();
        let stop = stopped();
        let deliver = openwa_deliver::DeliverConfig {
            allowlist,
            ..Default::default()
        };
        // On AWS, webhooks may target SQS queues too.
        let sqs: Arc<dyn openwa_core::ports::SqsTargetSender> = match &aws {
            Some(ctx) => Arc::new(openwa_aws::sqs_target::SqsTargets::new(ctx)),
            None => Arc::new(openwa_core::ports::UnavailableSqs),
        };
        async move {
            let guard = openwa_deliver::SsrfGuard::system(deliver.allowlist.clone());
            let deliverer = openwa_deliver::deliverer_with(&backend, &deliver, guard, sqs)
                .context("building the webhook deliverer")?;
            openwa_deliver::run_with(backend, Arc::new(deliverer), deliver, stop)
                .await
                .context("webhook delivery")
        }
    });

    let mut app = openwa_api::app(state.clone());
    if let Some(sim) = &simulator {
        app = app.merge(sandbox::routes(state, sim.base_url()));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    print_banner(
        addr,
        &admin,
        &runner_note,
        simulator.as_ref().map(|s| s.base_url()),
    );

    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopped());
    let serving = tokio::spawn(async move { serve.await.context("serving HTTP") });

    tokio::select! {
        () = shutdown => {}
        Some(ended) = parts.join_next() => {
            // A part that ends before the signal is a fault; stop the rest.
            tracing::error!(result = ?ended.map(|r| r.map_err(|e| e.to_string())), "a gateway part stopped early");
        }
    }
    let _ = stop_tx.send(true);
    serving.await.context("HTTP server task")??;
    while let Some(ended) = parts.join_next().await {
        if let Ok(Err(error)) = ended {
            tracing::warn!(%error, "a part stopped with an error");
        }
    }
    if let Some(sim) = simulator {
        sim.shutdown().await;
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The backend `--backend` asks for (with the AWS clients when on AWS); for AWS, resources are
/// created first with `--bootstrap`.
async fn open_backend(
    config: &UpConfig,
) -> anyhow::Result<(Backend, Option<openwa_aws::AwsContext>)> {
    match config.backend {
        BackendKind::Embedded => {
            let dir = &config.data_dir.path;
            let backend = openwa_infra::embedded::open(dir, Arc::new(SystemClock))
                .with_context(|| format!("opening the data dir {}", dir.display()))?;
            Ok((backend, None))
        }
        BackendKind::Aws => {
            let (backend, ctx) = openwa_aws::open_from_env()
                .await
                .context("configuring the AWS backend")?;
            if config.bootstrap {
                let report = openwa_aws::bootstrap(&ctx)
                    .await
                    .context("creating the AWS resources")?;
                tracing::info!(created = ?report.created, "AWS resources ready");
            }
            // The data dir still holds the runner's browser profiles.
            std::fs::create_dir_all(&config.data_dir.path)
                .with_context(|| format!("creating {}", config.data_dir.path.display()))?;
            Ok((backend, Some(ctx)))
        }
    }
}

/// Starts the in-process runner when it can run; returns a line for the banner.
fn start_runner(
    config: &UpConfig,
    backend: &Backend,
    wa_url: &str,
    parts: &mut JoinSet<anyhow::Result<()>>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> String {
    if config.runner_capacity == 0 {
        return "runner    off (--runner-capacity 0): sessions are stored but not connected".into();
    }
    let chromium = choose_binary(config.chromium.as_deref());
    if let Some(reason) = &chromium.fallback_reason {
        tracing::warn!(%reason, "not using the default Chromium headless shell");
    }
    if !chromium.binary.exists() {
        tracing::warn!(chromium = %chromium.binary.display(), "Chromium not found; sessions will not connect");
        return format!(
            "runner    off: no Chromium at {} (install the `chromium-headless-shell` package or set OPENWA_CHROMIUM)",
            chromium.binary.display()
        );
    }
    let runner_config = RunnerConfig {
        capacity: config.runner_capacity,
        profiles_root: config.data_dir.path.join("profiles"),
        wa_url: wa_url.to_owned(),
        takeover_on_conflict: config.takeover_on_conflict,
        isolation: config.isolation,
        ..RunnerConfig::default()
    };
    let binary_name = chromium.binary.file_name().map_or_else(
        || chromium.binary.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut chromium_config = ChromiumConfig::for_binary(chromium.binary);
    if runner_config.isolation == IsolationMode::Context {
        chromium_config = chromium_config.in_context_mode(runner_config.shared_browser_dir());
    }
    let engine = Arc::new(ChromiumEngine::new(chromium_config));
    let runner = Runner::new(runner_config, backend.clone(), engine);
    parts.spawn(async move { runner.run(stop).await.context("runner") });
    format!(
        "runner    up to {} sessions in {binary_name} ({} isolation), WhatsApp Web at {wa_url}",
        config.runner_capacity, config.isolation
    )
}

fn print_banner(addr: SocketAddr, admin: &AdminKey, runner: &str, simulator: Option<String>) {
    let base = format!("http://{addr}");
    match admin {
        AdminKey::Created { secret, path } => {
            println!(
                "Created the admin API key. It is shown once here and saved to {}:",
                path.display()
            );
            println!("  {secret}");
        }
        AdminKey::FromEnvironment => println!("Admin API key: the one given in OPENWA_ADMIN_KEY."),
        AdminKey::Existing => {
            println!("Admin API key: created on first start (see admin.key in the data dir).")
        }
        AdminKey::InSecretsManager { secret } => println!(
            "Admin API key: in Secrets Manager, secret {secret} (`aws secretsmanager get-secret-value`)."
        ),
    }
    println!("  {runner}");
    if let Some(sim) = simulator {
        println!(
            "  sandbox   simulator at {sim} (phone page {sim}/phone); control API at {base}/v1/sandbox/…"
        );
    }
    // Tests and scripts wait for this line: keep it last and unchanged.
    println!("openwa is listening on {base}");
    println!("  API       {base}/v1");
    println!("  docs      {base}/docs");
    println!("  OpenAPI   {base}/openapi.json");
    println!("  health    {base}/health");
}
