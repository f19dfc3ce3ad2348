//! The runner's typed configuration. The binary fills it from flags and `OPENWA_*` variables;
//! `openwa up` and tests build it in code (usually from [`RunnerConfig::default`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a [`crate::Runner`] needs to know besides its ports and its engine.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// This runner's lease owner id; unique per process (default: hostname + random suffix).
    pub runner_id: String,
    /// Most sessions hosted at once.
    pub capacity: usize,
    /// How long a claim or renewal holds a session. Renewed every third of it; a runner that
    /// cannot renew before it runs out stops the session's engine.
    pub lease_duration: Duration,
    /// How often to look for claimable sessions while below capacity.
    pub claim_interval: Duration,
    /// Browser profiles live in `<profiles_root>/<session id>`.
    pub profiles_root: PathBuf,
    /// The WhatsApp Web URL handed to the engine (the simulator's in sandbox and tests).
    pub wa_url: String,
    /// On `CONFLICT` (the account was opened elsewhere), take the session back.
    pub takeover_on_conflict: bool,
    /// How often a connected session's auth state is snapshotted (besides after login and at
    /// stop).
    pub snapshot_interval: Duration,
    /// How long a drain waits for in-flight sends before stopping engines.
    pub drain_grace: Duration,
    /// Restart backoff after an engine stream ends: starts at `min`, doubles up to `max`.
    pub restart_backoff_min: Duration,
    pub restart_backoff_max: Duration,
    /// How long a received send job stays invisible to other consumers.
    pub job_visibility: Duration,
    /// Send jobs one session works on at once (one per chat at most, by the queue's FIFO
    /// groups), so a slow chat does not hold up the others.
    pub send_concurrency: usize,
    /// A send that failed transiently this many times (receives) is marked failed.
    pub max_send_attempts: u32,
    /// Where `/health`, `/ready` and `/metrics` are served; `None` serves nothing.
    pub listen: Option<SocketAddr>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            runner_id: default_runner_id(),
            capacity: 20,
            lease_duration: Duration::from_secs(30),
            claim_interval: Duration::from_secs(2),
            profiles_root: std::env::temp_dir().join("openwa-profiles"),
            wa_url: "https://web.whatsapp.com/".into(),
            takeover_on_conflict: false,
            snapshot_interval: Duration::from_secs(300),
            drain_grace: Duration::from_secs(20),
            restart_backoff_min: Duration::from_secs(1),
            restart_backoff_max: Duration::from_secs(60),
            job_visibility: Duration::from_secs(60),
            send_concurrency: 8,
            max_send_attempts: 5,
            listen: None,
        }
    }
}

impl RunnerConfig {
    /// Lease renewal period: a third of the lease.
    pub fn renew_every(&self) -> Duration {
        self.lease_duration / 3
    }
}

/// `<hostname>-<6 random hex digits>`: unique across restarts of the same container.
pub fn default_runner_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "runner".into());
    format!("{host}-{:06x}", rand::random::<u32>() & 0x00ff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_runner_ids_differ_and_renewal_is_a_third_of_the_lease() {
        assert_ne!(default_runner_id(), default_runner_id());
        let c = RunnerConfig::default();
        assert_eq!(c.renew_every(), Duration::from_secs(10));
    }
}
