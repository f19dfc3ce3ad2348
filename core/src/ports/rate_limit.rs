//! Per-key request budgets.

use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::Result;

/// The verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// When refused: how long until a request would be allowed.
    pub retry_after: Duration,
}

#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request for `key` against `per_minute` and says whether it is allowed.
    async fn check(&self, key: &str, per_minute: u32, now: Timestamp) -> Result<RateDecision>;
}
