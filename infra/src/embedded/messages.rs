//! [`MessageStore`] on SQLite: idempotent inserts on `(session, idempotency key)`, forward-only
//! status changes, lookups by WhatsApp id and filtered newest-first listings. An accepted send
//! (message, audit entry, `message.queued` event on the job queue) is one transaction: the
//! queue lives in the same database, so it is its own outbox.

use std::sync::Arc;

use async_trait::async_trait;
use openwa_core::clock::Clock;
use openwa_core::error::{Error, Result};
use openwa_core::id::{MessageId, SessionId};
use openwa_core::jid::WaMessageId;
use openwa_core::message::{Message, StatusUpdate};
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::{Acceptance, Inserted, MessageFilter, MessageStore, QueueName};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::codec::{PageQuery, opt_text, to_ns};
use super::db::{Db, DbError, DbResult};
use super::queue::SqliteJobQueue;

pub struct SqliteMessageStore {
    db: Arc<Db>,
    /// The job queue of the same database: accepted sends put their event on it in the
    /// message's own transaction.
    queue: Arc<SqliteJobQueue>,
    clock: Arc<dyn Clock>,
}

impl SqliteMessageStore {
    pub(crate) fn new(db: Arc<Db>, queue: Arc<SqliteJobQueue>, clock: Arc<dyn Clock>) -> Self {
        Self { db, queue, clock }
    }
}

const NOT_FOUND: Error = Error::NotFound {
    resource: "message",
};

/// Decodes `body, request_fingerprint` starting at column `at`.
fn decode(row: &Row<'_>, at: usize) -> DbResult<Message> {
    let mut m: Message = serde_json::from_str(&row.get::<_, String>(at)?)?;
    m.request_fingerprint = row.get(at + 1)?;
    Ok(m)
}

fn find(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> DbResult<Option<Message>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let found = stmt
        .query_row(params, |row| Ok(decode(row, 0)))
        .optional()?;
    found.transpose()
}

fn by_id(conn: &Connection, session: &str, id: &str) -> DbResult<Option<Message>> {
    find(
        conn,
        "SELECT body, request_fingerprint FROM messages WHERE id = ?1 AND session_id = ?2",
        params![id, session],
    )
}

/// Inserts `m` inside the caller's write transaction (idempotent on the session's key).
fn insert_in(tx: &Transaction<'_>, m: &Message) -> DbResult<Inserted> {
    let body = serde_json::to_string(m).map_err(|e| Error::unexpected(e.to_string()))?;
    let created = to_ns(m.created_at)?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO messages (id, session_id, chat_id, direction, status, wa_id, idempotency_key,
                                   request_fingerprint, created_ns, body)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            m.id.as_str(),
            m.session_id.as_str(),
            m.chat_id.as_str(),
            m.direction.as_str(),
            m.status.as_str(),
            opt_text(m.wa_id.as_ref()),
            m.idempotency_key,
            m.request_fingerprint,
            created,
            body,
        ])
        .map_err(DbError::from);
    match inserted {
        Ok(_) => Ok(Inserted::Created),
        Err(e) if e.is_unique_violation() => {
            let existing = match &m.idempotency_key {
                Some(key) => find(
                    tx,
                    "SELECT body, request_fingerprint FROM messages WHERE session_id = ?1 AND idempotency_key = ?2",
                    params![m.session_id.as_str(), key],
                )?,
                None => None,
            };
            existing
                .map(Inserted::Existing)
                .ok_or_else(|| Error::conflict(format!("message {} exists", m.id)).into())
        }
        Err(e) => Err(e),
    }
}

#[async_trait]
impl MessageStore for SqliteMessageStore {
    #[tracing::instrument(skip_all, fields(session_id = %message.session_id, message_id = %message.id))]
    async fn insert(&self, message: &Message) -> Result<Inserted> {
        let m = message.clone();
        self.db.write(move |tx| insert_in(tx, &m)).await
    }

    #[tracing::instrument(skip_all, fields(session_id = %acceptance.message.session_id, message_id = %acceptance.message.id))]
    async fn accept(&self, acceptance: &Acceptance) -> Result<Inserted> {
        let a = acceptance.clone();
        let now = to_ns(self.clock.now())?;
        let inserted = self
            .db
            .write(move |tx| {
                let session = super::sessions::load(tx, a.message.session_id.as_str())?;
                let inserted = insert_in(tx, &a.message)?;
                if inserted == Inserted::Created {
                    super::keys::append_in(tx, &a.audit)?;
                    let mut event = a.event;
                    if event.metadata.is_empty() {
                        event.metadata = session.config.metadata;
                    }
                    let body = serde_json::to_vec(&event)
                        .map_err(|e| Error::unexpected(format!("event does not serialise: {e}")))?;
                    SqliteJobQueue::send_in(tx, &QueueName::Events, &body, now)?;
                }
                Ok(inserted)
            })
            .await?;
        if inserted == Inserted::Created {
            self.queue.wake(&QueueName::Events);
        }
        Ok(inserted)
    }

    async fn get(&self, session: &SessionId, id: &MessageId) -> Result<Message> {
        let (session, id) = (session.as_str().to_owned(), id.as_str().to_owned());
        self.db
            .read(move |conn| by_id(conn, &session, &id)?.ok_or_else(|| NOT_FOUND.into()))
            .await
    }

    async fn get_by_wa_id(&self, session: &SessionId, wa_id: &WaMessageId) -> Result<Message> {
        let (session, wa_id) = (session.as_str().to_owned(), wa_id.to_string());
        self.db
            .read(move |conn| {
                find(
                    conn,
                    "SELECT body, request_fingerprint FROM messages WHERE session_id = ?1 AND wa_id = ?2
                     ORDER BY created_ns DESC LIMIT 1",
                    params![session, wa_id],
                )?
                .ok_or_else(|| NOT_FOUND.into())
            })
            .await
    }

    async fn list(
        &self,
        session: &SessionId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Page<Message>> {
        let mut q = PageQuery::new("messages", "created_ns");
        q.and("session_id = ?", [Value::Text(session.to_string())]);
        if let Some(chat) = &filter.chat_id {
            q.and("chat_id = ?", [Value::Text(chat.to_string())]);
        }
        if let Some(direction) = filter.direction {
            q.and(
                "direction = ?",
                [Value::Text(direction.as_str().to_owned())],
            );
        }
        if let Some(status) = filter.status {
            q.and("status = ?", [Value::Text(status.as_str().to_owned())]);
        }
        let page = page.clone();
        // Rows are `<time>, id, body, request_fingerprint`.
        self.db
            .read(move |conn| q.fetch(conn, &page, "request_fingerprint", |row| decode(row, 2)))
            .await
    }

    #[tracing::instrument(skip_all, fields(session_id = %session, message_id = %id, status = update.status.as_str()))]
    async fn update_status(
        &self,
        session: &SessionId,
        id: &MessageId,
        update: &StatusUpdate,
    ) -> Result<Message> {
        let (session, id, update) = (
            session.as_str().to_owned(),
            id.as_str().to_owned(),
            update.clone(),
        );
        self.db
            .write(move |tx| {
                let mut m = by_id(tx, &session, &id)?.ok_or(NOT_FOUND)?;
                if !m.status.can_become(update.status) {
                    return Ok(m);
                }
                m.status = update.status;
                if update.wa_id.is_some() {
                    m.wa_id = update.wa_id;
                }
                if update.failure.is_some() {
                    m.failure = update.failure;
                }
                m.updated_at = update.at;
                tx.prepare_cached(
                    "UPDATE messages SET status = ?2, wa_id = ?3, body = ?4 WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    m.status.as_str(),
                    opt_text(m.wa_id.as_ref()),
                    serde_json::to_string(&m)?,
                ])?;
                Ok(m)
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(session_id = %session))]
    async fn delete_session(&self, session: &SessionId) -> Result<u64> {
        let session = session.as_str().to_owned();
        self.db
            .write(move |tx| {
                Ok(tx
                    .prepare_cached("DELETE FROM messages WHERE session_id = ?")?
                    .execute([session])? as u64)
            })
            .await
    }
}
