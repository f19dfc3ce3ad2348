//! Per-host concurrency with pacing: how one slow or dead endpoint is kept from taking the
//! worker's slots, or its queue, away from the others.
//!
//! Each host (scheme + host + port) has `per_host` slots. A job whose host has none free is not
//! waited for in memory (that would pin a worker slot behind the slow host); it is put back on the
//! queue with a delay. The delay paces the host's backlog at the rate the host is actually
//! answering: each deferred job takes the next "turn", spaced by the host's recent latency
//! divided by its slots, so a host that hangs for 15 s sees its backlog come back about once per
//! turn instead of churning through the queue every few hundred milliseconds and crowding out
//! everyone else's jobs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Recent behaviour of one host.
struct Pace {
    /// Moving average of attempt durations.
    latency: Duration,
    /// When an attempt last finished (or when the host was first seen).
    last_done: Instant,
    /// The time the last deferred job was told to come back.
    next_turn: Instant,
}

struct Host {
    slots: Arc<Semaphore>,
    pace: Mutex<Pace>,
}

/// A slot held for one attempt; records the attempt's duration when dropped.
pub struct HostSlot {
    _permit: OwnedSemaphorePermit,
    host: Arc<Host>,
    started: Instant,
}

impl std::fmt::Debug for HostSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSlot")
            .field("started", &self.started)
            .finish()
    }
}

impl Drop for HostSlot {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        let mut pace = self.host.pace.lock().unwrap_or_else(|e| e.into_inner());
        pace.latency = (pace.latency * 4 + took) / 5;
        pace.last_done = Instant::now();
        if took < Duration::from_secs(1) {
            // Healthy again: the backlog need not wait for turns handed out while it was not.
            pace.next_turn = pace.last_done;
        }
    }
}

/// Slots and pacing for every host.
pub struct HostLimits {
    per_host: usize,
    min_defer: Duration,
    max_defer: Duration,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

impl HostLimits {
    pub fn new(per_host: usize, min_defer: Duration, max_defer: Duration) -> Self {
        Self {
            per_host: per_host.max(1),
            min_defer,
            max_defer: max_defer.max(min_defer),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn host(&self, key: &str) -> Arc<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if hosts.len() > 4096 {
            let full = self.per_host;
            hosts.retain(|_, h| h.slots.available_permits() < full);
        }
        hosts
            .entry(key.to_owned())
            .or_insert_with(|| {
                let now = Instant::now();
                Arc::new(Host {
                    slots: Arc::new(Semaphore::new(self.per_host)),
                    pace: Mutex::new(Pace {
                        latency: Duration::ZERO,
                        last_done: now,
                        next_turn: now,
                    }),
                })
            })
            .clone()
    }

    /// A slot for `key`, or how long to put the job back for.
    pub fn try_acquire(&self, key: &str) -> Result<HostSlot, Duration> {
        let host = self.host(key);
        if let Ok(permit) = host.slots.clone().try_acquire_owned() {
            return Ok(HostSlot {
                _permit: permit,
                host,
                started: Instant::now(),
            });
        }
        let now = Instant::now();
        let mut pace = host.pace.lock().unwrap_or_else(|e| e.into_inner());
        // Nothing finished for a while is as telling as a slow finish.
        let estimate = pace.latency.max(now - pace.last_done);
        let spacing = estimate / u32::try_from(self.per_host).unwrap_or(u32::MAX);
        pace.next_turn = pace.next_turn.max(now) + spacing;
        Err((pace.next_turn - now).clamp(self.min_defer, self.max_defer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_host_defers_and_others_are_untouched() {
        let limits = HostLimits::new(2, Duration::from_millis(10), Duration::from_secs(60));
        let a1 = limits.try_acquire("a").unwrap();
        let _a2 = limits.try_acquire("a").unwrap();
        assert!(limits.try_acquire("a").is_err());
        assert!(limits.try_acquire("b").is_ok());
        drop(a1);
        assert!(limits.try_acquire("a").is_ok());
    }

    #[test]
    fn deferrals_of_a_stuck_host_are_spread_out_not_bunched() {
        let limits = HostLimits::new(1, Duration::from_millis(1), Duration::from_secs(60));
        let _held = limits.try_acquire("slow").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let first = limits.try_acquire("slow").unwrap_err();
        let tenth = (0..9)
            .map(|_| limits.try_acquire("slow").unwrap_err())
            .last()
            .unwrap();
        assert!(tenth >= first * 5, "first {first:?}, tenth {tenth:?}");
    }
}
