//! The runner's shared browser (context mode): one Chromium for every session, launched on
//! first use and again after it died.
//!
//! It is launched like a per-session browser (same binary, flags, own process group and
//! orphan watchdog, leftover reaped), on its own profile directory that holds nothing worth
//! keeping (every session lives in an off-the-record browser context). [`SharedBrowser::get`]
//! holds a lock while launching, so sessions starting at the same moment share one launch.
//! When the browser dies (DevTools `Ws` error, process exit) its [`BrowserInstance::dead`]
//! says why; every session on it ends with that reason, and the next start launches a new one.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chromiumoxide::Browser;
use tokio::sync::{Mutex, mpsc, watch};

use super::launch::{self, LaunchSpec};
use super::{ChromiumConfig, ChromiumError, cdp};

/// One launched shared Chromium.
pub(super) struct BrowserInstance {
    /// The browser process (leader of its process group).
    pub pid: u32,
    pub browser: Browser,
    /// `Some(reason)` once the browser is gone.
    pub dead: watch::Receiver<Option<String>>,
    /// The user agent with `HeadlessChrome` replaced (WhatsApp Web refuses the headless one);
    /// `None` when the browser's own is fine.
    pub user_agent: Option<String>,
    /// Set once the browser process has exited (and been reaped): its pid may be reused.
    exited: Arc<AtomicBool>,
    /// Set when we take the browser down ourselves (engine dropped): its end is no news.
    closing: Arc<AtomicBool>,
}

impl BrowserInstance {
    pub fn is_dead(&self) -> bool {
        self.dead.borrow().is_some()
    }
}

impl Drop for BrowserInstance {
    /// The last session and the engine let go of it: take the whole process group down.
    fn drop(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        if !self.exited.load(Ordering::SeqCst) {
            launch::kill_group(self.pid);
        }
    }
}

/// Launches the shared browser lazily and relaunches it after it died.
pub(super) struct SharedBrowser {
    config: ChromiumConfig,
    profile_dir: PathBuf,
    current: Mutex<Option<Arc<BrowserInstance>>>,
}

impl SharedBrowser {
    pub fn new(config: ChromiumConfig, profile_dir: PathBuf) -> Self {
        Self {
            config,
            profile_dir,
            current: Mutex::new(None),
        }
    }

    /// The live shared browser, launching one if there is none (or it died).
    pub async fn get(&self) -> Result<Arc<BrowserInstance>, ChromiumError> {
        let mut current = self.current.lock().await;
        if let Some(instance) = current.as_ref()
            && !instance.is_dead()
        {
            return Ok(instance.clone());
        }
        *current = None;
        let instance = Arc::new(self.launch().await?);
        tracing::info!(pid = instance.pid, profile = %self.profile_dir.display(), "shared Chromium launched");
        *current = Some(instance.clone());
        Ok(instance)
    }

    /// The process tree of the live shared browser (for memory metrics).
    pub fn pids(&self) -> Vec<u32> {
        match self.current.try_lock() {
            Ok(current) => current
                .as_ref()
                .filter(|i| !i.is_dead())
                .map(|i| launch::process_tree(i.pid))
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    async fn launch(&self) -> Result<BrowserInstance, ChromiumError> {
        // Nothing in it is worth keeping, and a stale profile only slows the start down.
        launch::reap_stale(&self.profile_dir).await;
        if let Err(e) = std::fs::remove_dir_all(&self.profile_dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, profile = %self.profile_dir.display(), "old shared browser profile not removed");
        }
        let spec = LaunchSpec {
            binary: self.config.binary.clone(),
            headless: self.config.headless.clone(),
            profile_dir: self.profile_dir.clone(),
            proxy: None,
            extra_args: self.config.extra_args.clone(),
            timeout: self.config.launch_timeout,
        };
        let mut proc = launch::launch(&spec).await?;
        let pid = proc.pid;
        let (dead_tx, mut dead_rx) = mpsc::channel::<String>(4);
        let connected = async {
            let browser = cdp::connect(&proc.ws_url, dead_tx.clone()).await?;
            // The tab Chromium opened at launch: one renderer less.
            cdp::close_pages(&browser, None).await?;
            let version = cdp::cdp(browser.version()).await?;
            let user_agent = version
                .user_agent
                .contains("HeadlessChrome")
                .then(|| version.user_agent.replace("HeadlessChrome", "Chrome"));
            Ok::<_, ChromiumError>((browser, user_agent))
        };
        let (browser, user_agent) = match connected.await {
            Ok(v) => v,
            Err(e) => {
                launch::kill_group(pid);
                let _ = proc.child.wait().await;
                return Err(e);
            }
        };
        let tail = proc.stderr_tail.clone();
        let exit_tx = dead_tx;
        let exited = Arc::new(AtomicBool::new(false));
        let exited_flag = exited.clone();
        tokio::spawn(async move {
            let status = proc.child.wait().await;
            exited_flag.store(true, Ordering::SeqCst);
            let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            let _ = exit_tx
                .send(format!(
                    "shared Chromium exited ({status}): {}",
                    launch::tail_text(&tail)
                ))
                .await;
        });
        let (gone_tx, gone_rx) = watch::channel(None);
        let closing = Arc::new(AtomicBool::new(false));
        let closed_by_us = closing.clone();
        tokio::spawn(async move {
            let reason = dead_rx
                .recv()
                .await
                .unwrap_or_else(|| "shared Chromium gone".to_owned());
            if closed_by_us.load(Ordering::SeqCst) {
                tracing::debug!(pid, %reason, "shared Chromium closed");
            } else {
                tracing::warn!(pid, %reason, "shared Chromium is gone; its sessions end and restart");
            }
            let _ = gone_tx.send(Some(reason));
        });
        Ok(BrowserInstance {
            pid,
            browser,
            dead: gone_rx,
            user_agent,
            exited,
            closing,
        })
    }
}
