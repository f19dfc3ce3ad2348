//! The `deliver` Lambda's main: the deliveries queue (SQS event source mapping with
//! `ReportBatchItemFailures`) on the AWS backend; webhook targets are HTTP endpoints or SQS
//! queues. See [`openwa_lambda::deliver`].
//!
//! Environment:
//! - `OPENWA_TABLE`, `OPENWA_BUCKET`, `OPENWA_QUEUE_PREFIX`, `OPENWA_SECRET_PREFIX`,
//!   `OPENWA_MAX_RECEIVES`: where the AWS backend keeps its data (`openwa_aws::settings`).
//! - `OPENWA_WEBHOOK_ALLOWLIST` (default empty): CIDRs, IPs and host names the SSRF guard lets
//!   through although they are private (local development only).
//! - `OPENWA_WEBHOOK_TIMEOUT_MS` (default 15000): per-attempt HTTP timeout; the function's
//!   timeout must exceed it.
//! - `OPENWA_WEBHOOK_PER_HOST` (default 16): attempts in flight to one host per instance.
//! - `RUST_LOG` (default `info`): the log filter; logs are JSON lines.
//! - The AWS SDK's own (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` for LocalStack/moto) and
//!   the Lambda runtime's, which Lambda sets.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use clap::Parser;
use lambda_runtime::{LambdaEvent, service_fn};
use openwa_aws::sqs_target::SqsTargets;
use openwa_deliver::{AllowList, DeliverConfig, SsrfGuard};

/// The deliver function's settings.
#[derive(Debug, Parser)]
struct Config {
    /// CIDRs, IPs and host names the SSRF guard lets through (local development only).
    #[arg(long, env = "OPENWA_WEBHOOK_ALLOWLIST", default_value = "")]
    allowlist: String,
    /// Per-attempt HTTP timeout, in milliseconds.
    #[arg(long, env = "OPENWA_WEBHOOK_TIMEOUT_MS", default_value_t = 15_000)]
    timeout_ms: u64,
    /// Attempts in flight to one host at once (per function instance).
    #[arg(long, env = "OPENWA_WEBHOOK_PER_HOST", default_value_t = 16)]
    per_host: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    openwa_lambda::init_tracing();
    let config = Config::parse();
    let (backend, aws) = openwa_aws::open_from_env()
        .await
        .context("configuring the AWS backend")?;
    let deliver = DeliverConfig {
        allowlist: AllowList::parse(&config.allowlist).context("parsing the allowlist")?,
        request_timeout: Duration::from_millis(config.timeout_ms),
        per_host: config.per_host,
        ..DeliverConfig::default()
    };
    let guard = SsrfGuard::system(deliver.allowlist.clone());
    let targets = Arc::new(SqsTargets::new(&aws));
    let deliverer = &openwa_deliver::deliverer_with(&backend, &deliver, guard, targets)
        .context("building the deliverer")?;
    let blobs = backend.blobs.as_ref();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(
            openwa_lambda::deliver::handle(deliverer, blobs, event.payload).await,
        )
    }))
    .await
}
