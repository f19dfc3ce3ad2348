//! Ports: the traits adapters implement (embedded: SQLite + files; AWS: DynamoDB, SQS, S3,
//! Secrets Manager). All are `Send + Sync` and used as `Arc<dyn …>`.
//!
//! Layout:
//! - [`store`]: one store trait per aggregate
//! - [`queue`]: the job queue (send jobs, events, deliveries)
//! - [`blob`]: media and snapshot bytes
//! - [`secrets`]: named secrets
//! - [`rate_limit`]: per-key request budgets
//! - [`target`]: sending webhook events to SQS target queues

pub mod blob;
pub mod queue;
pub mod rate_limit;
pub mod secrets;
pub mod store;
pub mod target;

pub use blob::{BlobMeta, BlobStore};
pub use queue::{DeadJob, JobQueue, NewJob, QueueName, ReceivedJob};
pub use rate_limit::{RateDecision, RateLimiter};
pub use secrets::Secrets;
pub use store::{
    Acceptance, ApiKeyStore, AuditStore, DeliveryStore, EventStore, Inserted, MessageFilter,
    MessageStore, SessionFilter, SessionStore, WebhookStore,
};
pub use target::{SqsTargetMessage, SqsTargetSender, UnavailableSqs};

use std::sync::Arc;

/// Every port, bundled: what a backend family (embedded, AWS) provides and what the API,
/// runner and functions are built from.
#[derive(Clone)]
pub struct Backend {
    pub sessions: Arc<dyn SessionStore>,
    pub messages: Arc<dyn MessageStore>,
    pub keys: Arc<dyn ApiKeyStore>,
    pub audit: Arc<dyn AuditStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub events: Arc<dyn EventStore>,
    pub queue: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    pub secrets: Arc<dyn Secrets>,
    pub rate_limiter: Arc<dyn RateLimiter>,
    pub clock: Arc<dyn crate::clock::Clock>,
}
