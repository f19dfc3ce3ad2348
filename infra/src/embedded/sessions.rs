//! [`SessionStore`] on SQLite, including the runner lease (claim, renew, release) and the
//! epoch-fenced runtime writes.
//!
//! Every write is a read-modify-write inside one `BEGIN IMMEDIATE` transaction, and the final
//! `UPDATE` is also conditional on the epoch/version it read, so it stays correct even if
//! another process writes the same file. Every stored change increments `version`.

use std::sync::Arc;

use async_trait::async_trait;
use openwa_core::clock::{Clock, Timestamp};
use openwa_core::error::{Error, Result};
use openwa_core::id::SessionId;
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::{SessionFilter, SessionStore};
use openwa_core::session::{DesiredState, RuntimeUpdate, Session};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params};

use super::codec::{PageQuery, to_ns};
use super::db::{Db, DbError, DbResult};

pub struct SqliteSessionStore {
    db: Arc<Db>,
    /// Stamps `updated_at` on runtime writes, which carry no time of their own.
    clock: Arc<dyn Clock>,
}

impl SqliteSessionStore {
    pub(crate) fn new(db: Arc<Db>, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }
}

const NOT_FOUND: Error = Error::NotFound {
    resource: "session",
};

pub(crate) fn load(tx: &rusqlite::Connection, id: &str) -> DbResult<Session> {
    let body: Option<String> = tx
        .prepare_cached("SELECT body FROM sessions WHERE id = ?")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let body = body.ok_or(NOT_FOUND)?;
    Ok(serde_json::from_str(&body)?)
}

/// Writes `s` (with `version` already incremented) if the stored version is still `expected`.
fn store(tx: &Transaction<'_>, s: &Session, expected: u64) -> DbResult<()> {
    let until = s.lease.until.map(to_ns).transpose()?;
    let changed = tx.prepare_cached(
        "UPDATE sessions SET status = ?2, desired = ?3, lease_owner = ?4, lease_epoch = ?5, lease_until_ns = ?6,
                version = ?7, body = ?8
         WHERE id = ?1 AND version = ?9",
    )?
    .execute(params![
        s.id.as_str(),
        s.status.as_str(),
        s.desired.as_str(),
        s.lease.owner,
        s.lease.epoch as i64,
        until,
        s.version as i64,
        serde_json::to_string(s)?,
        expected as i64,
    ])?;
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::conflict("the session changed concurrently").into())
    }
}

/// Read-modify-write of one session in the current transaction.
fn modify(
    tx: &Transaction<'_>,
    id: &str,
    change: impl FnOnce(&mut Session) -> DbResult<()>,
) -> DbResult<Session> {
    let mut s = load(tx, id)?;
    let expected = s.version;
    change(&mut s)?;
    s.version = expected + 1;
    store(tx, &s, expected)?;
    Ok(s)
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    #[tracing::instrument(skip_all, fields(session_id = %session.id))]
    async fn create(&self, session: &Session) -> Result<()> {
        let s = session.clone();
        self.db
            .write(move |tx| {
                let until = s.lease.until.map(to_ns).transpose()?;
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO sessions (id, created_ns, status, desired, lease_owner, lease_epoch, lease_until_ns, version, body)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )?
                    .execute(params![
                        s.id.as_str(),
                        to_ns(s.created_at)?,
                        s.status.as_str(),
                        s.desired.as_str(),
                        s.lease.owner,
                        s.lease.epoch as i64,
                        until,
                        s.version as i64,
                        serde_json::to_string(&s)?,
                    ])
                    .map_err(DbError::from);
                match inserted {
                    Err(e) if e.is_unique_violation() => Err(Error::conflict(format!("session {} exists", s.id)).into()),
                    other => other.map(|_| ()),
                }
            })
            .await
    }

    async fn get(&self, id: &SessionId) -> Result<Session> {
        let id = id.as_str().to_owned();
        self.db.read(move |conn| load(conn, &id)).await
    }

    async fn list(&self, filter: &SessionFilter, page: &PageRequest) -> Result<Page<Session>> {
        let mut q = PageQuery::new("sessions", "created_ns");
        if let Some(only) = &filter.only {
            let ids: Vec<&str> = only.iter().map(SessionId::as_str).collect();
            let json = serde_json::to_string(&ids).map_err(|e| Error::unexpected(e.to_string()))?;
            q.and(
                "id IN (SELECT value FROM json_each(?))",
                [Value::Text(json)],
            );
        }
        if let Some(status) = filter.status {
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

    #[tracing::instrument(skip_all, fields(session_id = %session.id))]
    async fn update(&self, session: &Session) -> Result<Session> {
        let given = session.clone();
        self.db
            .write(move |tx| {
                let mut s = load(tx, given.id.as_str())?;
                if s.version != given.version {
                    return Err(Error::conflict("the session was changed since it was read").into());
                }
                s.name = given.name;
                s.desired = given.desired;
                s.config = given.config;
                s.updated_at = given.updated_at;
                s.version += 1;
                store(tx, &s, given.version)?;
                Ok(s)
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(session_id = %id))]
    async fn delete(&self, id: &SessionId) -> Result<()> {
        let id = id.as_str().to_owned();
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached("DELETE FROM sessions WHERE id = ?")?
                    .execute([&id])?;
                if n == 0 {
                    Err(NOT_FOUND.into())
                } else {
                    Ok(())
                }
            })
            .await
    }

    async fn claimable(&self, now: Timestamp, limit: u32) -> Result<Vec<SessionId>> {
        let now = to_ns(now)?;
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id FROM sessions
                     WHERE desired = 'running'
                       AND (lease_owner IS NULL OR lease_until_ns IS NULL OR lease_until_ns <= ?1)
                     ORDER BY COALESCE(lease_until_ns, 0), created_ns, id
                     LIMIT ?2",
                )?;
                let ids = stmt
                    .query_map(params![now, limit], |r| r.get::<_, String>(0))?
                    .map(|id| Ok(SessionId::parse(&id?)?))
                    .collect::<DbResult<Vec<_>>>()?;
                Ok(ids)
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(session_id = %id, owner = %owner))]
    async fn claim(
        &self,
        id: &SessionId,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Session> {
        let (id, owner) = (id.as_str().to_owned(), owner.to_owned());
        self.db
            .write(move |tx| {
                modify(tx, &id, |s| {
                    if s.desired != DesiredState::Running {
                        return Err(Error::conflict("the session is not meant to run").into());
                    }
                    if s.lease.is_live(now) && s.lease.owner.as_deref() != Some(owner.as_str()) {
                        return Err(Error::conflict("another runner holds the lease").into());
                    }
                    s.lease.owner = Some(owner);
                    s.lease.epoch += 1;
                    s.lease.until = Some(until);
                    s.updated_at = now;
                    Ok(())
                })
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(session_id = %id, epoch = epoch))]
    async fn renew(&self, id: &SessionId, owner: &str, epoch: u64, until: Timestamp) -> Result<()> {
        let (id, owner) = (id.as_str().to_owned(), owner.to_owned());
        self.db
            .write(move |tx| {
                modify(tx, &id, |s| {
                    check_holder(s, Some(&owner), epoch)?;
                    s.lease.until = Some(until);
                    Ok(())
                })
                .map(|_| ())
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(session_id = %id, epoch = epoch))]
    async fn release(&self, id: &SessionId, owner: &str, epoch: u64) -> Result<()> {
        let (id, owner) = (id.as_str().to_owned(), owner.to_owned());
        self.db
            .write(move |tx| {
                modify(tx, &id, |s| {
                    check_holder(s, Some(&owner), epoch)?;
                    s.lease.owner = None;
                    s.lease.until = None;
                    Ok(())
                })
                .map(|_| ())
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(session_id = %id, epoch = epoch))]
    async fn update_runtime(
        &self,
        id: &SessionId,
        epoch: u64,
        update: &RuntimeUpdate,
    ) -> Result<Session> {
        let id = id.as_str().to_owned();
        let update = update.clone();
        let now = self.clock.now();
        self.db
            .write(move |tx| {
                modify(tx, &id, |s| {
                    check_holder(s, None, epoch)?;
                    update.apply(s);
                    s.updated_at = now;
                    Ok(())
                })
            })
            .await
    }
}

/// Fencing: the epoch must be the current one, and for lease operations the owner must still
/// hold it.
fn check_holder(s: &Session, owner: Option<&str>, epoch: u64) -> DbResult<()> {
    let owner_ok = owner.is_none_or(|o| s.lease.owner.as_deref() == Some(o));
    if s.lease.epoch != epoch || !owner_ok {
        return Err(Error::StaleEpoch { epoch }.into());
    }
    Ok(())
}
