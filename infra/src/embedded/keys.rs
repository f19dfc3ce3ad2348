//! [`ApiKeyStore`] and [`AuditStore`] on SQLite. Keys are found by the hash of their secret
//! (unique index); the hash is kept in its own column because `ApiKey` does not serialise it.

use std::sync::Arc;

use async_trait::async_trait;
use openwa_core::apikey::ApiKey;
use openwa_core::audit::{AuditEntry, AuditFilter};
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::id::ApiKeyId;
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::{ApiKeyStore, AuditStore};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::codec::{PageQuery, opt_text, to_ns};
use super::db::{Db, DbError, DbResult};

pub struct SqliteApiKeyStore {
    db: Arc<Db>,
}

impl SqliteApiKeyStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

const KEY_NOT_FOUND: Error = Error::NotFound {
    resource: "api key",
};

/// Decodes `body, secret_hash` starting at column `at`.
fn decode_key(row: &Row<'_>, at: usize) -> DbResult<ApiKey> {
    let mut key: ApiKey = serde_json::from_str(&row.get::<_, String>(at)?)?;
    key.secret_hash = row.get(at + 1)?;
    Ok(key)
}

fn find_key(conn: &Connection, sql: &str, param: &str) -> DbResult<Option<ApiKey>> {
    let mut stmt = conn.prepare_cached(sql)?;
    stmt.query_row([param], |row| Ok(decode_key(row, 0)))
        .optional()?
        .transpose()
}

fn key_by_id(conn: &Connection, id: &str) -> DbResult<ApiKey> {
    find_key(
        conn,
        "SELECT body, secret_hash FROM api_keys WHERE id = ?",
        id,
    )?
    .ok_or_else(|| KEY_NOT_FOUND.into())
}

fn store_key(tx: &Transaction<'_>, key: &ApiKey) -> DbResult<()> {
    tx.prepare_cached("UPDATE api_keys SET body = ?2 WHERE id = ?1")?
        .execute(params![key.id.as_str(), serde_json::to_string(key)?])?;
    Ok(())
}

#[async_trait]
impl ApiKeyStore for SqliteApiKeyStore {
    #[tracing::instrument(skip_all, fields(key_id = %key.id))]
    async fn create(&self, key: &ApiKey) -> Result<()> {
        let key = key.clone();
        self.db
            .write(move |tx| {
                let inserted = tx
                    .prepare_cached("INSERT INTO api_keys (id, secret_hash, created_ns, body) VALUES (?, ?, ?, ?)")?
                    .execute(params![key.id.as_str(), key.secret_hash, to_ns(key.created_at)?, serde_json::to_string(&key)?])
                    .map_err(DbError::from);
                match inserted {
                    Err(e) if e.is_unique_violation() => Err(Error::conflict("an api key with that id or secret exists").into()),
                    other => other.map(|_| ()),
                }
            })
            .await
    }

    async fn get(&self, id: &ApiKeyId) -> Result<ApiKey> {
        let id = id.as_str().to_owned();
        self.db.read(move |conn| key_by_id(conn, &id)).await
    }

    async fn find_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let hash = hash.to_owned();
        self.db
            .read(move |conn| {
                find_key(
                    conn,
                    "SELECT body, secret_hash FROM api_keys WHERE secret_hash = ?",
                    &hash,
                )
            })
            .await
    }

    async fn list(&self, page: &PageRequest) -> Result<Page<ApiKey>> {
        let page = page.clone();
        self.db
            .read(move |conn| {
                PageQuery::new("api_keys", "created_ns")
                    .fetch(conn, &page, "secret_hash", |row| decode_key(row, 2))
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(key_id = %id))]
    async fn revoke(&self, id: &ApiKeyId, at: Timestamp) -> Result<ApiKey> {
        let id = id.as_str().to_owned();
        self.db
            .write(move |tx| {
                let mut key = key_by_id(tx, &id)?;
                if key.revoked_at.is_none() {
                    key.revoked_at = Some(at);
                    store_key(tx, &key)?;
                }
                Ok(key)
            })
            .await
    }

    async fn touch(&self, id: &ApiKeyId, at: Timestamp) -> Result<()> {
        let id = id.as_str().to_owned();
        self.db
            .write(move |tx| {
                let mut key = key_by_id(tx, &id)?;
                // Concurrent touches may arrive out of order; keep the latest.
                if key.last_used_at.is_none_or(|t| t < at) {
                    key.last_used_at = Some(at);
                    store_key(tx, &key)?;
                }
                Ok(())
            })
            .await
    }
}

/// Appends an audit entry inside the caller's write transaction.
pub(crate) fn append_in(tx: &rusqlite::Transaction<'_>, entry: &AuditEntry) -> DbResult<()> {
    let at = to_ns(entry.at)?;
    let body = serde_json::to_string(entry).map_err(|e| Error::unexpected(e.to_string()))?;
    let inserted = tx
        .prepare_cached("INSERT INTO audit (id, at_ns, action, key_id, session_id, body) VALUES (?, ?, ?, ?, ?, ?)")?
        .execute(params![
            entry.id.to_string(),
            at,
            entry.action,
            opt_text(entry.key_id.as_ref()),
            opt_text(entry.session_id.as_ref()),
            body
        ])
        .map_err(DbError::from);
    match inserted {
        Err(e) if e.is_unique_violation() => {
            Err(Error::conflict("an audit entry with that id exists").into())
        }
        other => other.map(|_| ()),
    }
}

pub struct SqliteAuditStore {
    db: Arc<Db>,
}

impl SqliteAuditStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl AuditStore for SqliteAuditStore {
    #[tracing::instrument(skip_all, fields(action = %entry.action))]
    async fn append(&self, entry: &AuditEntry) -> Result<()> {
        let entry = entry.clone();
        self.db.write(move |tx| append_in(tx, &entry)).await
    }

    async fn list(&self, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>> {
        let mut q = PageQuery::new("audit", "at_ns");
        if let Some(action) = &filter.action {
            q.and("action = ?", [Value::Text(action.clone())]);
        }
        if let Some(key) = &filter.key_id {
            q.and("key_id = ?", [Value::Text(key.to_string())]);
        }
        if let Some(session) = &filter.session_id {
            q.and("session_id = ?", [Value::Text(session.to_string())]);
        }
        if let Some(since) = filter.since {
            q.and("at_ns >= ?", [Value::Integer(to_ns(since)?)]);
        }
        if let Some(until) = filter.until {
            q.and("at_ns < ?", [Value::Integer(to_ns(until)?)]);
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
}
