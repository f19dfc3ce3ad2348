//! Runner metrics in Prometheus text format: sessions by status, sends, send latency, and the
//! engines' processes and memory. Kept as atomics and small maps; rendering reads them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openwa_core::id::SessionId;
use openwa_core::session::SessionStatus;

/// Upper bounds (seconds) of the send latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Default)]
pub struct Metrics {
    sends_total: AtomicU64,
    sends_failed: AtomicU64,
    /// Cumulative counts per bucket, plus the sum in microseconds and the count.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
    /// The last status this runner wrote for each session it hosts.
    sessions: Mutex<HashMap<SessionId, SessionStatus>>,
    /// OS processes of each running engine.
    engine_pids: Mutex<HashMap<SessionId, Vec<u32>>>,
}

impl Metrics {
    /// A send reached a final outcome; `latency` runs from receiving the job to that outcome.
    pub fn record_send(&self, ok: bool, latency: Duration) {
        self.sends_total.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.sends_failed.fetch_add(1, Ordering::Relaxed);
        }
        let secs = latency.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_sum_us
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_status(&self, session: &SessionId, status: SessionStatus) {
        lock(&self.sessions).insert(session.clone(), status);
    }

    pub fn forget_session(&self, session: &SessionId) {
        lock(&self.sessions).remove(session);
        lock(&self.engine_pids).remove(session);
    }

    pub fn set_engine_pids(&self, session: &SessionId, pids: Vec<u32>) {
        let mut map = lock(&self.engine_pids);
        if pids.is_empty() {
            map.remove(session);
        } else {
            map.insert(session.clone(), pids);
        }
    }

    /// Sessions hosted right now, by status.
    pub fn sessions_by_status(&self) -> HashMap<SessionStatus, usize> {
        let mut counts = HashMap::new();
        for status in lock(&self.sessions).values() {
            *counts.entry(*status).or_default() += 1;
        }
        counts
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let by_status = self.sessions_by_status();
        out.push_str("# HELP openwa_runner_sessions Sessions hosted by this runner, by status.\n");
        out.push_str("# TYPE openwa_runner_sessions gauge\n");
        for status in SessionStatus::ALL {
            let n = by_status.get(&status).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "openwa_runner_sessions{{status=\"{}\"}} {n}",
                status.as_str()
            );
        }
        counter(
            &mut out,
            "openwa_runner_sends_total",
            "Send jobs that reached sent or failed.",
            &self.sends_total,
        );
        counter(
            &mut out,
            "openwa_runner_sends_failed_total",
            "Send jobs that ended failed.",
            &self.sends_failed,
        );

        out.push_str(
            "# HELP openwa_runner_send_latency_seconds From receiving a send job to its outcome.\n",
        );
        out.push_str("# TYPE openwa_runner_send_latency_seconds histogram\n");
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "openwa_runner_send_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "openwa_runner_send_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "openwa_runner_send_latency_seconds_sum {sum}");
        let _ = writeln!(out, "openwa_runner_send_latency_seconds_count {count}");

        // Context-mode sessions share one browser and each report its whole tree: count
        // every process once.
        let mut pids: Vec<u32> = lock(&self.engine_pids)
            .values()
            .flatten()
            .copied()
            .collect();
        pids.sort_unstable();
        pids.dedup();
        let pss: u64 = pids.iter().filter_map(|pid| pss_bytes(*pid)).sum();
        out.push_str(
            "# HELP openwa_runner_engine_processes Browser processes of the hosted sessions.\n",
        );
        out.push_str("# TYPE openwa_runner_engine_processes gauge\n");
        let _ = writeln!(out, "openwa_runner_engine_processes {}", pids.len());
        out.push_str("# HELP openwa_runner_engine_memory_pss_bytes Sum of the browser processes' proportional set size.\n");
        out.push_str("# TYPE openwa_runner_engine_memory_pss_bytes gauge\n");
        let _ = writeln!(out, "openwa_runner_engine_memory_pss_bytes {pss}");
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: &AtomicU64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
        value.load(Ordering::Relaxed)
    );
}

/// A process's PSS from `/proc/<pid>/smaps_rollup`; `None` if it is gone or unreadable.
pub fn pss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    parse_pss_kib(&text).map(|kib| kib * 1024)
}

fn parse_pss_kib(smaps_rollup: &str) -> Option<u64> {
    smaps_rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendering_counts_sessions_sends_and_latency_buckets() {
        let m = Metrics::default();
        m.set_status(&SessionId::parse("a").unwrap(), SessionStatus::Connected);
        m.set_status(&SessionId::parse("b").unwrap(), SessionStatus::Qr);
        m.record_send(true, Duration::from_millis(80));
        m.record_send(false, Duration::from_secs(3));
        let text = m.render();
        assert!(text.contains("openwa_runner_sessions{status=\"connected\"} 1"));
        assert!(text.contains("openwa_runner_sessions{status=\"qr\"} 1"));
        assert!(text.contains("openwa_runner_sends_total 2"));
        assert!(text.contains("openwa_runner_sends_failed_total 1"));
        assert!(text.contains("openwa_runner_send_latency_seconds_bucket{le=\"0.1\"} 1"));
        assert!(text.contains("openwa_runner_send_latency_seconds_bucket{le=\"5\"} 2"));
        assert!(text.contains("openwa_runner_engine_processes 0"));
        assert!(text.contains("openwa_runner_engine_memory_pss_bytes 0"));
    }

    #[test]
    fn pss_is_read_from_smaps_rollup() {
        let sample = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:  2048 kB\nPss:  1500 kB\nPss_Anon: 1000 kB\n";
        assert_eq!(parse_pss_kib(sample), Some(1500));
        if std::path::Path::new("/proc/self/smaps_rollup").exists() {
            assert!(pss_bytes(std::process::id()).is_some_and(|b| b > 0));
        }
    }
}
