//! openwa-lambda: the serverless half — one handler module per Lambda function, each binary in
//! `src/bin/` a thin main around it. Handlers are plain async functions over recorded event
//! types, so tests call them with fixtures from `tests/data` without a Lambda runtime.

pub mod api;
pub mod authorizer;
pub mod deliver;
pub mod fanout;
pub mod ingress;
pub mod outbox;
pub mod sqs_event;

/// JSON lines to stdout (CloudWatch stamps the time), filtered by `RUST_LOG`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .without_time()
        .with_target(false)
        .init();
}
