//! The `outbox` Lambda's main: the table's stream (DynamoDB event source mapping filtered to
//! `OUTBOX#` inserts, with `ReportBatchItemFailures`) on the AWS backend. See
//! [`openwa_lambda::outbox`].
//!
//! Environment:
//! - `OPENWA_TABLE`, `OPENWA_BUCKET`, `OPENWA_QUEUE_PREFIX`, `OPENWA_SECRET_PREFIX`,
//!   `OPENWA_MAX_RECEIVES`: where the AWS backend keeps its data (`openwa_aws::settings`).
//! - `RUST_LOG` (default `info`): the log filter; logs are JSON lines.
//! - The AWS SDK's own (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` for LocalStack/moto) and
//!   the Lambda runtime's, which Lambda sets.

use anyhow::Context;
use lambda_runtime::{LambdaEvent, service_fn};
use openwa_aws::outbox::OutboxRelay;
use openwa_lambda::outbox::{StreamBatchResponse, StreamEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    openwa_lambda::init_tracing();
    let (backend, _aws) = openwa_aws::open_from_env()
        .await
        .context("configuring the AWS backend")?;
    let relay = &OutboxRelay::new(backend.sessions.clone(), backend.queue.clone());
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<StreamEvent>| async move {
            Ok::<StreamBatchResponse, lambda_runtime::Error>(
                openwa_lambda::outbox::handle(relay, event.payload).await,
            )
        },
    ))
    .await
}
