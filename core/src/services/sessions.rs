//! Session management as the user sees it: the record, its config and its desired state.
//! Runtime status comes from runners (through the lease-fenced store calls), not from here.

use std::sync::Arc;

use crate::apikey::Role;
use crate::auth::Principal;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::jid::ChatId;
use crate::page::{Page, PageRequest};
use crate::ports::{JobQueue, MessageStore, NewJob, QueueName, SessionFilter, SessionStore};
use crate::services::AuditLog;
use crate::session::{
    DesiredState, Session, SessionCommand, SessionConfig, SessionStatus, validate_name,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id: SessionId,
    pub name: Option<String>,
    pub config: SessionConfig,
    /// Set `desired = running` right away.
    pub start: bool,
}

/// A partial update; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionPatch {
    /// `Some(None)` clears the name.
    pub name: Option<Option<String>>,
    pub config: Option<SessionConfig>,
}

/// Optimistic updates retry this often on a concurrent write before reporting a conflict.
const UPDATE_ATTEMPTS: usize = 5;

#[derive(Clone)]
pub struct SessionService {
    store: Arc<dyn SessionStore>,
    messages: Arc<dyn MessageStore>,
    queue: Arc<dyn JobQueue>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
}

impl SessionService {
    pub fn new(
        store: Arc<dyn SessionStore>,
        messages: Arc<dyn MessageStore>,
        queue: Arc<dyn JobQueue>,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            messages,
            queue,
            audit,
            clock,
        }
    }

    #[tracing::instrument(skip_all, fields(session_id = %new.id))]
    pub async fn create(&self, who: &Principal, new: NewSession) -> Result<Session> {
        who.require(Role::Operator)?;
        if !who.can_see(&new.id) {
            return Err(Error::forbidden("this key may not manage that session id"));
        }
        let mut session = Session::new(new.id, new.name, new.config, self.clock.now())?;
        if new.start {
            session.desired = DesiredState::Running;
            session.status = SessionStatus::Starting;
        }
        // The queues first: a session must never exist without them.
        self.queue
            .ensure(&QueueName::Send(session.id.clone()))
            .await?;
        self.queue
            .ensure(&QueueName::Control(session.id.clone()))
            .await?;
        self.store.create(&session).await?;
        self.audit
            .record(
                Some(who),
                "session.create",
                format!("session:{}", session.id),
                Some(session.id.clone()),
                "ok",
            )
            .await;
        Ok(session)
    }

    pub async fn list(
        &self,
        who: &Principal,
        status: Option<SessionStatus>,
        page: &PageRequest,
    ) -> Result<Page<Session>> {
        who.require(Role::Viewer)?;
        let filter = SessionFilter {
            only: who.allowed_sessions.clone(),
            status,
        };
        self.store.list(&filter, page).await
    }

    pub async fn get(&self, who: &Principal, id: &SessionId) -> Result<Session> {
        who.require(Role::Viewer)?;
        who.check_session(id)?;
        self.store.get(id).await
    }

    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn update(
        &self,
        who: &Principal,
        id: &SessionId,
        patch: SessionPatch,
    ) -> Result<Session> {
        who.require(Role::Operator)?;
        who.check_session(id)?;
        if let Some(name) = &patch.name {
            validate_name(name.as_deref())?;
        }
        if let Some(config) = &patch.config {
            config.validate()?;
        }
        let updated = self
            .modify(id, |s| {
                if let Some(name) = &patch.name {
                    s.name.clone_from(name);
                }
                if let Some(config) = &patch.config {
                    s.config = config.clone();
                }
            })
            .await?;
        self.audit
            .record(
                Some(who),
                "session.update",
                format!("session:{id}"),
                Some(id.clone()),
                "ok",
            )
            .await;
        Ok(updated)
    }

    /// Start (`Running`) or stop (`Stopped`): only the desired state changes here; a runner
    /// acts on it. A stop of a session whose lease is live also tells the holder to re-read
    /// the session at once ([`SessionCommand::Recheck`]), so the stop starts now, not at the
    /// holder's next lease renewal; if that hint is lost, the renewal still finds the stop.
    #[tracing::instrument(skip_all, fields(session_id = %id, desired = desired.as_str()))]
    pub async fn set_desired(
        &self,
        who: &Principal,
        id: &SessionId,
        desired: DesiredState,
    ) -> Result<Session> {
        who.require(Role::Operator)?;
        who.check_session(id)?;
        let updated = self.modify(id, |s| s.desired = desired).await?;
        if desired == DesiredState::Stopped
            && updated.lease.is_live(self.clock.now())
            && let Err(error) = self.command(id, &SessionCommand::Recheck).await
        {
            tracing::warn!(%error, "the session's holder was not told of the stop; it finds it at its next lease renewal");
        }
        let action = match desired {
            DesiredState::Running => "session.start",
            DesiredState::Stopped => "session.stop",
        };
        self.audit
            .record(
                Some(who),
                action,
                format!("session:{id}"),
                Some(id.clone()),
                "ok",
            )
            .await;
        Ok(updated)
    }

    /// Deletes the session, its messages and its send queue.
    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn delete(&self, who: &Principal, id: &SessionId) -> Result<()> {
        who.require(Role::Operator)?;
        who.check_session(id)?;
        let session = self.store.get(id).await?;
        if session.lease.is_live(self.clock.now()) && session.desired == DesiredState::Running {
            return Err(Error::conflict(
                "the session is running; stop it before deleting it",
            ));
        }
        self.store.delete(id).await?;
        self.messages.delete_session(id).await?;
        self.queue.delete(&QueueName::Send(id.clone())).await?;
        self.queue.delete(&QueueName::Control(id.clone())).await?;
        self.audit
            .record(
                Some(who),
                "session.delete",
                format!("session:{id}"),
                Some(id.clone()),
                "ok",
            )
            .await;
        Ok(())
    }

    /// Asks the runner holding the session for a pairing code for `phone` (linking by phone
    /// number instead of QR). The code appears on the session (`pairing_code`) and as a
    /// `session.pairing_code` event. `Conflict` unless the session is waiting for a login.
    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn request_pairing_code(
        &self,
        who: &Principal,
        id: &SessionId,
        phone: ChatId,
    ) -> Result<Session> {
        who.require(Role::Operator)?;
        who.check_session(id)?;
        if phone.kind() != crate::jid::ChatKind::User {
            return Err(Error::invalid("phone", "must be a phone number"));
        }
        let session = self.store.get(id).await?;
        let waiting = matches!(
            session.status,
            SessionStatus::Starting | SessionStatus::Qr | SessionStatus::Pairing
        );
        if session.desired != DesiredState::Running || !waiting {
            return Err(Error::conflict(
                "the session is not waiting for a login; start it and wait for status qr",
            ));
        }
        self.command(id, &SessionCommand::RequestPairingCode { phone })
            .await?;
        self.audit
            .record(
                Some(who),
                "session.pairing_code",
                format!("session:{id}"),
                Some(id.clone()),
                "ok",
            )
            .await;
        Ok(session)
    }

    /// Asks the runner holding the session to log the device out. The login and its snapshot
    /// are gone afterwards; the status becomes `logged_out`.
    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn logout(&self, who: &Principal, id: &SessionId) -> Result<Session> {
        who.require(Role::Operator)?;
        who.check_session(id)?;
        let session = self.store.get(id).await?;
        if !session.lease.is_live(self.clock.now()) {
            return Err(Error::conflict(
                "no runner holds the session; start it first",
            ));
        }
        self.command(id, &SessionCommand::Logout).await?;
        self.audit
            .record(
                Some(who),
                "session.logout",
                format!("session:{id}"),
                Some(id.clone()),
                "ok",
            )
            .await;
        Ok(session)
    }

    async fn command(&self, id: &SessionId, command: &SessionCommand) -> Result<()> {
        let body = serde_json::to_vec(command).map_err(|e| Error::unexpected(e.to_string()))?;
        let queue = QueueName::Control(id.clone());
        let job = || NewJob {
            body: body.clone(),
            ..NewJob::default()
        };
        match self.queue.send(&queue, job()).await {
            // Sessions created before control queues existed: heal.
            Err(Error::NotFound { .. }) => {
                self.queue.ensure(&queue).await?;
                self.queue.send(&queue, job()).await
            }
            other => other,
        }
    }

    /// Read-modify-write with optimistic concurrency.
    async fn modify(&self, id: &SessionId, change: impl Fn(&mut Session)) -> Result<Session> {
        for _ in 0..UPDATE_ATTEMPTS {
            let mut session = self.store.get(id).await?;
            change(&mut session);
            session.updated_at = self.clock.now();
            match self.store.update(&session).await {
                Err(Error::Conflict { .. }) => continue,
                other => return other,
            }
        }
        Err(Error::conflict("the session changed concurrently; retry"))
    }
}
