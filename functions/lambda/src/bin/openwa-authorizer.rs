//! The `authorizer` Lambda's main: the API Gateway HTTP API Lambda authorizer (payload 2.0,
//! simple responses) for openwa API keys, on the AWS backend. See [`openwa_lambda::authorizer`]
//! for what it checks and how API Gateway must be configured.
//!
//! Environment:
//! - `OPENWA_TABLE` (and the other `openwa_aws::settings` names: `OPENWA_BUCKET`,
//!   `OPENWA_QUEUE_PREFIX`, `OPENWA_SECRET_PREFIX`, `OPENWA_MAX_RECEIVES`): only the table is
//!   used, for the key store and the audit log.
//! - `RUST_LOG` (default `info`): the log filter; logs are JSON lines.
//! - The AWS SDK's own (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`) and the Lambda runtime's.

use anyhow::Context;
use lambda_runtime::{LambdaEvent, service_fn};
use openwa_lambda::authorizer::{Authorizer, AuthorizerRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    openwa_lambda::init_tracing();
    let (backend, _aws) = openwa_aws::open_from_env()
        .await
        .context("configuring the AWS backend")?;
    let authorizer = Authorizer::new(&backend);
    lambda_runtime::run(service_fn(|event: LambdaEvent<AuthorizerRequest>| {
        let authorizer = authorizer.clone();
        async move {
            // Only a store failure: API Gateway answers 500 and does not cache it.
            authorizer
                .authorize(&event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
