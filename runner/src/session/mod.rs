//! One hosted session: its lease, its engine, its send loop and its snapshots.
//!
//! A supervisor task per claimed session restores the auth snapshot, starts the engine and
//! then drives it: renews the lease every third of its duration (re-reading the session to see
//! `desired` and config changes), turns engine events into state and events, snapshots after
//! login and periodically (and at a graceful stop or drain), and restarts the engine with backoff when its stream ends. Losing
//! the lease (a renewal refused, a stale epoch on any write, or the lease running out locally)
//! stops the engine at once and drops the session without writing anything more.
//!
//! Layout:
//! - this file: [`SessionCtx`] (what the supervisor, the event handler and the send loop
//!   share): fenced runtime writes, lease renewal, snapshots
//! - `supervise`: the supervisor task (start, drive, restart, hold, finish)
//! - `events`: engine events -> session state, message records, published events

mod events;
mod supervise;

pub(crate) use supervise::supervise;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use openwa_core::Error as CoreError;
use openwa_core::event::EventType;
use openwa_core::id::SessionId;
use openwa_core::session::{DesiredState, RuntimeUpdate, Session, SessionStatus};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::engine::{EngineSession, IsolationMode};
use crate::host::Host;
use crate::pacing::Pacer;
use crate::publish::Publisher;

/// Why a session's engine run (or the whole supervision) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The lease is gone: stop at once, write nothing more.
    Lost,
    /// The user set `desired = stopped`.
    StopRequested,
    /// The runner drains.
    Drain,
    /// The engine stream ended or the engine did not start; restart after a backoff.
    Ended(String),
    /// The device was logged out; wait for the user.
    LoggedOut,
}

/// What the supervisor, the event handler and the send loop of one session share.
pub(crate) struct SessionCtx {
    pub host: Arc<Host>,
    pub id: SessionId,
    /// The fencing token of our claim; carried by every runtime write.
    pub epoch: u64,
    pub profile_dir: PathBuf,
    pub publisher: Publisher,
    pub pacer: Pacer,
    /// The session as last read (config: metadata, pacing, mark-read, proxy).
    pub session: Mutex<Session>,
    /// The status we last wrote; the send loop works only while it is `connected`.
    pub status: watch::Sender<SessionStatus>,
    /// Set once the lease is known lost; every later write is skipped.
    fenced: AtomicBool,
    /// Until when our lease is surely ours (a margin before the stored expiry).
    lease_deadline: Mutex<Instant>,
    /// Whether the profile holds a login worth snapshotting (restored or reached `Ready`).
    logged_in: AtomicBool,
    /// Whether the current engine run reached `Ready` (resets the restart backoff).
    reached_ready: AtomicBool,
    /// The phone a pairing code was last requested for; engine `PairingCode` events (WhatsApp
    /// refreshes the code) carry no phone, so the stored code takes it from here.
    pairing_phone: Mutex<Option<openwa_core::jid::ChatId>>,
    /// WhatsApp key id -> gateway id of this run's recent sends. An ack can arrive before the
    /// send's `sent` write (with the WhatsApp id) is visible in the store, above all on a
    /// remote store; acks of recent sends are matched here, not by a store lookup.
    recent_sends: Mutex<RecentSends>,
    /// Woken by a `Recheck` command: the supervisor re-reads the session (and renews) now.
    pub recheck: tokio::sync::Notify,
}

/// A bounded map of the latest sends' keys (oldest dropped first).
#[derive(Debug, Default)]
pub(crate) struct RecentSends {
    by_key: std::collections::HashMap<String, openwa_core::id::MessageId>,
    order: std::collections::VecDeque<String>,
}

impl RecentSends {
    /// Keys remembered; acks of older sends go through the store.
    const CAPACITY: usize = 4096;

    pub fn insert(&mut self, key: String, id: openwa_core::id::MessageId) {
        if self.by_key.insert(key.clone(), id).is_none() {
            self.order.push_back(key);
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.by_key.remove(&old);
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<openwa_core::id::MessageId> {
        self.by_key.get(key).cloned()
    }
}

impl SessionCtx {
    /// Remembers a send about to happen, so its acks find it (see `recent_sends`).
    pub fn remember_send(&self, key: String, id: openwa_core::id::MessageId) {
        self.recent_sends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, id);
    }

    /// The gateway id of a recent send with WhatsApp key id `key`.
    pub fn recent_send(&self, key: &str) -> Option<openwa_core::id::MessageId> {
        self.recent_sends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
    }

    fn new(host: Arc<Host>, claimed: Session, claimed_at: Instant) -> Self {
        let id = claimed.id.clone();
        let profile_dir = host.config.profiles_root.join(id.as_str());
        let publisher = Publisher::new(
            host.backend.queue.clone(),
            host.backend.clock.clone(),
            id.clone(),
            claimed.config.metadata.clone(),
        );
        let deadline = claimed_at + host.lease_safe_for();
        Self {
            epoch: claimed.lease.epoch,
            pacer: Pacer::new(claimed.config.pacing.clone()),
            status: watch::Sender::new(claimed.status),
            session: Mutex::new(claimed),
            fenced: AtomicBool::new(false),
            lease_deadline: Mutex::new(deadline),
            logged_in: AtomicBool::new(false),
            reached_ready: AtomicBool::new(false),
            pairing_phone: Mutex::new(None),
            recent_sends: Mutex::new(RecentSends::default()),
            recheck: tokio::sync::Notify::new(),
            host,
            id,
            profile_dir,
            publisher,
        }
    }

    /// Whether we may still act for the session (write state, send).
    pub fn set_pairing_phone(&self, phone: Option<openwa_core::jid::ChatId>) {
        *self.pairing_phone.lock().unwrap_or_else(|e| e.into_inner()) = phone;
    }

    pub fn pairing_phone(&self) -> Option<openwa_core::jid::ChatId> {
        self.pairing_phone
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn holds_lease(&self) -> bool {
        !self.fenced.load(Ordering::SeqCst) && Instant::now() < self.deadline()
    }

    fn deadline(&self) -> Instant {
        *self
            .lease_deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn fence(&self) {
        if !self.fenced.swap(true, Ordering::SeqCst) {
            tracing::warn!(session_id = %self.id, epoch = self.epoch, "lease lost; stopping the session here");
        }
    }

    pub fn config(&self) -> openwa_core::session::SessionConfig {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    /// Writes runner-reported state with our epoch. A stale epoch fences the session.
    pub async fn write_runtime(&self, update: &RuntimeUpdate) -> Result<(), Exit> {
        if !self.holds_lease() {
            self.fence();
            return Err(Exit::Lost);
        }
        match self
            .host
            .backend
            .sessions
            .update_runtime(&self.id, self.epoch, update)
            .await
        {
            Ok(stored) => {
                if let Some(status) = update.status {
                    self.status.send_replace(status);
                    self.host.metrics.set_status(&self.id, status);
                }
                *self.session.lock().unwrap_or_else(|e| e.into_inner()) = stored;
                Ok(())
            }
            Err(CoreError::StaleEpoch { .. } | CoreError::NotFound { .. }) => {
                self.fence();
                Err(Exit::Lost)
            }
            Err(error) => {
                tracing::warn!(%error, session_id = %self.id, "session state not written");
                Ok(())
            }
        }
    }

    /// Writes a status change and publishes `session.status` for it.
    pub async fn set_status(
        &self,
        update: RuntimeUpdate,
        extra: serde_json::Value,
    ) -> Result<(), Exit> {
        self.write_runtime(&update).await?;
        let session = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut data = json!({
            "status": session.status,
            "me": session.me,
            "last_error": session.last_error,
        });
        if let (Some(obj), serde_json::Value::Object(more)) = (data.as_object_mut(), extra) {
            obj.extend(more);
        }
        self.publisher.publish(EventType::SessionStatus, data).await;
        Ok(())
    }

    /// Extends the lease and re-reads the session. `Err` says why the session must end here.
    async fn renew(&self) -> Result<(), Exit> {
        let host = &self.host;
        let started = Instant::now();
        let until = host.backend.clock.now()
            + chrono::Duration::from_std(host.config.lease_duration).unwrap_or_default();
        let renewed = tokio::time::timeout(
            host.config.renew_every(),
            host.backend
                .sessions
                .renew(&self.id, &host.config.runner_id, self.epoch, until),
        )
        .await;
        match renewed {
            Ok(Ok(())) => {
                *self
                    .lease_deadline
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = started + host.lease_safe_for()
            }
            Ok(Err(
                CoreError::StaleEpoch { .. }
                | CoreError::NotFound { .. }
                | CoreError::Conflict { .. },
            )) => {
                self.fence();
                return Err(Exit::Lost);
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, session_id = %self.id, "lease renewal failed; retrying")
            }
            Err(_) => tracing::warn!(session_id = %self.id, "lease renewal timed out; retrying"),
        }
        if !self.holds_lease() {
            self.fence();
            return Err(Exit::Lost);
        }
        match host.backend.sessions.get(&self.id).await {
            Ok(s) if s.lease.epoch != self.epoch => {
                self.fence();
                Err(Exit::Lost)
            }
            Ok(s) => {
                let stop = s.desired == DesiredState::Stopped;
                self.pacer.set_config(s.config.pacing.clone());
                self.publisher.set_metadata(s.config.metadata.clone());
                *self.session.lock().unwrap_or_else(|e| e.into_inner()) = s;
                if stop {
                    Err(Exit::StopRequested)
                } else {
                    Ok(())
                }
            }
            Err(CoreError::NotFound { .. }) => {
                self.fence();
                Err(Exit::Lost)
            }
            Err(error) => {
                tracing::warn!(%error, session_id = %self.id, "session not re-read");
                Ok(())
            }
        }
    }

    /// Snapshots the login: the profile directory (process mode) or a dump of `engine`'s live
    /// page (context mode).
    async fn snapshot(&self, engine: &dyn EngineSession) {
        if !self.logged_in.load(Ordering::SeqCst) || !self.holds_lease() {
            return;
        }
        let taken = match self.host.engine.isolation() {
            IsolationMode::Process => self.host.snapshots.take(&self.id, &self.profile_dir).await,
            IsolationMode::Context => match engine.export_auth().await {
                Ok(dump) => self.host.snapshots.take_dump(&self.id, dump).await,
                Err(error) => Err(crate::RunnerError::Snapshot(format!(
                    "dumping the login from the page: {error}"
                ))),
            },
        };
        if let Err(error) = taken {
            tracing::warn!(%error, session_id = %self.id, "auth snapshot failed");
        }
    }
}

#[cfg(test)]
mod recent_sends_tests {
    use super::RecentSends;
    use openwa_core::id::MessageId;

    #[test]
    fn the_latest_sends_are_remembered_and_the_oldest_forgotten() {
        let mut recent = RecentSends::default();
        let first = MessageId::generate();
        recent.insert("K0".into(), first.clone());
        assert_eq!(recent.get("K0"), Some(first));
        for i in 1..=RecentSends::CAPACITY {
            recent.insert(format!("K{i}"), MessageId::generate());
        }
        assert_eq!(
            recent.get("K0"),
            None,
            "the oldest key is dropped at capacity"
        );
        assert!(recent.get(&format!("K{}", RecentSends::CAPACITY)).is_some());
        assert_eq!(recent.by_key.len(), RecentSends::CAPACITY);
    }
}
