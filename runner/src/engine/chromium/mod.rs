//! The Chromium engine: WhatsApp Web in headless Chromium, driven over the DevTools protocol
//! with chromiumoxide, plus the bridge script (`assets/bridge.js`) that talks to WhatsApp
//! Web's in-page modules (see `shared/wa-web-surface.md`).
//!
//! One Chromium per session, each with its own profile directory (the login lives in the
//! profile's IndexedDB and Local Storage) and its own process group.
//!
//! Layout:
//! - [`launch`]: spawning Chromium, reaping a leftover one on the same profile, process trees.
//! - `cdp`: connecting chromiumoxide, the page (binding + bridge on every new document),
//!   evaluations with timeouts.
//! - [`bridge`]: the embedded bridge script and calls into it (retried once across a reload).
//! - `events`: decoding the bridge's event frames into [`EngineEvent`](super::EngineEvent)s.
//! - `session`: starting a session and its handle ([`EngineSession`](super::EngineSession)).
//! - `supervisor`: the loop that watches a session (bridge frames, crashes, hangs, boot
//!   timeout) and ends the event stream when it dies.

pub mod bridge;
mod cdp;
mod events;
pub mod launch;
mod session;
mod supervisor;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{Engine, EngineError, EngineEvent, EngineSession, SessionSpec};

/// Where Debian installs the real Chromium binary (`/usr/bin/chromium` is a wrapper script).
pub const DEFAULT_CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// How the engine runs Chromium.
#[derive(Debug, Clone)]
pub struct ChromiumConfig {
    /// The Chromium binary (`chromium` or `chromium-headless-shell`).
    pub binary: PathBuf,
    /// The `--headless=` mode; `None` for `chromium-headless-shell`, which needs no flag.
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
}

impl Default for ChromiumConfig {
    fn default() -> Self {
        Self::for_binary(DEFAULT_CHROMIUM)
    }
}

impl ChromiumConfig {
    /// Defaults for `binary`; the headless flag is left out for `chromium-headless-shell`.
    pub fn for_binary(binary: impl Into<PathBuf>) -> Self {
        let binary = binary.into();
        let shell = binary
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("headless-shell"));
        Self {
            binary,
            headless: (!shell).then(|| "new".to_owned()),
            extra_args: Vec::new(),
            launch_timeout: Duration::from_secs(20),
            boot_timeout: Duration::from_secs(90),
            health_interval: Duration::from_secs(10),
            call_timeout: Duration::from_secs(60),
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

/// The production [`Engine`]: one headless Chromium per session.
#[derive(Debug, Clone, Default)]
pub struct ChromiumEngine {
    config: ChromiumConfig,
}

impl ChromiumEngine {
    pub fn new(config: ChromiumConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &ChromiumConfig {
        &self.config
    }
}

#[async_trait]
impl Engine for ChromiumEngine {
    async fn start(
        &self,
        spec: SessionSpec,
    ) -> Result<(Box<dyn EngineSession>, mpsc::Receiver<EngineEvent>), EngineError> {
        let (session, events) = session::start(&self.config, spec).await?;
        Ok((Box::new(session), events))
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
}
