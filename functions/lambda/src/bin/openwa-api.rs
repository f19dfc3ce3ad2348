//! The `api` Lambda's main: the openwa HTTP API behind an API Gateway HTTP API (payload 2.0),
//! on the AWS backend. See [`openwa_lambda::api`].
//!
//! Environment:
//! - `OPENWA_TABLE`, `OPENWA_BUCKET`, `OPENWA_QUEUE_PREFIX`, `OPENWA_SECRET_PREFIX`,
//!   `OPENWA_MAX_RECEIVES`: where the AWS backend keeps its data (`openwa_aws::settings`).
//! - `OPENWA_TRUST_GATEWAY_AUTHORIZER` (default `true`): take the caller from the openwa Lambda
//!   authorizer's context; set `false` to check keys in this function instead.
//! - `OPENWA_RATE_LIMIT_PER_MINUTE` (default 600): per-key requests per minute for keys without
//!   their own limit.
//! - `OPENWA_BODY_LIMIT_BYTES` (default 4 MiB): largest accepted request body.
//! - `OPENWA_PUBLIC_BASE_URL`: where clients reach the API (OpenAPI document links).
//! - `OPENWA_WEBHOOK_ALLOWLIST`: private networks / host names webhook targets may reach anyway.
//! - `RUST_LOG` (default `info`): the log filter; logs are JSON lines.
//! - The AWS SDK's own (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` for LocalStack/moto) and
//!   the Lambda runtime's (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`, …), which
//!   Lambda sets.
//!
//! On a cold start it also makes sure the deployment's admin key exists (generated into the
//! `<secret prefix>/admin-key` secret the first time, `openwa_aws::admin_key`), in the
//! background so the first request is not held up: the secret appears within the first
//! request or two after `terraform apply`.

use anyhow::Context;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    openwa_lambda::init_tracing();
    let config = openwa_lambda::api::config_from_lookup(|name| std::env::var(name).ok())
        .context("reading the API configuration")?;
    let (backend, _aws) = openwa_aws::open_from_env()
        .await
        .context("configuring the AWS backend")?;
    tokio::spawn({
        let backend = backend.clone();
        async move {
            match openwa_aws::admin_key::ensure_admin_key(&backend).await {
                Ok(state) => tracing::info!(?state, "admin key ensured"),
                Err(error) => tracing::error!(%error, "could not ensure the admin key"),
            }
        }
    });
    lambda_http::run(openwa_lambda::api::service(backend, config)).await
}
