//! The `fanout` Lambda's main: the events queue (SQS event source mapping with
//! `ReportBatchItemFailures`) on the AWS backend. See [`openwa_lambda::fanout`].
//!
//! Environment:
//! - `OPENWA_TABLE`, `OPENWA_BUCKET`, `OPENWA_QUEUE_PREFIX`, `OPENWA_SECRET_PREFIX`,
//!   `OPENWA_MAX_RECEIVES`: where the AWS backend keeps its data (`openwa_aws::settings`).
//! - `RUST_LOG` (default `info`): the log filter; logs are JSON lines.
//! - The AWS SDK's own (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` for LocalStack/moto) and
//!   the Lambda runtime's, which Lambda sets.

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use openwa_fanout::Fanout;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    openwa_lambda::init_tracing();
    let (backend, _aws) = openwa_aws::open_from_env()
        .await
        .context("configuring the AWS backend")?;
    let fanout = &Fanout::from_backend(&backend);
    let blobs = backend.blobs.as_ref();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(
            openwa_lambda::fanout::handle(fanout, blobs, event.payload).await,
        )
    }))
    .await
}
