//! Services: the use cases the API (and later the runner and functions) call. Each takes the
//! calling [`Principal`](crate::auth::Principal), checks what it may do, validates, and talks to
//! the ports. Handlers stay thin: parse, call a service, map the result.
//!
//! Layout:
//! - [`sessions`]: create/list/get/update/delete, start/stop (desired state)
//! - [`messages`]: accept a send (validate, persist `queued`, enqueue), media, reads
//! - [`keys`]: API key lifecycle and authentication
//! - [`audit`]: the audit log writer and reader

pub mod audit;
pub mod keys;
pub mod messages;
pub mod sessions;

pub use audit::AuditLog;
pub use keys::{ApiKeyService, NewApiKey};
pub use messages::{MessageService, SendOutcome};
pub use sessions::{NewSession, SessionPatch, SessionService};
