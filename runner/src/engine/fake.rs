//! A scripted in-process engine for tests: no browser, no network.
//!
//! - Starting shows a QR (`Qr`), and after [`FakeEngine::scan`] (or automatically, with
//!   [`FakeOptions::auto_scan`]) writes a login marker into the profile's `Default/IndexedDB`
//!   and reports `Authenticated` + `Ready`. A start that finds the marker (a restored snapshot)
//!   goes straight to `Ready` and records the run as `restored`.
//! - Sends land in one shared "recipient inbox" keyed by `wa_key`; a send whose key is there
//!   already returns it with `already_sent = true` (the idempotency the real engine gives).
//! - With [`FakeOptions::isolation`] = `Context` the login lives only in the run (like a
//!   browser context): `export_auth` dumps it while the run is live, and a start restores it
//!   from [`SessionSpec::auth_dump`] (nothing is written to the profile).
//! - Every run's start and stop time is recorded, to check that two runners never run one
//!   session at once.
//! - Faults: fail the next sends, make a chat slow, or "crash" (panic) right after a send took
//!   effect; events (inbound messages, acks, disconnects, logout) can be emitted on demand.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use openwa_core::id::SessionId;
use openwa_core::jid::{ChatId, WaMessageId};
use openwa_core::session::Me;
use tokio::sync::{Notify, mpsc};

use super::{
    AuthDump, Engine, EngineError, EngineEvent, EngineSession, IsolationMode, OutgoingMessage,
    SendReceipt, SessionSpec,
};

/// Where the fake keeps its "login" inside the profile.
pub const LOGIN_MARKER: &str = "Default/IndexedDB/fake-login";

#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// Scan the QR by itself after this long; `None` waits for [`FakeEngine::scan`].
    pub auto_scan: Option<Duration>,
    /// The account that logs in.
    pub me: ChatId,
    /// Where the login lives: the profile (process) or only the live run (context).
    pub isolation: IsolationMode,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            auto_scan: Some(Duration::from_millis(20)),
            me: ChatId::parse("15550100000").expect("valid phone"),
            isolation: IsolationMode::Process,
        }
    }
}

/// The context-mode dump of a logged-in fake session.
fn login_dump(session: &SessionId) -> Vec<u8> {
    format!("fake-login:{session}").into_bytes()
}

/// One message that reached a recipient.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub session: SessionId,
    pub chat: ChatId,
    pub wa_key: String,
    pub wa_id: WaMessageId,
    pub text: Option<String>,
    pub at: Instant,
}

/// One engine run of a session.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub session: SessionId,
    pub profile_dir: PathBuf,
    /// The login marker was there at start, or (context mode) the spec carried this
    /// session's login dump: restored from a snapshot.
    pub restored: bool,
    pub started: Instant,
    pub stopped: Option<Instant>,
}

#[derive(Default)]
struct Faults {
    fail_next: VecDeque<EngineError>,
    panic_after_send: u32,
    slow_chats: HashMap<ChatId, Duration>,
}

struct Live {
    run: usize,
    session: SessionId,
    events: mpsc::Sender<EngineEvent>,
    scanned: Arc<Notify>,
    script: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    options: Mutex<FakeOptions>,
    inbox: Mutex<Vec<Delivered>>,
    runs: Mutex<Vec<RunRecord>>,
    live: Mutex<Vec<Live>>,
    faults: Mutex<Faults>,
}

/// The fake engine; clones share everything (inbox, runs, faults).
#[derive(Clone, Default)]
pub struct FakeEngine {
    shared: Arc<Shared>,
}

impl FakeEngine {
    pub fn new(options: FakeOptions) -> Self {
        let engine = Self::default();
        *lock(&engine.shared.options) = options;
        engine
    }

    /// Scans the QR of the session's waiting runs.
    pub fn scan(&self, session: &SessionId) {
        for live in lock(&self.shared.live)
            .iter()
            .filter(|l| &l.session == session)
        {
            live.scanned.notify_one();
        }
    }

    /// Emits an event on every live run of the session; false if none is live.
    pub async fn emit(&self, session: &SessionId, event: EngineEvent) -> bool {
        let senders: Vec<_> = lock(&self.shared.live)
            .iter()
            .filter(|l| &l.session == session)
            .map(|l| l.events.clone())
            .collect();
        let mut sent = false;
        for tx in senders {
            sent |= tx.send(event.clone()).await.is_ok();
        }
        sent
    }

    /// Emits `last` and ends the session's event streams (the browser died).
    pub async fn crash(&self, session: &SessionId, last: EngineEvent) {
        self.emit(session, last).await;
        let ended: Vec<Live> = {
            let mut live = lock(&self.shared.live);
            let (gone, keep) = live.drain(..).partition(|l| &l.session == session);
            *live = keep;
            gone
        };
        for l in ended {
            l.script.abort();
            self.mark_stopped(l.run);
        }
    }

    /// The next sends fail with these errors (before reaching anyone).
    pub fn fail_next_sends(&self, errors: impl IntoIterator<Item = EngineError>) {
        lock(&self.shared.faults).fail_next.extend(errors);
    }

    /// The next `n` sends deliver and then panic before returning: a crash between the send
    /// and its acknowledgement.
    pub fn panic_after_next_sends(&self, n: u32) {
        lock(&self.shared.faults).panic_after_send += n;
    }

    /// Sends to `chat` take this long.
    pub fn slow_chat(&self, chat: &ChatId, delay: Duration) {
        lock(&self.shared.faults)
            .slow_chats
            .insert(chat.clone(), delay);
    }

    /// Everything delivered, in delivery order.
    pub fn inbox(&self) -> Vec<Delivered> {
        lock(&self.shared.inbox).clone()
    }

    /// What `chat` received, in order.
    pub fn received_by(&self, chat: &ChatId) -> Vec<Delivered> {
        self.inbox()
            .into_iter()
            .filter(|d| &d.chat == chat)
            .collect()
    }

    pub fn runs(&self, session: &SessionId) -> Vec<RunRecord> {
        lock(&self.shared.runs)
            .iter()
            .filter(|r| &r.session == session)
            .cloned()
            .collect()
    }

    /// Runs of the session that have not stopped.
    pub fn running(&self, session: &SessionId) -> usize {
        self.runs(session)
            .iter()
            .filter(|r| r.stopped.is_none())
            .count()
    }

    fn mark_stopped(&self, run: usize) {
        if let Some(r) = lock(&self.shared.runs).get_mut(run)
            && r.stopped.is_none()
        {
            r.stopped = Some(Instant::now());
        }
    }
}

#[async_trait]
impl Engine for FakeEngine {
    async fn start(
        &self,
        spec: SessionSpec,
    ) -> Result<(Box<dyn EngineSession>, mpsc::Receiver<EngineEvent>), EngineError> {
        let options = lock(&self.shared.options).clone();
        let context = options.isolation == IsolationMode::Context;
        let marker = spec.profile_dir.join(LOGIN_MARKER);
        let restored = if context {
            spec.auth_dump
                .as_ref()
                .is_some_and(|d| d.as_bytes() == login_dump(&spec.session_id))
        } else {
            marker.exists()
        };
        let logged_in = Arc::new(AtomicBool::new(restored));
        let run = {
            let mut runs = lock(&self.shared.runs);
            runs.push(RunRecord {
                session: spec.session_id.clone(),
                profile_dir: spec.profile_dir.clone(),
                restored,
                started: Instant::now(),
                stopped: None,
            });
            runs.len() - 1
        };
        let (tx, rx) = mpsc::channel(64);
        let scanned = Arc::new(Notify::new());
        let me = Me {
            jid: options.me.clone(),
            push_name: Some("Fake".into()),
        };
        let script = tokio::spawn({
            let (tx, scanned, logged_in) = (tx.clone(), scanned.clone(), logged_in.clone());
            async move {
                if !restored {
                    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(20);
                    let _ = tx
                        .send(EngineEvent::Qr {
                            payload: format!("2@fake,{run}"),
                            expires_at,
                        })
                        .await;
                    match options.auto_scan {
                        Some(after) => tokio::time::sleep(after).await,
                        None => scanned.notified().await,
                    }
                    if !context {
                        if let Some(dir) = marker.parent() {
                            let _ = std::fs::create_dir_all(dir);
                        }
                        let _ = std::fs::write(&marker, b"logged in");
                    }
                    logged_in.store(true, Ordering::SeqCst);
                    let _ = tx.send(EngineEvent::Authenticated).await;
                }
                let _ = tx.send(EngineEvent::Ready { me }).await;
            }
        });
        lock(&self.shared.live).push(Live {
            run,
            session: spec.session_id.clone(),
            events: tx,
            scanned,
            script,
        });
        let session = FakeSession {
            engine: self.clone(),
            run,
            session: spec.session_id,
            profile_dir: spec.profile_dir,
            logged_in,
        };
        Ok((Box::new(session), rx))
    }

    fn isolation(&self) -> IsolationMode {
        lock(&self.shared.options).isolation
    }
}

/// One run of the fake.
pub struct FakeSession {
    engine: FakeEngine,
    run: usize,
    session: SessionId,
    profile_dir: PathBuf,
    /// The run's login (context mode keeps it nowhere else).
    logged_in: Arc<AtomicBool>,
}

impl FakeSession {
    fn is_live(&self) -> bool {
        lock(&self.engine.shared.live)
            .iter()
            .any(|l| l.run == self.run)
    }

    fn end(&self) {
        let ended: Vec<Live> = {
            let mut live = lock(&self.engine.shared.live);
            let (gone, keep) = live.drain(..).partition(|l| l.run == self.run);
            *live = keep;
            gone
        };
        for l in ended {
            l.script.abort();
        }
        self.engine.mark_stopped(self.run);
    }
}

impl Drop for FakeSession {
    fn drop(&mut self) {
        self.end();
    }
}

#[async_trait]
impl EngineSession for FakeSession {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, EngineError> {
        if !self.is_live() {
            return Err(EngineError::NotReady("stopped".into()));
        }
        let delay = lock(&self.engine.shared.faults)
            .slow_chats
            .get(&msg.chat)
            .copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(error) = lock(&self.engine.shared.faults).fail_next.pop_front() {
            return Err(error);
        }
        let wa_id = WaMessageId::outgoing(&msg.chat, &msg.wa_key)
            .map_err(|e| EngineError::Rejected(e.to_string()))?;
        {
            let mut inbox = lock(&self.engine.shared.inbox);
            if inbox
                .iter()
                .any(|d| d.session == self.session && d.wa_key == msg.wa_key)
            {
                return Ok(SendReceipt {
                    wa_id,
                    already_sent: true,
                });
            }
            inbox.push(Delivered {
                session: self.session.clone(),
                chat: msg.chat.clone(),
                wa_key: msg.wa_key.clone(),
                wa_id: wa_id.clone(),
                text: msg.content.text().map(str::to_owned),
                at: Instant::now(),
            });
        }
        let crash = {
            let mut faults = lock(&self.engine.shared.faults);
            let crash = faults.panic_after_send > 0;
            faults.panic_after_send = faults.panic_after_send.saturating_sub(1);
            crash
        };
        if crash {
            panic!("injected fault: crashed after the send took effect");
        }
        Ok(SendReceipt {
            wa_id,
            already_sent: false,
        })
    }

    async fn request_pairing_code(&self, _phone: &ChatId) -> Result<String, EngineError> {
        Ok("FAKE-CODE".into())
    }

    async fn check_number(&self, phone: &ChatId) -> Result<Option<ChatId>, EngineError> {
        Ok(Some(phone.clone()))
    }

    async fn mark_read(&self, _chat: &ChatId) -> Result<(), EngineError> {
        Ok(())
    }

    async fn logout(&self) -> Result<(), EngineError> {
        let _ = std::fs::remove_file(self.profile_dir.join(LOGIN_MARKER));
        self.logged_in.store(false, Ordering::SeqCst);
        self.engine
            .crash(&self.session, EngineEvent::LoggedOut)
            .await;
        Ok(())
    }

    async fn stop(&self) -> Result<(), EngineError> {
        self.end();
        Ok(())
    }

    async fn export_auth(&self) -> Result<AuthDump, EngineError> {
        if lock(&self.engine.shared.options).isolation != IsolationMode::Context {
            return Err(EngineError::NotReady(
                "process mode: the login is in the profile".into(),
            ));
        }
        // Like a disposed browser context: once stopped, the login is gone.
        if !self.is_live() {
            return Err(EngineError::Browser("the run has ended".into()));
        }
        if !self.logged_in.load(Ordering::SeqCst) {
            return Ok(AuthDump::from_bytes(b"fake-unlinked".to_vec()));
        }
        Ok(AuthDump::from_bytes(login_dump(&self.session)))
    }

    fn pids(&self) -> Vec<u32> {
        Vec::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
