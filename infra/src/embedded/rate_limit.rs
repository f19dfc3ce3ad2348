//! [`RateLimiter`] in process memory: one token bucket per key, `per_minute` tokens deep,
//! refilled continuously at `per_minute / 60` tokens a second.
//!
//! Memory stays bounded: when the map grows past its limit, buckets that have refilled
//! completely (their state equals a fresh bucket's) are dropped; if that is not enough, the
//! least recently used ones go too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::ports::{RateDecision, RateLimiter};

/// Buckets kept before idle ones are evicted.
const DEFAULT_MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Timestamp,
    capacity: f64,
}

impl Bucket {
    fn refill(&mut self, now: Timestamp, capacity: f64) {
        // A clock that steps back adds nothing rather than taking tokens away.
        let elapsed = (now - self.at)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * capacity / 60.0).min(capacity);
        self.capacity = capacity;
        if now > self.at {
            self.at = now;
        }
    }

    fn is_full(&self, now: Timestamp) -> bool {
        let mut b = *self;
        b.refill(now, self.capacity);
        b.tokens >= b.capacity
    }
}

pub struct MemoryRateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
    max_keys: usize,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_KEYS)
    }
}

impl MemoryRateLimiter {
    pub fn new(max_keys: usize) -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
            max_keys: max_keys.max(1),
        }
    }

    /// How many keys have state; for tests and metrics.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides one request synchronously.
    pub fn check_now(&self, key: &str, per_minute: u32, now: Timestamp) -> Result<RateDecision> {
        if per_minute == 0 {
            return Err(Error::invalid("per_minute", "must be at least 1"));
        }
        let capacity = f64::from(per_minute);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            evict(&mut buckets, now, self.max_keys);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
            capacity,
        });
        bucket.refill(now, capacity);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(RateDecision {
                allowed: true,
                limit: per_minute,
                remaining: bucket.tokens as u32,
                retry_after: Duration::ZERO,
            });
        }
        let missing = 1.0 - bucket.tokens;
        let wait = Duration::from_secs_f64(missing * 60.0 / capacity);
        // Round up to the millisecond so a client that waits exactly this long gets through.
        let retry_after = Duration::from_millis(wait.as_millis() as u64 + 1);
        Ok(RateDecision {
            allowed: false,
            limit: per_minute,
            remaining: 0,
            retry_after,
        })
    }
}

/// Drops full buckets; if still at the limit, the least recently used tenth.
fn evict(buckets: &mut HashMap<String, Bucket>, now: Timestamp, max_keys: usize) {
    buckets.retain(|_, b| !b.is_full(now));
    if buckets.len() >= max_keys {
        let mut by_age: Vec<(Timestamp, String)> =
            buckets.iter().map(|(k, b)| (b.at, k.clone())).collect();
        by_age.sort_unstable();
        let excess = buckets.len() + 1 - max_keys + max_keys / 10;
        for (_, key) in by_age.into_iter().take(excess) {
            buckets.remove(&key);
        }
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, per_minute: u32, now: Timestamp) -> Result<RateDecision> {
        self.check_now(key, per_minute, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn a_full_bucket_allows_its_capacity_then_refuses() {
        let limiter = MemoryRateLimiter::default();
        let now = Utc::now();
        for i in 0..3 {
            let d = limiter.check_now("k", 3, now).unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, 2 - i);
        }
        let refused = limiter.check_now("k", 3, now).unwrap();
        assert!(!refused.allowed);
        // One token every 20 s at 3 per minute.
        assert!(
            refused.retry_after > Duration::from_millis(19_900)
                && refused.retry_after <= Duration::from_millis(20_001)
        );
    }

    #[test]
    fn waiting_the_advised_time_is_enough() {
        let limiter = MemoryRateLimiter::default();
        let now = Utc::now();
        limiter.check_now("k", 60, now).unwrap();
        for _ in 0..59 {
            limiter.check_now("k", 60, now).unwrap();
        }
        let refused = limiter.check_now("k", 60, now).unwrap();
        assert!(!refused.allowed);
        let later = now + chrono::Duration::from_std(refused.retry_after).unwrap();
        assert!(limiter.check_now("k", 60, later).unwrap().allowed);
    }

    #[test]
    fn keys_do_not_share_budgets() {
        let limiter = MemoryRateLimiter::default();
        let now = Utc::now();
        assert!(limiter.check_now("a", 1, now).unwrap().allowed);
        assert!(!limiter.check_now("a", 1, now).unwrap().allowed);
        assert!(limiter.check_now("b", 1, now).unwrap().allowed);
    }

    #[test]
    fn idle_buckets_are_evicted_when_the_map_is_full() {
        let limiter = MemoryRateLimiter::new(100);
        let now = Utc::now();
        for i in 0..1000 {
            let at = now + chrono::Duration::seconds(i);
            limiter.check_now(&format!("k{i}"), 600, at).unwrap();
        }
        assert!(limiter.len() <= 100, "{}", limiter.len());
    }

    #[test]
    fn a_zero_budget_is_invalid() {
        let limiter = MemoryRateLimiter::default();
        assert!(matches!(
            limiter.check_now("k", 0, Utc::now()),
            Err(Error::Invalid { .. })
        ));
    }
}
