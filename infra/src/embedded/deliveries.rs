//! [`DeliveryStore`] and [`EventStore`] on SQLite. Fan-out is idempotent on event id: a
//! delivery is unique per `(webhook, event)` and an event is stored once.

use std::sync::Arc;

use async_trait::async_trait;
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::event::Event;
use openwa_core::id::{DeliveryId, EventId, WebhookId};
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::{DeliveryStore, EventStore};
use openwa_core::webhook::{Delivery, DeliveryAttempt, DeliveryStatus};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};

use super::codec::{PageQuery, opt_text, to_ns};
use super::db::{Db, DbError};

pub struct SqliteDeliveryStore {
    db: Arc<Db>,
}

impl SqliteDeliveryStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

const NOT_FOUND: Error = Error::NotFound {
    resource: "delivery",
};

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::unexpected(e.to_string()))
}

#[async_trait]
impl DeliveryStore for SqliteDeliveryStore {
    #[tracing::instrument(skip_all, fields(webhook_id = %delivery.webhook_id, event_id = %delivery.event_id))]
    async fn create_if_absent(&self, delivery: &Delivery) -> Result<bool> {
        let d = delivery.clone();
        let (body, created) = (json(&d)?, to_ns(d.created_at)?);
        self.db
            .write(move |tx| {
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO deliveries (id, webhook_id, event_id, status, created_ns, body) VALUES (?, ?, ?, ?, ?, ?)
                         ON CONFLICT (webhook_id, event_id) DO NOTHING",
                    )?
                    .execute(params![
                        d.id.as_str(),
                        d.webhook_id.as_str(),
                        d.event_id.as_str(),
                        d.status.as_str(),
                        created,
                        body
                    ])
                    .map_err(DbError::from);
                match inserted {
                    // Same id for another (webhook, event): a caller bug, not a replay.
                    Err(e) if e.is_unique_violation() => Err(Error::conflict(format!("delivery {} exists", d.id)).into()),
                    other => Ok(other? == 1),
                }
            })
            .await
    }

    async fn get(&self, id: &DeliveryId) -> Result<Delivery> {
        let id = id.to_string();
        self.db
            .read(move |conn| {
                let body: Option<String> = conn
                    .prepare_cached("SELECT body FROM deliveries WHERE id = ?")?
                    .query_row([id], |r| r.get(0))
                    .optional()?;
                Ok(serde_json::from_str(&body.ok_or(NOT_FOUND)?)?)
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(delivery_id = %delivery.id, status = delivery.status.as_str()))]
    async fn update(&self, delivery: &Delivery) -> Result<()> {
        let (id, status, body) = (
            delivery.id.to_string(),
            delivery.status.as_str(),
            json(delivery)?,
        );
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached("UPDATE deliveries SET status = ?2, body = ?3 WHERE id = ?1")?
                    .execute(params![id, status, body])?;
                if n == 0 {
                    Err(NOT_FOUND.into())
                } else {
                    Ok(())
                }
            })
            .await
    }

    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<()> {
        let (id, n, body) = (
            attempt.delivery_id.to_string(),
            attempt.attempt,
            json(attempt)?,
        );
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO delivery_attempts (delivery_id, attempt, body) VALUES (?, ?, ?)",
                )?
                .execute(params![id, n, body])?;
                Ok(())
            })
            .await
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<DeliveryAttempt>> {
        let id = id.to_string();
        self.db
            .read(move |conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT body FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt, seq")?;
                let bodies = stmt.query_map([id], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(bodies.iter().map(|b| serde_json::from_str(b)).collect::<serde_json::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn list(
        &self,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> Result<Page<Delivery>> {
        let mut q = PageQuery::new("deliveries", "created_ns");
        q.and("webhook_id = ?", [Value::Text(webhook.to_string())]);
        if let Some(status) = status {
            q.and("status = ?", [Value::Text(status.as_str().to_owned())]);
        }
        let page = page.clone();
        self.db
            .read(move |conn| {
                q.fetch(conn, &page, "", |row| {
                    Ok(serde_json::from_str(&row.get::<_, String>(2)?)?)
                })
            })
            .await
    }

    async fn in_range(
        &self,
        webhook: &WebhookId,
        status: DeliveryStatus,
        since: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let (webhook, since, until) = (webhook.to_string(), to_ns(since)?, to_ns(until)?);
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT body FROM deliveries
                     WHERE webhook_id = ?1 AND status = ?2 AND created_ns >= ?3 AND created_ns < ?4
                     ORDER BY created_ns, id LIMIT ?5",
                )?;
                let bodies = stmt
                    .query_map(
                        params![webhook, status.as_str(), since, until, limit],
                        |r| r.get::<_, String>(0),
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(bodies
                    .iter()
                    .map(|b| serde_json::from_str(b))
                    .collect::<serde_json::Result<Vec<_>>>()?)
            })
            .await
    }
}

pub struct SqliteEventStore {
    db: Arc<Db>,
}

impl SqliteEventStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    #[tracing::instrument(skip_all, fields(event_id = %event.id, kind = event.kind.as_str()))]
    async fn put_if_absent(&self, event: &Event) -> Result<bool> {
        let (id, session, at, body) = (
            event.id.to_string(),
            opt_text(event.session_id.as_ref()),
            to_ns(event.occurred_at)?,
            json(event)?,
        );
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "INSERT INTO events (id, session_id, occurred_ns, body) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    )?
                    .execute(params![id, session, at, body])?;
                Ok(n == 1)
            })
            .await
    }

    async fn get(&self, id: &EventId) -> Result<Event> {
        let id = id.to_string();
        self.db
            .read(move |conn| {
                let body: Option<String> = conn
                    .prepare_cached("SELECT body FROM events WHERE id = ?")?
                    .query_row([id], |r| r.get(0))
                    .optional()?;
                Ok(serde_json::from_str(
                    &body.ok_or(Error::NotFound { resource: "event" })?,
                )?)
            })
            .await
    }
}
