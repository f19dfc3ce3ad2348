//! [`WebhookStore`] on SQLite. Signing secrets are kept in their own columns (the entity does
//! not serialise them) and restored on every read.

use std::sync::Arc;

use async_trait::async_trait;
use openwa_core::error::{Error, Result};
use openwa_core::id::{SessionId, WebhookId};
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::WebhookStore;
use openwa_core::webhook::{Webhook, WebhookSecret};
use rusqlite::types::Value;
use rusqlite::{Row, params};

use super::codec::{PageQuery, opt_text, to_ns};
use super::db::{Db, DbError, DbResult};

pub struct SqliteWebhookStore {
    db: Arc<Db>,
}

impl SqliteWebhookStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

const NOT_FOUND: Error = Error::NotFound {
    resource: "webhook",
};

/// Decodes `body, secret, previous_secret` starting at column `at`.
fn decode(row: &Row<'_>, at: usize) -> DbResult<Webhook> {
    let mut w: Webhook = serde_json::from_str(&row.get::<_, String>(at)?)?;
    w.secret = secret(row.get(at + 1)?)?;
    w.previous_secret = secret(row.get(at + 2)?)?;
    Ok(w)
}

fn secret(raw: Option<String>) -> DbResult<Option<WebhookSecret>> {
    raw.map(|s| {
        WebhookSecret::parse(&s)
            .map_err(|_| Error::unexpected("a stored webhook secret does not parse").into())
    })
    .transpose()
}

/// The columns every write sets, in the order of [`write_params`].
fn write_params(w: &Webhook) -> DbResult<[Value; 6]> {
    Ok([
        Value::Text(w.id.to_string()),
        opt_text(w.session_id.as_ref()).map_or(Value::Null, Value::Text),
        Value::Integer(i64::from(w.active)),
        w.secret
            .as_ref()
            .map_or(Value::Null, |s| Value::Text(s.expose().to_owned())),
        w.previous_secret
            .as_ref()
            .map_or(Value::Null, |s| Value::Text(s.expose().to_owned())),
        Value::Text(serde_json::to_string(w)?),
    ])
}

const SELECT: &str = "SELECT body, secret, previous_secret FROM webhooks";

#[async_trait]
impl WebhookStore for SqliteWebhookStore {
    #[tracing::instrument(skip_all, fields(webhook_id = %webhook.id))]
    async fn create(&self, webhook: &Webhook) -> Result<()> {
        let w = webhook.clone();
        self.db
            .write(move |tx| {
                let [id, session, active, secret, previous, body] = write_params(&w)?;
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO webhooks (id, session_id, active, secret, previous_secret, body, created_ns)
                         VALUES (?, ?, ?, ?, ?, ?, ?)",
                    )?
                    .execute(params![id, session, active, secret, previous, body, to_ns(w.created_at)?])
                    .map_err(DbError::from);
                match inserted {
                    Err(e) if e.is_unique_violation() => Err(Error::conflict(format!("webhook {} exists", w.id)).into()),
                    other => other.map(|_| ()),
                }
            })
            .await
    }

    async fn get(&self, id: &WebhookId) -> Result<Webhook> {
        let id = id.to_string();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE id = ?"))?;
                let mut rows = stmt.query([id])?;
                match rows.next()? {
                    Some(row) => decode(row, 0),
                    None => Err(NOT_FOUND.into()),
                }
            })
            .await
    }

    async fn list(&self, session: Option<&SessionId>, page: &PageRequest) -> Result<Page<Webhook>> {
        let mut q = PageQuery::new("webhooks", "created_ns");
        if let Some(s) = session {
            q.and(
                "(session_id IS NULL OR session_id = ?)",
                [Value::Text(s.to_string())],
            );
        }
        let page = page.clone();
        // Rows are `<time>, id, body, secret, previous_secret`.
        self.db
            .read(move |conn| q.fetch(conn, &page, "secret, previous_secret", |row| decode(row, 2)))
            .await
    }

    async fn active_for(&self, session: Option<&SessionId>) -> Result<Vec<Webhook>> {
        let session = session.map(ToString::to_string);
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "{SELECT} WHERE active = 1 AND (session_id IS NULL OR session_id = ?1) ORDER BY created_ns, id"
                ))?;
                let mut rows = stmt.query([session])?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(decode(row, 0)?);
                }
                Ok(out)
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(webhook_id = %webhook.id))]
    async fn update(&self, webhook: &Webhook) -> Result<()> {
        let w = webhook.clone();
        self.db
            .write(move |tx| {
                let [id, session, active, secret, previous, body] = write_params(&w)?;
                let n = tx
                    .prepare_cached(
                        "UPDATE webhooks SET session_id = ?2, active = ?3, secret = ?4, previous_secret = ?5, body = ?6
                         WHERE id = ?1",
                    )?
                    .execute(params![id, session, active, secret, previous, body])?;
                if n == 0 { Err(NOT_FOUND.into()) } else { Ok(()) }
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(webhook_id = %id))]
    async fn delete(&self, id: &WebhookId) -> Result<()> {
        let id = id.to_string();
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached("DELETE FROM webhooks WHERE id = ?")?
                    .execute([id])?;
                if n == 0 {
                    Err(NOT_FOUND.into())
                } else {
                    Ok(())
                }
            })
            .await
    }
}
