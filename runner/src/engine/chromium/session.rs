//! A running Chromium session: starting it (process, DevTools, page, supervisor) and the
//! [`EngineSession`] handle.
//!
//! The event stream ends exactly once, with a last event saying why: `Disconnected{"stopped"}`
//! after [`EngineSession::stop`], `LoggedOut`, or `Failed` (surface changed, boot timeout,
//! Chromium exited, DevTools connection lost, page crashed or hung); see `supervisor`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use chromiumoxide::Browser;
use openwa_core::jid::{ChatId, WaMessageId};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, watch};

use super::bridge::{self, BridgeClient};
use super::cdp;
use super::launch::{self, LaunchSpec};
use super::supervisor::{Supervisor, Watch};
use super::{ChromiumConfig, ChromiumError};
use crate::engine::{
    EngineError, EngineEvent, EngineSession, OutgoingMessage, SendReceipt, SessionSpec,
};

/// How long a graceful close may take before the process group is killed.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// What the session handle and the supervisor share.
pub(super) struct Shared {
    pub(super) pid: u32,
    pub(super) browser: Mutex<Option<Browser>>,
    pub(super) bridge: BridgeClient,
    /// Becomes true when the Chromium process has exited.
    pub(super) exited: watch::Receiver<bool>,
    /// Becomes true when the supervisor has ended the event stream.
    pub(super) finished: watch::Receiver<bool>,
    pub(super) stopping: AtomicBool,
    pub(super) call_timeout: Duration,
}

impl Shared {
    /// Closes Chromium gracefully (so the profile is flushed), killing the group if it lingers.
    pub(super) async fn close_browser(&self) {
        if let Some(mut browser) = self.browser.lock().await.take() {
            let _ = tokio::time::timeout(cdp::CDP_TIMEOUT, browser.close()).await;
        }
        let mut exited = self.exited.clone();
        if tokio::time::timeout(CLOSE_GRACE, exited.wait_for(|e| *e))
            .await
            .is_err()
        {
            tracing::warn!(
                pid = self.pid,
                "Chromium did not exit after Browser.close; killing it"
            );
        }
        // Renderers and helpers that outlived the browser process go too.
        launch::kill_group(self.pid);
    }
}

/// The [`EngineSession`] of one Chromium.
pub struct ChromiumSession {
    shared: Arc<Shared>,
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

    let (boots_tx, boots_rx) = watch::channel(0u64);
    let (finished_tx, finished_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        pid,
        browser: Mutex::new(Some(browser)),
        bridge: BridgeClient::new(conn.page.clone(), boots_rx),
        exited: exit_rx,
        finished: finished_rx,
        stopping: AtomicBool::new(false),
        call_timeout: config.call_timeout,
    });
    let (events_tx, events_rx) = mpsc::channel(256);
    let sup = Supervisor {
        shared: shared.clone(),
        page: conn.page,
        events: events_tx,
        boots: boots_tx,
        authenticated: false,
        settled: false,
        ready: false,
        started,
    };
    let watch = Watch {
        bindings: conn.bindings,
        crashes: conn.crashes,
        dead: dead_rx,
    };
    let timing = (config.boot_timeout, config.health_interval);
    tokio::spawn(async move {
        sup.run(watch, timing).await;
        let _ = finished_tx.send(true);
    });
    Ok((ChromiumSession { shared }, events_rx))
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
        self.shared.close_browser().await;
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

    fn pids(&self) -> Vec<u32> {
        // Once the session ended its process group was killed (or it exited by itself).
        if *self.shared.exited.borrow() || *self.shared.finished.borrow() {
            return Vec::new();
        }
        launch::process_tree(self.shared.pid)
    }
}

impl Drop for ChromiumSession {
    /// A session handle dropped without `stop()` takes its browser down with it.
    fn drop(&mut self) {
        if !*self.shared.exited.borrow() {
            self.shared.stopping.store(true, Ordering::SeqCst);
            launch::kill_group(self.shared.pid);
        }
    }
}
