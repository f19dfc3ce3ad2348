//! openwa-core: the domain of the openwa WhatsApp gateway — identifiers, entities, the event
//! envelope, the ports adapters implement, and the services the API, runner and functions call.
//! Nothing here does I/O; adapters (`openwa-infra`) translate driver and SDK errors into
//! [`Error`] at their edge.
//!
//! Layout:
//! - [`id`], [`jid`]: identifier newtypes with `parse` constructors
//! - [`session`], [`message`], [`content`], [`event`], [`apikey`], [`webhook`], [`audit`]: entities
//! - [`auth`]: the calling principal and the authorization rules
//! - [`ports`]: store, queue, blob, secrets and rate-limit traits
//! - [`services`]: use cases (sessions, messages, keys, audit)
//! - [`page`], [`clock`], [`error`]: pagination, time, the one error type

pub mod apikey;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod content;
pub mod error;
pub mod event;
pub mod id;
pub mod jid;
pub mod message;
pub mod page;
pub mod ports;
pub mod services;
pub mod session;
pub mod webhook;

pub use error::{Error, Result};
