//! openwa-aws: the core ports on AWS — DynamoDB (every store and the rate limiter, one table),
//! SQS (the job queue), S3 (blobs) and Secrets Manager (secrets) — plus [`bootstrap`], which
//! creates the resources. SDK errors become [`openwa_core::Error`] inside each adapter.
//!
//! Endpoints come only from the SDK's configuration (`AWS_ENDPOINT_URL`), so the same code
//! runs on AWS, LocalStack and moto server.
//!
//! Layout:
//! - [`settings`]: resource names from `OPENWA_*` variables
//! - [`resources`]: the table schema, queue and bucket definitions (Terraform mirrors them)
//! - [`context`]: the shared SDK clients; [`error`]: SDK error translation
//! - [`bootstrap`](mod@bootstrap): idempotent creation of every resource; [`admin_key`]: the
//!   first admin key, in Secrets Manager
//! - [`dynamo`]: the stores and the rate limiter; [`sqs`]: the job queue; [`s3`]: blobs;
//!   [`secrets`]: secrets with a cache
//! - [`outbox`]: the relay from the table's outbox (its stream) to the events queue
//! - `testing` (feature `testing`): fresh stacks on the test endpoint

pub mod admin_key;
pub mod bootstrap;
pub mod context;
pub mod dynamo;
pub mod error;
pub mod iam;
pub mod outbox;
pub mod resources;
pub mod s3;
pub mod secrets;
pub mod settings;
pub mod sqs;
pub mod sqs_target;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use openwa_core::ports::Backend;

pub use bootstrap::{BootstrapReport, bootstrap};
pub use context::AwsContext;
pub use settings::AwsSettings;

/// Every port on AWS, sharing `ctx`'s clients.
pub fn open(ctx: &AwsContext) -> Backend {
    let ctx = Arc::new(ctx.clone());
    Backend {
        sessions: Arc::new(dynamo::DynamoSessionStore::new(ctx.clone())),
        messages: Arc::new(dynamo::DynamoMessageStore::new(ctx.clone())),
        keys: Arc::new(dynamo::DynamoApiKeyStore::new(ctx.clone())),
        audit: Arc::new(dynamo::DynamoAuditStore::new(ctx.clone())),
        webhooks: Arc::new(dynamo::DynamoWebhookStore::new(ctx.clone())),
        deliveries: Arc::new(dynamo::DynamoDeliveryStore::new(ctx.clone())),
        events: Arc::new(dynamo::DynamoEventStore::new(ctx.clone())),
        rate_limiter: Arc::new(dynamo::DynamoRateLimiter::new(ctx.clone())),
        queue: Arc::new(sqs::SqsJobQueue::new(ctx.clone())),
        blobs: Arc::new(s3::S3BlobStore::new(ctx.clone())),
        secrets: Arc::new(secrets::SecretsManagerSecrets::new(ctx.clone())),
        clock: ctx.clock.clone(),
    }
}

/// [`open`] with settings and clients from the environment, on the system clock.
pub async fn open_from_env() -> openwa_core::error::Result<(Backend, AwsContext)> {
    let settings = AwsSettings::from_env()?;
    let ctx = AwsContext::from_env(settings, Arc::new(openwa_core::clock::SystemClock)).await;
    Ok((open(&ctx), ctx))
}
