//! The loop that watches one running session: it turns bridge frames into [`EngineEvent`]s,
//! watches the browser (DevTools connection, process exit, renderer crash, page hang, boot
//! timeout) and ends the event stream exactly once, with a last event that says why.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::inspector::EventTargetCrashed;
use chromiumoxide::cdp::js_protocol::runtime::EventBindingCalled;
use chromiumoxide::listeners::EventStream;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use super::cdp::{self, EvalError};
use super::events::{self, Frame};
use super::session::Shared;
use crate::engine::{EngineError, EngineEvent};

/// Consecutive failed health pings before the page counts as hung.
const HEALTH_MISSES: u32 = 3;
/// Longest wait for one health ping (shorter when pings are more frequent).
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The streams the supervisor watches.
pub(super) struct Watch {
    pub bindings: EventStream<EventBindingCalled>,
    pub crashes: EventStream<EventTargetCrashed>,
    /// Reasons the browser is gone (handler lost DevTools, process exited).
    pub dead: mpsc::Receiver<String>,
}

pub(super) struct Supervisor {
    pub shared: Arc<Shared>,
    pub page: Page,
    pub events: mpsc::Sender<EngineEvent>,
    /// Counts bridge boots; bridge calls wait on it to retry after a reload.
    pub boots: watch::Sender<u64>,
    pub authenticated: bool,
    pub ready: bool,
    /// WhatsApp Web reached a state that needs no more waiting (a QR, ready, conflict, a
    /// block); until then the boot timeout applies (it catches reload loops too).
    pub settled: bool,
    pub started: Instant,
}

impl Supervisor {
    pub async fn run(
        mut self,
        mut w: Watch,
        (boot_timeout, health_interval): (Duration, Duration),
    ) {
        let boot_deadline = tokio::time::sleep(boot_timeout);
        tokio::pin!(boot_deadline);
        let mut health = tokio::time::interval_at(
            tokio::time::Instant::now() + health_interval,
            health_interval,
        );
        let mut misses = 0;
        let last = loop {
            tokio::select! {
                ev = w.bindings.next() => match ev {
                    Some(ev) if ev.name == cdp::BINDING => {
                        if let Some(end) = self.on_frame(&ev.payload).await {
                            break end;
                        }
                    }
                    Some(_) => {}
                    None => break self.browser_gone("DevTools event stream closed".into()),
                },
                Some(_) = w.crashes.next() => break EngineEvent::Failed { error: EngineError::Browser("the WhatsApp Web page crashed".into()) },
                reason = w.dead.recv() => break self.browser_gone(reason.unwrap_or_default()),
                _ = &mut boot_deadline, if !self.settled => {
                    let boots = *self.boots.borrow();
                    let what = if boots == 0 { "did not boot".to_owned() } else { format!("did not settle (booted {boots} times)") };
                    break EngineEvent::Failed { error: EngineError::Timeout(format!("WhatsApp Web {what} within {boot_timeout:?}")) };
                }
                _ = health.tick() => {
                    let limit = PING_TIMEOUT.min(health_interval);
                    match cdp::evaluate(&self.page, "1".into(), false, limit).await {
                        Ok(_) | Err(EvalError::ContextLost) => misses = 0,
                        // A ping racing a graceful stop fails with the closing connection;
                        // the stream ends with `stopped` right after, so it is no hang.
                        Err(_) if self.shared.stopping.load(Ordering::SeqCst) => {}
                        Err(e) => {
                            misses += 1;
                            tracing::warn!(error = %e, misses, "page health check failed");
                            if misses >= HEALTH_MISSES {
                                break EngineEvent::Failed { error: EngineError::Browser(format!("page unresponsive: {e}")) };
                            }
                        }
                    }
                }
            }
        };
        match &last {
            EngineEvent::LoggedOut | EngineEvent::Disconnected { .. } => {
                self.shared.home.close().await
            }
            _ => self.shared.home.abort().await,
        }
        tracing::info!(pid = self.shared.home.pid(), last = ?last, "Chromium session ended");
        let _ = self.events.send(last).await;
    }

    fn browser_gone(&self, reason: String) -> EngineEvent {
        if self.shared.stopping.load(Ordering::SeqCst) {
            EngineEvent::Disconnected {
                reason: "stopped".into(),
            }
        } else {
            EngineEvent::Failed {
                error: EngineError::Browser(reason),
            }
        }
    }

    async fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event).await;
    }

    /// Handles one bridge frame; `Some(last event)` ends the session.
    async fn on_frame(&mut self, payload: &str) -> Option<EngineEvent> {
        let frame = match events::parse(payload) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a bridge frame");
                return None;
            }
        };
        let decoded = match frame {
            Frame::Boot { version, url } => {
                self.boots.send_modify(|n| *n += 1);
                tracing::debug!(%version, url = %url.split('?').next().unwrap_or_default(), "bridge booted");
                return None;
            }
            Frame::SurfaceChanged {
                version,
                module,
                member,
                detail,
            } => {
                return Some(EngineEvent::Failed {
                    error: events::surface_error(version, module, member, detail),
                });
            }
            Frame::LoggedOut { reason } => {
                tracing::info!(reason = reason.as_deref().unwrap_or_default(), "logged out");
                return Some(EngineEvent::LoggedOut);
            }
            Frame::Log { level, message } => {
                match level.as_str() {
                    "error" | "warn" => tracing::warn!(%message, "bridge"),
                    _ => tracing::debug!(%message, "bridge"),
                }
                return None;
            }
            Frame::State { state } => {
                if !matches!(
                    state.as_str(),
                    "OPENING" | "UNLAUNCHED" | "PAIRING" | "CONNECTED" | "TIMEOUT"
                ) {
                    self.settled = true;
                }
                if matches!(
                    state.as_str(),
                    "TIMEOUT" | "UNPAIRED" | "UNPAIRED_IDLE" | "CONFLICT"
                ) {
                    self.ready = false;
                }
                if state.starts_with("UNPAIRED") {
                    self.authenticated = false;
                }
                let dropped = state == "TIMEOUT";
                self.emit(EngineEvent::State {
                    state: state.clone(),
                })
                .await;
                if dropped {
                    self.emit(EngineEvent::Disconnected {
                        reason: "connection to WhatsApp lost (TIMEOUT); reconnecting".into(),
                    })
                    .await;
                }
                return None;
            }
            Frame::Qr { payload } => Ok(EngineEvent::Qr {
                payload,
                expires_at: chrono::Utc::now() + events::QR_LIFETIME,
            }),
            Frame::PairingCode { code } => Ok(EngineEvent::PairingCode { code }),
            Frame::Authenticated {} => {
                if std::mem::replace(&mut self.authenticated, true) {
                    return None;
                }
                Ok(EngineEvent::Authenticated)
            }
            Frame::Ready { me } => {
                self.settled = true;
                if self.ready {
                    return None;
                }
                if !std::mem::replace(&mut self.authenticated, true) {
                    self.emit(EngineEvent::Authenticated).await;
                }
                self.ready = true;
                tracing::info!(
                    elapsed_ms = self.started.elapsed().as_millis() as u64,
                    "session ready"
                );
                events::me(me).map(|me| EngineEvent::Ready { me })
            }
            Frame::Message { msg } => events::message(msg),
            Frame::Group { msg, recipients } => events::group(msg, recipients),
            Frame::Ack { id, ack } => events::ack(&id, ack),
            Frame::Revoked { id } => events::revoked(&id),
            Frame::Edited { id, body } => events::edited(&id, body),
            Frame::Reaction {
                target,
                sender,
                emoji,
            } => events::reaction(&target, &sender, emoji),
        };
        match decoded {
            Ok(event) => self.emit(event).await,
            Err(e) => tracing::warn!(error = %e, "dropping an undecodable bridge event"),
        }
        None
    }
}
