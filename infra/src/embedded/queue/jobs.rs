//! The queue's SQL: finding receivable jobs, handing them out, and keeping the FIFO group
//! heads (`job_groups`) in step with every change to a grouped job.
//!
//! All functions run inside the writer's transaction except [`any_receivable`], which a
//! reader uses to skip the writer when there is nothing to hand out.

use openwa_core::error::Error;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::super::db::DbResult;

/// A job row as `receive` sees it.
pub(super) struct Candidate {
    pub seq: i64,
    pub id: String,
    pub body: Vec<u8>,
    pub group: Option<String>,
    pub receive_count: u32,
    pub enqueued_ns: i64,
}

/// Whether the queue is FIFO; `NotFound` if it does not exist.
pub(super) fn queue_kind(conn: &Connection, key: &str) -> DbResult<bool> {
    let fifo = conn
        .prepare_cached("SELECT fifo FROM queues WHERE name = ?")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    Ok(fifo.ok_or(Error::NotFound { resource: "queue" })?)
}

/// A cheap look (on a reader) for anything `receive` could hand out at `now`.
pub(super) fn any_receivable(conn: &Connection, key: &str, fifo: bool, now: i64) -> DbResult<bool> {
    let sql = if fifo {
        "SELECT EXISTS (SELECT 1 FROM job_groups WHERE queue = ?1 AND head_visible_ns <= ?2)
             OR EXISTS (SELECT 1 FROM jobs WHERE queue = ?1 AND grp IS NULL AND visible_ns <= ?2)"
    } else {
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE queue = ?1 AND visible_ns <= ?2)"
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![key, now], |r| r.get(0))?)
}

const CANDIDATE_COLUMNS: &str = "j.seq, j.id, j.body, j.grp, j.receive_count, j.enqueued_ns";

fn collect(
    tx: &Transaction<'_>,
    sql: &str,
    key: &str,
    now: i64,
    limit: usize,
    out: &mut Vec<Candidate>,
) -> DbResult<()> {
    let mut stmt = tx.prepare_cached(sql)?;
    let rows = stmt.query_map(params![key, now, limit as i64], |r| {
        Ok(Candidate {
            seq: r.get(0)?,
            id: r.get(1)?,
            body: r.get(2)?,
            group: r.get(3)?,
            receive_count: r.get(4)?,
            enqueued_ns: r.get(5)?,
        })
    })?;
    for row in rows {
        out.push(row?);
    }
    Ok(())
}

/// Up to `limit` visible jobs in enqueue order; on FIFO queues only group heads (and jobs
/// without a group, which order nothing).
pub(super) fn candidates(
    tx: &Transaction<'_>,
    key: &str,
    fifo: bool,
    now: i64,
    limit: usize,
) -> DbResult<Vec<Candidate>> {
    let mut out = Vec::new();
    if fifo {
        collect(
            tx,
            &format!(
                "SELECT {CANDIDATE_COLUMNS} FROM job_groups g JOIN jobs j ON j.seq = g.head_seq
                 WHERE g.queue = ?1 AND g.head_visible_ns <= ?2 ORDER BY g.head_seq LIMIT ?3"
            ),
            key,
            now,
            limit,
            &mut out,
        )?;
        collect(
            tx,
            &format!(
                "SELECT {CANDIDATE_COLUMNS} FROM jobs j
                 WHERE j.queue = ?1 AND j.grp IS NULL AND j.visible_ns <= ?2 ORDER BY j.visible_ns, j.seq LIMIT ?3"
            ),
            key,
            now,
            limit,
            &mut out,
        )?;
        out.sort_by_key(|c| c.seq);
        out.truncate(limit);
    } else {
        collect(
            tx,
            &format!(
                "SELECT {CANDIDATE_COLUMNS} FROM jobs j
                 WHERE j.queue = ?1 AND j.visible_ns <= ?2 ORDER BY j.visible_ns, j.seq LIMIT ?3"
            ),
            key,
            now,
            limit,
            &mut out,
        )?;
    }
    Ok(out)
}

/// Recomputes the head of `group` after its jobs changed: the oldest remaining job and its
/// visibility, or no row when the group is empty.
pub(super) fn sync_group(tx: &Transaction<'_>, key: &str, group: Option<&str>) -> DbResult<()> {
    let Some(group) = group else { return Ok(()) };
    let head: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT seq, visible_ns FROM jobs WHERE queue = ?1 AND grp = ?2 ORDER BY seq LIMIT 1",
        )?
        .query_row(params![key, group], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match head {
        Some((seq, visible)) => {
            tx.prepare_cached(
                "INSERT INTO job_groups (queue, grp, head_seq, head_visible_ns) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (queue, grp) DO UPDATE SET head_seq = ?3, head_visible_ns = ?4",
            )?
            .execute(params![key, group, seq, visible])?;
        }
        None => {
            tx.prepare_cached("DELETE FROM job_groups WHERE queue = ?1 AND grp = ?2")?
                .execute(params![key, group])?;
        }
    }
    Ok(())
}

/// Adds a job; returns its sequence number.
pub(super) fn insert(
    tx: &Transaction<'_>,
    key: &str,
    body: &[u8],
    group: Option<&str>,
    now: i64,
    visible: i64,
) -> DbResult<i64> {
    tx.prepare_cached("INSERT INTO jobs (queue, id, body, grp, enqueued_ns, visible_ns) VALUES (?, ?, ?, ?, ?, ?)")?
        .execute(params![key, format!("job_{}", ulid::Ulid::new()), body, group, now, visible])?;
    let seq = tx.last_insert_rowid();
    if let Some(group) = group {
        // A new job only becomes the head of a group that had none.
        tx.prepare_cached(
            "INSERT INTO job_groups (queue, grp, head_seq, head_visible_ns) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (queue, grp) DO NOTHING",
        )?
        .execute(params![key, group, seq, visible])?;
    }
    Ok(seq)
}

/// Hands a job out: new receipt, hidden until `visible`, one more receive.
pub(super) fn take(
    tx: &Transaction<'_>,
    key: &str,
    job: &Candidate,
    receipt: &str,
    visible: i64,
) -> DbResult<()> {
    tx.prepare_cached("UPDATE jobs SET receipt = ?2, visible_ns = ?3, receive_count = receive_count + 1 WHERE seq = ?1")?
        .execute(params![job.seq, receipt, visible])?;
    sync_group(tx, key, job.group.as_deref())
}

/// The job holding `receipt`: its sequence number and group. `Conflict` if the receipt is
/// stale (the job was acked, retried or received again since).
pub(super) fn by_receipt(
    tx: &Transaction<'_>,
    key: &str,
    receipt: &str,
) -> DbResult<(i64, Option<String>)> {
    let found = tx
        .prepare_cached("SELECT seq, grp FROM jobs WHERE queue = ?1 AND receipt = ?2")?
        .query_row(params![key, receipt], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(found.ok_or_else(|| {
        Error::conflict("the receipt is stale: the job was acked or received again")
    })?)
}

/// Changes when a job becomes visible; `drop_receipt` ends the current receive.
pub(super) fn set_visible(
    tx: &Transaction<'_>,
    key: &str,
    seq: i64,
    group: Option<&str>,
    visible: i64,
    drop_receipt: bool,
) -> DbResult<()> {
    let sql = if drop_receipt {
        "UPDATE jobs SET visible_ns = ?2, receipt = NULL WHERE seq = ?1"
    } else {
        "UPDATE jobs SET visible_ns = ?2 WHERE seq = ?1"
    };
    tx.prepare_cached(sql)?.execute(params![seq, visible])?;
    sync_group(tx, key, group)
}

pub(super) fn delete(
    tx: &Transaction<'_>,
    key: &str,
    seq: i64,
    group: Option<&str>,
) -> DbResult<()> {
    tx.prepare_cached("DELETE FROM jobs WHERE seq = ?")?
        .execute([seq])?;
    sync_group(tx, key, group)
}

/// Moves a job to the dead-letter table.
pub(super) fn bury(
    tx: &Transaction<'_>,
    key: &str,
    seq: i64,
    group: Option<&str>,
    reason: &str,
    now: i64,
) -> DbResult<()> {
    tx.prepare_cached(
        "INSERT INTO dead_jobs (queue, id, body, grp, receive_count, reason, dead_ns)
         SELECT queue, id, body, grp, receive_count, ?2, ?3 FROM jobs WHERE seq = ?1",
    )?
    .execute(params![seq, reason, now])?;
    delete(tx, key, seq, group)
}
