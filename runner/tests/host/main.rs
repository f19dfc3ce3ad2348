//! Runner host tests against the embedded backend and the fake engine. One binary, modules
//! by topic. Set `TEST_LOG=1` to see the runner's logs.

mod commands;
mod events;
mod leases;
mod observability;
mod sending;
mod snapshots;
mod support;
