//! The Chromium engine: WhatsApp Web in headless Chromium, driven over the DevTools protocol
//! with chromiumoxide, plus the bridge script (`assets/bridge.js`) that talks to WhatsApp
//! Web's in-page modules (see `shared/wa-web-surface.md`).
//!
//! Two isolation modes ([`IsolationMode`]):
//! - **process** (default): one Chromium per session, each with its own profile directory (the
//!   login lives in the profile's IndexedDB and Local Storage) and its own process group;
//! - **context**: one shared Chromium per runner (launched on first use, relaunched after it
//!   died), one off-the-record browser context per session (with the session's proxy); the
//!   login is dumped from the live page and restored into a new context before WhatsApp Web
//!   loads (`storage`). If the shared browser dies, every session on it ends (`Failed`) and
//!   the runner restarts them on a new one.
//!
//! Layout:
//! - [`launch`]: spawning Chromium, reaping a leftover one on the same profile, process trees.
//! - `cdp`: connecting chromiumoxide, the page (binding + bridge on every new document),
//!   evaluations with timeouts.
//! - [`bridge`]: the embedded bridge script and calls into it (retried once across a reload).
//! - `events`: decoding the bridge's event frames into [`EngineEvent`](super::EngineEvent)s.
//! - `session`: starting a process-mode session, and the session handle
//!   ([`EngineSession`](super::EngineSession)) of both modes; `home`: where its page lives
//!   (own browser or context) and how that is torn down.
//! - `shared`: the shared browser of context mode; `context`: starting a context-mode session.
//! - [`storage`]: the login dump/restore of context mode (`assets/storage.js`).
//! - `supervisor`: the loop that watches a session (bridge frames, crashes, hangs, boot
//!   timeout) and ends the event stream when it dies.

pub mod bridge;
mod cdp;
mod context;
mod events;
mod home;
pub mod launch;
mod session;
mod shared;
pub mod storage;
mod supervisor;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{Engine, EngineError, EngineEvent, EngineSession, IsolationMode, SessionSpec};

/// Debian's `chromium-headless-shell` (the "old headless" Chromium, no browser UI): the default
/// binary when installed. At 10 sessions it needs roughly half the memory per session of full
/// Chromium and starts faster (figures in `docs/performance-sessions.md`).
pub const HEADLESS_SHELL: &str = "/usr/lib/chromium/chromium-headless-shell";

/// Where Debian installs the real full Chromium binary (`/usr/bin/chromium` is a wrapper
/// script); the fallback when the headless shell is not installed.
pub const FULL_CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// The binary to run when none is configured: [`HEADLESS_SHELL`] when it is installed, else
/// [`FULL_CHROMIUM`]. [`choose_binary`] also gives the reason for a fallback.
pub fn default_binary() -> PathBuf {
    choose_binary(None).binary
}

/// Which Chromium binary a runner uses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryChoice {
    pub binary: PathBuf,
    /// Set when the default headless shell is missing and full Chromium is used instead.
    pub fallback_reason: Option<String>,
}

/// The configured binary if there is one; otherwise the headless shell when installed, else
/// full Chromium with the reason (for the binaries to log).
pub fn choose_binary(configured: Option<&Path>) -> BinaryChoice {
    choose_from(
        configured,
        Path::new(HEADLESS_SHELL),
        Path::new(FULL_CHROMIUM),
    )
}

fn choose_from(configured: Option<&Path>, shell: &Path, full: &Path) -> BinaryChoice {
    if let Some(binary) = configured {
        return BinaryChoice {
            binary: binary.to_owned(),
            fallback_reason: None,
        };
    }
    if shell.exists() {
        return BinaryChoice {
            binary: shell.to_owned(),
            fallback_reason: None,
        };
    }
    BinaryChoice {
        binary: full.to_owned(),
        fallback_reason: Some(format!(
            "{} is not installed (Debian package `chromium-headless-shell`); using full Chromium, \
             which needs about twice the memory per session",
            shell.display()
        )),
    }
}

/// Whether `binary` is the headless shell (judged by its file name).
pub fn is_headless_shell(binary: &Path) -> bool {
    binary
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("headless-shell"))
}

/// How the engine runs Chromium.
#[derive(Debug, Clone)]
pub struct ChromiumConfig {
    /// The Chromium binary (`chromium` or `chromium-headless-shell`).
    pub binary: PathBuf,
    /// The `--headless=` mode: `Some("new")` for full Chromium; `None` for
    /// `chromium-headless-shell`, which is headless by construction (it is the old headless
    /// mode, split out of Chromium; it ignores `--headless=new`).
    pub headless: Option<String>,
    /// Extra command-line flags (`--flag=value` form).
    pub extra_args: Vec<String>,
    /// How long Chromium may take to open its DevTools endpoint.
    pub launch_timeout: Duration,
    /// How long WhatsApp Web may take to boot and settle (show a QR, become ready, or report a
    /// conflict or block) before the session fails; catches pages stuck in a reload loop.
    pub boot_timeout: Duration,
    /// How often the page is pinged to detect a hang.
    pub health_interval: Duration,
    /// Upper bound for one bridge call (a send waits for readiness within it).
    pub call_timeout: Duration,
    /// One Chromium per session, or one shared Chromium with a context per session.
    pub isolation: IsolationMode,
    /// Context mode: the shared browser's profile directory (one per runner; see
    /// `RunnerConfig::shared_browser_dir`).
    pub shared_profile_dir: PathBuf,
}

impl Default for ChromiumConfig {
    /// For [`default_binary`].
    fn default() -> Self {
        Self::for_binary(default_binary())
    }
}

impl ChromiumConfig {
    /// Defaults for `binary`; the headless flag is left out for `chromium-headless-shell`.
    pub fn for_binary(binary: impl Into<PathBuf>) -> Self {
        let binary = binary.into();
        let shell = is_headless_shell(&binary);
        Self {
            binary,
            headless: (!shell).then(|| "new".to_owned()),
            extra_args: Vec::new(),
            launch_timeout: Duration::from_secs(20),
            boot_timeout: Duration::from_secs(90),
            health_interval: Duration::from_secs(10),
            call_timeout: Duration::from_secs(60),
            isolation: IsolationMode::Process,
            shared_profile_dir: std::env::temp_dir()
                .join(format!("openwa-shared-browser-{}", std::process::id())),
        }
    }

    /// The same, in context mode with the shared browser on `shared_profile_dir`.
    pub fn in_context_mode(self, shared_profile_dir: impl Into<PathBuf>) -> Self {
        Self {
            isolation: IsolationMode::Context,
            shared_profile_dir: shared_profile_dir.into(),
            ..self
        }
    }
}

/// Internal failures while bringing a browser up.
#[derive(Debug, thiserror::Error)]
pub enum ChromiumError {
    #[error("launching Chromium: {0}")]
    Launch(String),
    #[error("DevTools: {0}")]
    Cdp(String),
}

impl From<ChromiumError> for EngineError {
    fn from(e: ChromiumError) -> Self {
        EngineError::Browser(e.to_string())
    }
}

/// The production [`Engine`]: headless Chromium (by default the headless shell), one per
/// session or one shared per engine ([`ChromiumConfig::isolation`]).
#[derive(Clone)]
pub struct ChromiumEngine {
    config: ChromiumConfig,
    /// Context mode's shared browser (unused in process mode). Clones share it.
    shared: Arc<shared::SharedBrowser>,
}

impl Default for ChromiumEngine {
    fn default() -> Self {
        Self::new(ChromiumConfig::default())
    }
}

impl std::fmt::Debug for ChromiumEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChromiumEngine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ChromiumEngine {
    pub fn new(config: ChromiumConfig) -> Self {
        let shared = shared::SharedBrowser::new(config.clone(), config.shared_profile_dir.clone());
        Self {
            config,
            shared: Arc::new(shared),
        }
    }

    pub fn config(&self) -> &ChromiumConfig {
        &self.config
    }

    /// Context mode: the shared browser's process tree while it runs (empty otherwise).
    pub fn shared_browser_pids(&self) -> Vec<u32> {
        self.shared.pids()
    }
}

#[async_trait]
impl Engine for ChromiumEngine {
    async fn start(
        &self,
        spec: SessionSpec,
    ) -> Result<(Box<dyn EngineSession>, mpsc::Receiver<EngineEvent>), EngineError> {
        let (session, events) = match self.config.isolation {
            IsolationMode::Process => session::start(&self.config, spec).await?,
            IsolationMode::Context => context::start(&self.config, &self.shared, spec).await?,
        };
        Ok((Box::new(session), events))
    }

    fn isolation(&self) -> IsolationMode {
        self.config.isolation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headless_shell_gets_no_headless_flag() {
        assert_eq!(
            ChromiumConfig::for_binary("/usr/lib/chromium/chromium")
                .headless
                .as_deref(),
            Some("new")
        );
        assert_eq!(
            ChromiumConfig::for_binary("/usr/bin/chromium-headless-shell").headless,
            None
        );
    }

    #[test]
    fn the_headless_shell_is_the_default_when_installed_else_full_chromium_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let shell = dir.path().join("chromium-headless-shell");
        let full = dir.path().join("chromium");

        let missing = choose_from(None, &shell, &full);
        assert_eq!(missing.binary, full);
        assert!(
            missing
                .fallback_reason
                .unwrap()
                .contains("chromium-headless-shell")
        );

        std::fs::write(&shell, "").unwrap();
        let installed = choose_from(None, &shell, &full);
        assert_eq!(installed.binary, shell);
        assert_eq!(installed.fallback_reason, None);

        let configured = choose_from(Some(&full), &shell, &full);
        assert_eq!(configured.binary, full);
        assert_eq!(configured.fallback_reason, None);
    }
}
