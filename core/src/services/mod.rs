//! Services: the use cases the API (and later the runner and functions) call. Each takes the
//! calling [`Principal`](crate::auth::Principal), checks what it may do, validates, and talks to
//! the ports. Handlers stay thin: parse, call a service, map the result.
//!
//! Layout:
//! - [`sessions`]: create/list/get/update/delete, start/stop (desired state)
//! - [`messages`]: accept a send (validate, persist `queued`, enqueue), media, reads
//! - [`keys`]: API key lifecycle and authentication
//! - [`audit`]: the audit log writer and reader
//! - [`events`]: publishing events onto the events queue
//! - [`webhooks`]: webhook subscriptions, deliveries and redelivery

pub mod audit;
pub mod events;
pub mod keys;
pub mod messages;
pub mod sessions;
pub mod webhooks;

pub use audit::AuditLog;
pub use events::EventPublisher;
pub use keys::{ApiKeyService, NewApiKey};
pub use messages::{MessageService, SendOutcome};
pub use sessions::{NewSession, SessionPatch, SessionService};
pub use webhooks::{NewWebhook, WebhookPatch, WebhookService};
