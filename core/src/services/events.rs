//! Publishing events: the runner and the services put every event on `QueueName::Events`, where
//! fan-out picks it up. The session's metadata (its config's free-form key/values) is attached
//! here, once, so every consumer sees it without a lookup.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::ports::{JobQueue, NewJob, QueueName, SessionStore};

#[derive(Clone)]
pub struct EventPublisher {
    sessions: Arc<dyn SessionStore>,
    queue: Arc<dyn JobQueue>,
}

impl EventPublisher {
    pub fn new(sessions: Arc<dyn SessionStore>, queue: Arc<dyn JobQueue>) -> Self {
        Self { sessions, queue }
    }

    /// Attaches the session's metadata (unless the event already carries some) and enqueues the
    /// event. An event of a session that no longer exists is still published, without metadata.
    #[tracing::instrument(skip_all, fields(event_id = %event.id, event_type = event.kind.as_str()))]
    pub async fn publish(&self, mut event: Event) -> Result<()> {
        if let Some(session) = event
            .session_id
            .as_ref()
            .filter(|_| event.metadata.is_empty())
        {
            match self.sessions.get(session).await {
                Ok(s) => event.metadata = s.config.metadata,
                Err(Error::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        self.send(&event).await
    }

    /// Enqueues the event as it is (no metadata lookup).
    pub async fn publish_raw(&self, event: &Event) -> Result<()> {
        self.send(event).await
    }

    async fn send(&self, event: &Event) -> Result<()> {
        let body = serde_json::to_vec(event)
            .map_err(|e| Error::unexpected(format!("event does not serialise: {e}")))?;
        let job = NewJob {
            body,
            ..NewJob::default()
        };
        match self.queue.send(&QueueName::Events, job.clone()).await {
            // A fresh data dir or account: create the queue once and retry.
            Err(Error::NotFound { .. }) => {
                self.queue.ensure(&QueueName::Events).await?;
                self.queue.send(&QueueName::Events, job).await
            }
            other => other,
        }
    }
}
