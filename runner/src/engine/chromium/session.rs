//! A running Chromium session: starting it in process mode (its own Chromium, DevTools, page,
//! supervisor; context mode opens its page in `context` and joins here at [`supervise`]) and
//! the [`EngineSession`] handle, whose teardown depends on where the page lives (`home`).
//!
//! The event stream ends exactly once, with a last event saying why: `Disconnected{"stopped"}`
//! after [`EngineSession::stop`], `LoggedOut`, or `Failed` (surface changed, boot timeout,
//! Chromium exited, DevTools connection lost, page crashed or hung); see `supervisor`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use chromiumoxide::Page;
use openwa_core::jid::{ChatId, WaMessageId};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, watch};

use super::bridge::{self, BridgeClient};
use super::cdp;
use super::home::Home;
use super::launch::{self, LaunchSpec};
use super::storage::{self, StorageError};
use super::supervisor::{Supervisor, Watch};
use super::{ChromiumConfig, ChromiumError};
use crate::engine::{
    AuthDump, EngineError, EngineEvent, EngineSession, OutgoingMessage, SendReceipt, SessionSpec,
};

/// What the session handle and the supervisor share.
pub(super) struct Shared {
    pub(super) home: Home,
    pub(super) bridge: BridgeClient,
    /// The WhatsApp Web page (context mode dumps the login from it).
    pub(super) page: Page,
    /// Becomes true when the supervisor has ended the event stream.
    pub(super) finished: watch::Receiver<bool>,
    pub(super) stopping: AtomicBool,
    pub(super) call_timeout: Duration,
}

/// The [`EngineSession`] of one Chromium page (its own browser, or a context in a shared one).
pub struct ChromiumSession {
    shared: Arc<Shared>,
}

/// The connected page and what the supervisor watches, however the page was opened.
pub(super) struct Opened {
    pub home: Home,
    pub conn: cdp::Connected,
    /// Reasons the browser is gone (DevTools lost, process exited).
    pub dead: mpsc::Receiver<String>,
    pub started: Instant,
}

/// Starts the supervisor on an opened page and returns the session handle.
pub(super) fn supervise(
    config: &ChromiumConfig,
    opened: Opened,
) -> (ChromiumSession, mpsc::Receiver<EngineEvent>) {
    let (boots_tx, boots_rx) = watch::channel(0u64);
    let (finished_tx, finished_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        home: opened.home,
        bridge: BridgeClient::new(opened.conn.page.clone(), boots_rx),
        page: opened.conn.page.clone(),
        finished: finished_rx,
        stopping: AtomicBool::new(false),
        call_timeout: config.call_timeout,
    });
    let (events_tx, events_rx) = mpsc::channel(256);
    let sup = Supervisor {
        shared: shared.clone(),
        page: opened.conn.page,
        events: events_tx,
        boots: boots_tx,
        authenticated: false,
        settled: false,
        ready: false,
        started: opened.started,
    };
    let watch = Watch {
        bindings: opened.conn.bindings,
        crashes: opened.conn.crashes,
        dead: opened.dead,
    };
    let timing = (config.boot_timeout, config.health_interval);
    tokio::spawn(async move {
        sup.run(watch, timing).await;
        let _ = finished_tx.send(true);
    });
    (ChromiumSession { shared }, events_rx)
}

/// Launches Chromium for `spec`, opens WhatsApp Web and starts the supervisor.
pub async fn start(
    config: &ChromiumConfig,
    spec: SessionSpec,
) -> Result<(ChromiumSession, mpsc::Receiver<EngineEvent>), EngineError> {
    let started = Instant::now();
    let launch_spec = LaunchSpec {
        binary: config.binary.clone(),
        headless: config.headless.clone(),
        profile_dir: spec.profile_dir.clone(),
        proxy: spec.proxy.clone(),
        extra_args: config.extra_args.clone(),
        timeout: config.launch_timeout,
    };
    let mut proc = launch::launch(&launch_spec).await?;
    let pid = proc.pid;
    let (dead_tx, dead_rx) = mpsc::channel::<String>(4);
    let opened = async {
        let browser = cdp::connect(&proc.ws_url, dead_tx.clone()).await?;
        let conn = cdp::open_page(
            &browser,
            &bridge::source(spec.takeover_on_conflict),
            &spec.wa_url,
        )
        .await?;
        Ok::<_, ChromiumError>((browser, conn))
    };
    let (browser, conn) = match opened.await {
        Ok(v) => v,
        Err(e) => {
            launch::kill_group(pid);
            let _ = proc.child.wait().await;
            return Err(e.into());
        }
    };
    tracing::debug!(session = %spec.session_id, pid, elapsed_ms = started.elapsed().as_millis() as u64, "Chromium up, WhatsApp Web loading");

    let (exit_tx, exit_rx) = watch::channel(false);
    let tail = proc.stderr_tail.clone();
    tokio::spawn(async move {
        let status = proc.child.wait().await;
        let _ = exit_tx.send(true);
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        let _ = dead_tx
            .send(format!(
                "Chromium exited ({status}): {}",
                launch::tail_text(&tail)
            ))
            .await;
    });
    let opened = Opened {
        home: Home::OwnBrowser {
            pid,
            browser: Mutex::new(Some(browser)),
            exited: exit_rx,
        },
        conn,
        dead: dead_rx,
        started,
    };
    Ok(supervise(config, opened))
}

impl ChromiumSession {
    async fn call(&self, op: &str, args: Value) -> Result<Value, EngineError> {
        if *self.shared.finished.borrow() {
            return Err(EngineError::Browser("the session has ended".into()));
        }
        self.shared
            .bridge
            .call(op, args, self.shared.call_timeout)
            .await
    }
}

fn chat_of(v: &Value, what: &str) -> Result<Option<ChatId>, EngineError> {
    match v.as_str() {
        None => Ok(None),
        Some(s) => ChatId::parse(s)
            .map(Some)
            .map_err(|e| EngineError::Rejected(format!("{what}: bad chat id {s}: {e}"))),
    }
}

#[async_trait]
impl EngineSession for ChromiumSession {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, EngineError> {
        let content = serde_json::to_value(&msg.content)
            .map_err(|e| EngineError::Rejected(format!("content: {e}")))?;
        let media = msg.media.as_ref().map(|m| {
            json!({
                "data": base64::engine::general_purpose::STANDARD.encode(&m.bytes),
                "mimetype": m.mimetype,
                "filename": m.filename,
            })
        });
        let args = json!({
            "chat": msg.chat.as_str(),
            "wa_key": msg.wa_key,
            "content": content,
            "media": media,
            "reply_to": msg.reply_to.as_ref().map(|r| r.as_str()),
            "mentions": msg.mentions.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        });
        let v = self.call("send", args).await?;
        let id = v.get("id").and_then(Value::as_str).unwrap_or_default();
        let wa_id = WaMessageId::parse(id)
            .map_err(|e| EngineError::Rejected(format!("send returned a bad id {id}: {e}")))?;
        let already_sent = v
            .get("already_sent")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(SendReceipt {
            wa_id,
            already_sent,
        })
    }

    async fn request_pairing_code(&self, phone: &ChatId) -> Result<String, EngineError> {
        let v = self
            .call("pairing_code", json!({ "phone": phone.user() }))
            .await?;
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| EngineError::Rejected("no pairing code returned".into()))
    }

    async fn check_number(&self, phone: &ChatId) -> Result<Option<ChatId>, EngineError> {
        let v = self
            .call("check_number", json!({ "phone": phone.as_str() }))
            .await?;
        chat_of(&v, "check_number")
    }

    async fn mark_read(&self, chat: &ChatId) -> Result<(), EngineError> {
        self.call("mark_read", json!({ "chat": chat.as_str() }))
            .await
            .map(drop)
    }

    async fn logout(&self) -> Result<(), EngineError> {
        match self.call("logout", json!({})).await {
            Ok(_) => Ok(()),
            // The page reloads itself as part of logging out; the retry then finds nobody
            // logged in. The LoggedOut event on the stream is the confirmation either way.
            Err(EngineError::Rejected(m)) if m.contains("not logged in") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn stop(&self) -> Result<(), EngineError> {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.home.close().await;
        let mut finished = self.shared.finished.clone();
        tokio::time::timeout(Duration::from_secs(5), finished.wait_for(|f| *f))
            .await
            .map_err(|_| {
                EngineError::Timeout(
                    "the session did not wind down after the browser closed".into(),
                )
            })?
            .map_err(|_| EngineError::Browser("session supervisor vanished".into()))?;
        Ok(())
    }

    async fn export_auth(&self) -> Result<AuthDump, EngineError> {
        let Home::Context { .. } = self.shared.home else {
            return Err(EngineError::NotReady(
                "a process-mode session keeps its login in the profile directory".into(),
            ));
        };
        if *self.shared.finished.borrow() {
            return Err(EngineError::Browser("the session has ended".into()));
        }
        // WhatsApp Web reloads itself after a login; a dump cut by that is taken once more.
        let mut last = None;
        for _ in 0..2 {
            match storage::dump(&self.shared.page).await {
                Ok(dump) => return Ok(dump),
                Err(StorageError::Reloaded) => {
                    last = Some(StorageError::Reloaded);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(StorageError::NotExportable(m)) => return Err(EngineError::Rejected(m)),
                Err(e) => return Err(EngineError::Browser(e.to_string())),
            }
        }
        Err(EngineError::Browser(
            last.map_or_else(String::new, |e| e.to_string()),
        ))
    }

    fn pids(&self) -> Vec<u32> {
        // Once the session ended its browser is gone (or its context disposed).
        if *self.shared.finished.borrow() {
            return Vec::new();
        }
        self.shared.home.pids()
    }
}

impl Drop for ChromiumSession {
    /// A session handle dropped without `stop()` takes its browser (context mode: its
    /// context) down with it.
    fn drop(&mut self) {
        if self.shared.home.is_gone() {
            return;
        }
        self.shared.stopping.store(true, Ordering::SeqCst);
        match &self.shared.home {
            Home::OwnBrowser { pid, .. } => launch::kill_group(*pid),
            Home::Context { .. } => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let shared = self.shared.clone();
                    runtime.spawn(async move { shared.home.abort().await });
                }
            }
        }
    }
}
