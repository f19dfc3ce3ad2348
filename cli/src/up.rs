//! `openwa up`: the all-in-one gateway. Opens the embedded backends in the data dir, makes sure
//! an admin key exists, and serves the HTTP API until the shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use openwa_api::{ApiConfig, AppState};
use openwa_core::clock::SystemClock;

use crate::admin_key::{AdminKey, ensure_admin_key};
use crate::args::UpConfig;

pub async fn run(config: UpConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let data_dir = &config.data_dir.path;
    let backend = openwa_infra::embedded::open(data_dir, Arc::new(SystemClock))
        .with_context(|| format!("opening the data dir {}", data_dir.display()))?;
    let api_config = ApiConfig {
        default_rate_limit_per_minute: config.rate_limit_per_minute,
        body_limit_bytes: config.body_limit_bytes,
        trust_forwarded_for: config.trust_forwarded_for,
        public_base_url: None,
    };
    let state = AppState::new(backend, api_config);

    let admin = ensure_admin_key(&state.keys, &state.backend, data_dir, config.admin_key.as_deref()).await?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    print_banner(addr, &admin);

    let app = openwa_api::app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("serving HTTP")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

fn print_banner(addr: SocketAddr, admin: &AdminKey) {
    let base = format!("http://{addr}");
    match admin {
        AdminKey::Created { secret, path } => {
            println!("Created the admin API key. It is shown once here and saved to {}:", path.display());
            println!("  {secret}");
        }
        AdminKey::FromEnvironment => println!("Admin API key: the one given in OPENWA_ADMIN_KEY."),
        AdminKey::Existing => println!("Admin API key: created on first start (see admin.key in the data dir)."),
    }
    println!("openwa is listening on {base}");
    println!("  API       {base}/v1");
    println!("  docs      {base}/docs");
    println!("  OpenAPI   {base}/openapi.json");
    println!("  health    {base}/health");
}
