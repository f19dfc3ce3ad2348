//! The runner's typed configuration. The binary fills it from flags and `OPENWA_*` variables;
//! `openwa up` and tests build it in code (usually from [`RunnerConfig::default`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How sessions are isolated from each other in the browser (see the README, "Isolation mode").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum IsolationMode {
    /// One Chromium process tree per session, each on its own profile directory; the profile
    /// is what is snapshotted. The default: a crash takes down one session only.
    #[default]
    Process,
    /// One shared Chromium per runner, one off-the-record browser context per session; the
    /// login is dumped from the live page and restored into a fresh context. About half the
    /// memory per session; one browser crash restarts every session of the runner.
    Context,
}

impl IsolationMode {
    /// The name used by `OPENWA_RUNNER_ISOLATION` and `--isolation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Context => "context",
        }
    }
}

impl std::fmt::Display for IsolationMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An isolation mode name that is neither `process` nor `context`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown isolation mode {0:?}: expected `process` or `context`")]
pub struct UnknownIsolationMode(String);

impl FromStr for IsolationMode {
    type Err = UnknownIsolationMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "process" => Ok(Self::Process),
            "context" => Ok(Self::Context),
            _ => Err(UnknownIsolationMode(s.to_owned())),
        }
    }
}

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
    /// Browser profiles live in `<profiles_root>/<session id>`; in context mode the shared
    /// browser's profile is [`RunnerConfig::shared_browser_dir`].
    pub profiles_root: PathBuf,
    /// One browser per session, or one shared browser with a context per session.
    pub isolation: IsolationMode,
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
            isolation: IsolationMode::default(),
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

    /// The shared browser's profile in context mode: per runner id, so two runners on one
    /// profiles root never take each other's browser for a leftover (a session id cannot
    /// start with a dot, so it cannot collide with a session's profile either).
    pub fn shared_browser_dir(&self) -> PathBuf {
        self.profiles_root
            .join(format!(".shared-browser-{}", self.runner_id))
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

    #[test]
    fn isolation_modes_parse_by_name_and_anything_else_is_a_clear_error() {
        assert_eq!("process".parse(), Ok(IsolationMode::Process));
        assert_eq!("Context".parse(), Ok(IsolationMode::Context));
        assert_eq!(IsolationMode::default(), IsolationMode::Process);
        let err = "contexts".parse::<IsolationMode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown isolation mode \"contexts\": expected `process` or `context`"
        );
        for mode in [IsolationMode::Process, IsolationMode::Context] {
            assert_eq!(mode.to_string().parse(), Ok(mode));
        }
    }
}
