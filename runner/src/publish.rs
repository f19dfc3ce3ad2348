//! Publishing events onto the events queue, stamped with the session's metadata.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use openwa_core::clock::Clock;
use openwa_core::event::{Event, EventType};
use openwa_core::id::SessionId;
use openwa_core::ports::{JobQueue, NewJob, QueueName};

/// One session's event publisher. Publishing is best effort: a failure is logged, never fatal
/// for the session (the state it reports is in the store either way).
pub struct Publisher {
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
    session: SessionId,
    /// The session's `config.metadata`, refreshed when the runner re-reads the session.
    metadata: RwLock<BTreeMap<String, String>>,
}

impl Publisher {
    pub fn new(
        queue: Arc<dyn JobQueue>,
        clock: Arc<dyn Clock>,
        session: SessionId,
        metadata: BTreeMap<String, String>,
    ) -> Self {
        Self {
            queue,
            clock,
            session,
            metadata: RwLock::new(metadata),
        }
    }

    pub fn set_metadata(&self, metadata: BTreeMap<String, String>) {
        *self.metadata.write().unwrap_or_else(|e| e.into_inner()) = metadata;
    }

    /// Builds the event envelope (without sending it).
    pub fn event(&self, kind: EventType, data: serde_json::Value) -> Event {
        let mut event = Event::new(kind, Some(self.session.clone()), self.clock.now(), data);
        event.metadata = self
            .metadata
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        event
    }

    pub async fn publish(&self, kind: EventType, data: serde_json::Value) {
        let event = self.event(kind, data);
        let body = match serde_json::to_vec(&event) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, kind = kind.as_str(), "event not serialisable");
                return;
            }
        };
        let job = NewJob {
            body,
            ..NewJob::default()
        };
        if let Err(error) = self.queue.send(&QueueName::Events, job).await {
            tracing::warn!(%error, session_id = %self.session, event_id = %event.id, kind = kind.as_str(), "event not published");
        }
    }
}
