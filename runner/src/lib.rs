//! openwa-runner: the session host. It claims sessions with leases, runs each in an
//! [`engine::Engine`], executes send jobs from the session's queue and turns what happens in
//! WhatsApp into events.
//!
//! Layout:
//! - [`engine`]: the engine port (sessions, sends, events) every engine implements
//! - [`Runner`] (`host`): claiming sessions within capacity, supervision tasks, drain on shutdown
//! - `session`: one hosted session — lease renewal and fencing, engine events -> state and
//!   events, restarts with backoff, logout
//! - `send`: the send-job consumer (one job in `handle_send`, the queue in `send_loop`)
//! - `control`: session commands from the API (pairing code, logout) on the control queue
//! - [`pacing`]: per-session token bucket, per-recipient gap, daily cap
//! - [`snapshot`]: encrypted auth-state snapshots in the blob store
//! - [`publish`]: events onto the events queue with the session's metadata
//! - [`metrics`], `http`: `/health`, `/ready`, `/metrics`
//! - [`config`], [`error`]: [`RunnerConfig`] and [`RunnerError`]

pub mod cloud;
pub mod config;
mod control;
pub mod engine;
pub mod error;
mod host;
mod http;
pub mod metrics;
pub mod pacing;
pub mod publish;
mod send;
mod session;
pub mod snapshot;

pub use config::{IsolationMode, RunnerConfig};
pub use error::{Result, RunnerError};
pub use host::Runner;
