//! [`RateLimiter`] on DynamoDB, shared by every API instance: the generic cell rate algorithm
//! (GCRA), which decides exactly like the embedded token bucket (`per_minute` deep, refilled
//! at `per_minute / 60` a second) while storing a single number per key.
//!
//! Each key has one item, `pk = RATE#<key>, sk = RATE`, holding `tat`, the "theoretical arrival
//! time" (ns): the instant at which the bucket would be full again. A request at `now` is
//! allowed when `max(tat, now) <= now + (per_minute - 1) * interval`, and then moves `tat` to
//! `max(tat, now) + interval`; refused requests change nothing. DynamoDB cannot compute the
//! `max`, so the two cases are two conditional updates:
//!
//! 1. busy key (`now <= tat <= limit`): `SET tat = tat + interval` — one call;
//! 2. idle or new key (`tat < now` or absent): `SET tat = now + interval` — a second call after
//!    the first reported (through `ALL_OLD`) that the key was idle.
//!
//! A `tat` beyond the limit is a refusal, decided from the old item of the first call, with
//! `retry_after = tat - limit`. Items expire (`ttl`) two minutes after their last use.
//!
//! Which update goes first follows the `tat` this process saw last for the key: a key under a
//! generous budget is idle at almost every request, and trying the idle update first makes that
//! one call instead of two. The hint only orders the attempts; the conditions decide.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::ports::{RateDecision, RateLimiter};
use sha2::{Digest, Sha256};

use super::codec::{Expr, Item, get_n, n, opt_n, to_ns, ttl_at};
use super::{Table, Written};
use crate::context::AwsContext;
use crate::resources::table::TTL;

/// The theoretical arrival time, in nanoseconds since the epoch.
const TAT: &str = "tat";
/// Keys longer than this are stored by their SHA-256.
const MAX_KEY_LEN: usize = 512;
/// Rounds of the two updates before giving up under heavy contention on one key.
const ATTEMPTS: usize = 5;

pub struct DynamoRateLimiter {
    table: Table,
    /// The last `tat` this process wrote or saw per key (bounded; cleared when full).
    hints: Mutex<HashMap<String, i64>>,
}

/// Keys whose hint is kept; beyond that the map starts over (hints are only an ordering).
const MAX_HINTS: usize = 10_000;

impl DynamoRateLimiter {
    pub fn new(ctx: Arc<AwsContext>) -> Self {
        Self {
            table: Table::new(ctx),
            hints: Mutex::new(HashMap::new()),
        }
    }

    fn hint(&self, key: &str) -> Option<i64> {
        self.hints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
    }

    fn remember(&self, key: &str, tat: i64) {
        let mut hints = self.hints.lock().unwrap_or_else(|e| e.into_inner());
        if hints.len() >= MAX_HINTS && !hints.contains_key(key) {
            hints.clear();
        }
        hints.insert(key.to_owned(), tat);
    }

    /// The busy-key update: a decision, or `None` if the key turned out idle.
    async fn busy(&self, key: &str, g: &Gcra, expires: &AttributeValue) -> Result<Step> {
        let mut e = Expr::new();
        e.increment(TAT, g.interval).set(TTL, expires.clone());
        let tat = e.name(TAT);
        let condition = format!(
            "{tat} BETWEEN {} AND {}",
            e.value(n(g.now)),
            e.value(n(g.limit))
        );
        let update = self
            .table
            .update_with(rate_key(key), &e, &condition)
            .return_values(ReturnValue::UpdatedNew);
        let old = match self.table.update(update).await? {
            Written::Done(Some(item)) => {
                let new_tat = get_n(&item, TAT)?;
                return Ok(Step::Allowed(new_tat));
            }
            Written::Done(None) => return Err(Error::unexpected("UpdateItem returned nothing")),
            Written::Refused(old) => old,
        };
        Ok(classify(g, old_tat(old.as_ref())?))
    }

    /// The idle-key update: a decision, or `None` if the key turned out busy.
    async fn idle(&self, key: &str, g: &Gcra, expires: &AttributeValue) -> Result<Step> {
        let mut e = Expr::new();
        e.set(TAT, n(g.now + g.interval)).set(TTL, expires.clone());
        let tat = e.name(TAT);
        let condition = format!(
            "attribute_not_exists({tat}) OR {tat} < {}",
            e.value(n(g.now))
        );
        let update = self.table.update_with(rate_key(key), &e, &condition);
        match self.table.update(update).await? {
            Written::Done(_) => Ok(Step::Allowed(g.now + g.interval)),
            Written::Refused(old) => Ok(classify(g, old_tat(old.as_ref())?)),
        }
    }
}

/// Where one conditional update left the decision.
enum Step {
    /// Allowed; `tat` moved to this.
    Allowed(i64),
    /// Refused; the stored `tat`.
    Refused(i64),
    /// The other update applies.
    Busy,
    Idle,
}

fn old_tat(old: Option<&Item>) -> Result<Option<i64>> {
    Ok(old.map(|o| opt_n::<i64>(o, TAT)).transpose()?.flatten())
}

/// What a refused update's old `tat` says.
fn classify(g: &Gcra, tat: Option<i64>) -> Step {
    match tat {
        Some(tat) if tat > g.limit => Step::Refused(tat),
        Some(tat) if tat >= g.now => Step::Busy,
        _ => Step::Idle,
    }
}

fn rate_key(key: &str) -> Item {
    let id = if key.len() > MAX_KEY_LEN {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    } else {
        key.to_owned()
    };
    super::codec::key(format!("RATE#{id}"), "RATE")
}

/// The numbers of one decision, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Gcra {
    per_minute: u32,
    now: i64,
    /// Time one request costs.
    interval: i64,
    /// The latest `tat` that still lets a request through.
    limit: i64,
}

impl Gcra {
    fn new(per_minute: u32, now: i64) -> Self {
        let interval = 60_000_000_000 / i64::from(per_minute);
        Self {
            per_minute,
            now,
            interval,
            limit: now + interval * (i64::from(per_minute) - 1),
        }
    }

    /// The decision after a request moved `tat` to `new_tat`.
    fn allowed(&self, new_tat: i64) -> RateDecision {
        let full_at = self.now + self.interval * i64::from(self.per_minute);
        let remaining = ((full_at - new_tat) / self.interval).clamp(0, i64::from(self.per_minute));
        RateDecision {
            allowed: true,
            limit: self.per_minute,
            remaining: remaining as u32,
            retry_after: Duration::ZERO,
        }
    }

    /// The refusal while `tat` is beyond the limit.
    fn refused(&self, tat: i64) -> RateDecision {
        // Whole milliseconds, rounded up: waiting exactly this long gets through.
        let wait_ns = (tat - self.limit).max(1) as u64;
        RateDecision {
            allowed: false,
            limit: self.per_minute,
            remaining: 0,
            retry_after: Duration::from_millis(wait_ns.div_ceil(1_000_000)),
        }
    }
}

#[async_trait]
impl RateLimiter for DynamoRateLimiter {
    async fn check(&self, key: &str, per_minute: u32, now: Timestamp) -> Result<RateDecision> {
        if per_minute == 0 {
            return Err(Error::invalid("per_minute", "must be at least 1"));
        }
        let g = Gcra::new(per_minute, to_ns(now)?);
        let expires = ttl_at(now + chrono::Duration::minutes(2));
        let mut busy_next = self.hint(key).is_some_and(|tat| tat >= g.now);
        for _ in 0..ATTEMPTS * 2 {
            let step = if busy_next {
                self.busy(key, &g, &expires).await?
            } else {
                self.idle(key, &g, &expires).await?
            };
            match step {
                Step::Allowed(tat) => {
                    self.remember(key, tat);
                    return Ok(g.allowed(tat));
                }
                Step::Refused(tat) => {
                    self.remember(key, tat);
                    return Ok(g.refused(tat));
                }
                Step::Busy => busy_next = true,
                Step::Idle => busy_next = false,
            }
        }
        Err(Error::unavailable(
            "rate limiter: too much contention on one key",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_key_allows_its_budget_then_advises_one_interval() {
        let g = Gcra::new(6, 0);
        let mut tat = 0;
        for remaining in (0..6).rev() {
            assert!(tat.max(g.now) <= g.limit);
            tat = tat.max(g.now) + g.interval;
            assert_eq!(g.allowed(tat).remaining, remaining);
        }
        assert!(tat > g.limit);
        assert_eq!(g.refused(tat).retry_after, Duration::from_secs(10));
    }

    #[test]
    fn long_keys_are_hashed_into_the_key_size_limit() {
        let long = "k".repeat(5000);
        let item = rate_key(&long);
        let pk = item.get("pk").and_then(|v| v.as_s().ok()).unwrap();
        assert!(pk.len() < 100, "{pk}");
        assert_ne!(rate_key("a"), rate_key("b"));
    }
}
