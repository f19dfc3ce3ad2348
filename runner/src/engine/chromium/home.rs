//! Where a session's page lives and how it is torn down: its own Chromium (process mode) or
//! a browser context in the runner's shared Chromium (context mode).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chromiumoxide::Browser;
use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use tokio::sync::{Mutex, mpsc, watch};

use super::cdp;
use super::launch;
use super::shared::BrowserInstance;

/// How long a graceful close may take before the process group is killed.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Where a session's page lives, which decides how it is torn down.
// One per session, built once and kept in an `Arc`: the size difference between the variants
// (chromiumoxide's `Browser` is large) costs nothing, boxing would only add an indirection.
#[allow(clippy::large_enum_variant)]
pub(super) enum Home {
    /// Process mode: the session's own Chromium.
    OwnBrowser {
        pid: u32,
        browser: Mutex<Option<Browser>>,
        /// Becomes true when the Chromium process has exited.
        exited: watch::Receiver<bool>,
    },
    /// Context mode: a browser context in the runner's shared Chromium.
    Context {
        instance: Arc<BrowserInstance>,
        context: BrowserContextId,
        disposed: AtomicBool,
        /// Tells the supervisor the context is gone (the shared browser lives on, so no
        /// DevTools error would).
        ended: mpsc::Sender<String>,
    },
}

impl Home {
    /// Ends the session gracefully. Process mode: `Browser.close` (so the profile is flushed),
    /// the process group killed if it lingers. Context mode: the context is disposed.
    pub async fn close(&self) {
        match self {
            Self::OwnBrowser {
                pid,
                browser,
                exited,
            } => {
                if let Some(mut browser) = browser.lock().await.take() {
                    let _ = tokio::time::timeout(cdp::CDP_TIMEOUT, browser.close()).await;
                }
                let mut exited = exited.clone();
                if tokio::time::timeout(CLOSE_GRACE, exited.wait_for(|e| *e))
                    .await
                    .is_err()
                {
                    tracing::warn!(pid, "Chromium did not exit after Browser.close; killing it");
                }
                // Renderers and helpers that outlived the browser process go too.
                launch::kill_group(*pid);
            }
            Self::Context { .. } => self.dispose().await,
        }
    }

    /// Ends a failed session at once. Process mode: its process group is killed. Context
    /// mode: its context is disposed (a shared browser that cannot even do that is hung and
    /// is killed, which ends its other sessions too; they restart on a new one).
    pub async fn abort(&self) {
        match self {
            Self::OwnBrowser { pid, browser, .. } => {
                *browser.lock().await = None;
                launch::kill_group(*pid);
            }
            Self::Context { .. } => self.dispose().await,
        }
    }

    async fn dispose(&self) {
        let Self::Context {
            instance,
            context,
            disposed,
            ended,
        } = self
        else {
            return;
        };
        if disposed.swap(true, Ordering::SeqCst) || instance.is_dead() {
            return;
        }
        let result = cdp::cdp(instance.browser.dispose_browser_context(context.clone())).await;
        if let Err(error) = result
            && !instance.is_dead()
        {
            tracing::warn!(%error, pid = instance.pid, "browser context not disposed; killing the shared Chromium");
            launch::kill_group(instance.pid);
        }
        let _ = ended.try_send("browser context disposed".into());
    }

    /// The pid to name in logs: the session's browser, or the shared one.
    pub fn pid(&self) -> u32 {
        match self {
            Self::OwnBrowser { pid, .. } => *pid,
            Self::Context { instance, .. } => instance.pid,
        }
    }

    /// Whether the browser under the session is gone.
    pub fn is_gone(&self) -> bool {
        match self {
            Self::OwnBrowser { exited, .. } => *exited.borrow(),
            Self::Context {
                instance, disposed, ..
            } => instance.is_dead() || disposed.load(Ordering::SeqCst),
        }
    }

    /// Process tree for metrics. In context mode every session reports the shared browser's
    /// tree (the metrics count each process once): a context has no processes of its own that
    /// could be told apart cheaply.
    pub fn pids(&self) -> Vec<u32> {
        if self.is_gone() {
            return Vec::new();
        }
        launch::process_tree(self.pid())
    }
}
