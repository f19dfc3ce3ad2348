//! [`DeliveryStore`] and [`EventStore`] on SQLite. Fan-out is idempotent on event id: a
//! delivery is unique per `(webhook, event)` and an event is stored once. A fan-out batch
//! (events and their deliveries) is one write transaction, and so is an attempt together with
//! the delivery's new state.

use std::sync::Arc;

use async_trait::async_trait;
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::event::Event;
use openwa_core::id::{DeliveryId, EventId, WebhookId};
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::store::{Expansion, ExpansionStored};
use openwa_core::ports::{DeliveryStore, EventStore};
use openwa_core::webhook::{Delivery, DeliveryAttempt, DeliveryStatus};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params};

use super::codec::{PageQuery, opt_text, to_ns};
use super::db::{Db, DbError, DbResult};

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

/// Inserts `d` unless a delivery of its (webhook, event) exists; whether it was inserted.
fn insert_delivery(tx: &Transaction<'_>, d: &Delivery) -> DbResult<bool> {
    let (body, created) = (json(d)?, to_ns(d.created_at)?);
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
        Err(e) if e.is_unique_violation() => {
            Err(Error::conflict(format!("delivery {} exists", d.id)).into())
        }
        other => Ok(other? == 1),
    }
}

/// Inserts `event` unless its id exists; whether it was inserted.
fn insert_event(tx: &Transaction<'_>, event: &Event) -> DbResult<bool> {
    let n = tx
        .prepare_cached(
            "INSERT INTO events (id, session_id, occurred_ns, body) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            event.id.as_str(),
            opt_text(event.session_id.as_ref()),
            to_ns(event.occurred_at)?,
            json(event)?
        ])?;
    Ok(n == 1)
}

/// Replaces the delivery's status and body; `NotFound` if it is absent.
fn update_delivery(tx: &Transaction<'_>, d: &Delivery) -> DbResult<()> {
    let n = tx
        .prepare_cached("UPDATE deliveries SET status = ?2, body = ?3 WHERE id = ?1")?
        .execute(params![d.id.as_str(), d.status.as_str(), json(d)?])?;
    if n == 0 {
        Err(NOT_FOUND.into())
    } else {
        Ok(())
    }
}

fn insert_attempt(tx: &Transaction<'_>, a: &DeliveryAttempt) -> DbResult<()> {
    tx.prepare_cached(
        "INSERT INTO delivery_attempts (delivery_id, attempt, body) VALUES (?, ?, ?)",
    )?
    .execute(params![a.delivery_id.as_str(), a.attempt, json(a)?])?;
    Ok(())
}

#[async_trait]
impl DeliveryStore for SqliteDeliveryStore {
    #[tracing::instrument(skip_all, fields(webhook_id = %delivery.webhook_id, event_id = %delivery.event_id))]
    async fn create_if_absent(&self, delivery: &Delivery) -> Result<bool> {
        let d = delivery.clone();
        self.db.write(move |tx| insert_delivery(tx, &d)).await
    }

    #[tracing::instrument(skip_all, fields(events = batch.len()))]
    async fn create_expansions(&self, batch: &[Expansion]) -> Result<Vec<ExpansionStored>> {
        let batch = batch.to_vec();
        self.db
            .write(move |tx| {
                batch
                    .iter()
                    .map(|x| {
                        Ok(ExpansionStored {
                            event_new: insert_event(tx, &x.event)?,
                            created: x
                                .deliveries
                                .iter()
                                .map(|d| insert_delivery(tx, d))
                                .collect::<DbResult<_>>()?,
                        })
                    })
                    .collect()
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
        let d = delivery.clone();
        self.db.write(move |tx| update_delivery(tx, &d)).await
    }

    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<()> {
        let a = attempt.clone();
        self.db.write(move |tx| insert_attempt(tx, &a)).await
    }

    #[tracing::instrument(skip_all, fields(delivery_id = %delivery.id, status = delivery.status.as_str()))]
    async fn record_outcome(&self, attempt: &DeliveryAttempt, delivery: &Delivery) -> Result<()> {
        let (a, d) = (attempt.clone(), delivery.clone());
        // The update first: a missing delivery fails the transaction before the attempt is in.
        self.db
            .write(move |tx| {
                update_delivery(tx, &d)?;
                insert_attempt(tx, &a)
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
        let event = event.clone();
        self.db.write(move |tx| insert_event(tx, &event)).await
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
