//! In-process API tests: each test gets its own router on a fresh embedded backend
//! (`helpers::spawn_app`) and talks to it through `tower::ServiceExt::oneshot`.

mod auth;
mod bad_input;
mod docs;
mod gateway;
mod helpers;
mod idempotency;
mod keys;
mod login;
mod media;
mod messages;
mod rate_limit;
mod sessions;
mod webhooks;
