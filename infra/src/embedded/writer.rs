//! The writer thread: the only connection that writes, committing requests in groups.
//!
//! Requests queue up on a channel while a commit is in progress; the thread then runs every
//! waiting request in one transaction, each inside its own savepoint so a failing request
//! rolls back alone, commits once, and only then tells each caller its result. Under load this
//! turns many small commits into few larger ones (group commit), and no caller ever sees a
//! result that was not committed.

use std::cell::Cell;
use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use openwa_core::Error;
use rusqlite::hooks::Wal;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::db::{DbError, DbResult, sql_error};

/// Most requests committed together; bounds the latency one group adds to its first request.
const MAX_GROUP: usize = 256;

/// When the WAL is copied back into the database file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckpointPolicy {
    /// After the writer has been idle this long.
    pub after_idle: std::time::Duration,
    /// Or, while writes keep coming, once the WAL holds this many bytes.
    pub wal_bytes: u64,
}

/// One queued write, type-erased so requests of any result type share the channel.
pub(crate) trait Request: Send {
    /// Runs the work inside the open transaction; `true` if it succeeded.
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Tells the caller the result. `outcome` is `Ok` once the work is committed, or why it
    /// was not (the group's commit failed, the work could not start, or it panicked).
    fn finish(self: Box<Self>, outcome: Result<(), Error>);
}

/// A request carrying its closure, its result once run, and the caller's reply channel.
pub(crate) struct Pending<T, F> {
    work: Option<F>,
    out: Option<Result<T, Error>>,
    reply: oneshot::Sender<Result<T, Error>>,
}

impl<T, F> Pending<T, F> {
    pub(crate) fn new(work: F, reply: oneshot::Sender<Result<T, Error>>) -> Self {
        Self {
            work: Some(work),
            out: None,
            reply,
        }
    }
}

impl<T, F> Request for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Transaction<'_>) -> DbResult<T> + Send,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let out = work(tx).map_err(DbError::into_domain);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, outcome: Result<(), Error>) {
        let result = match self.out {
            // The work's own error wins: its changes were rolled back whatever the group did.
            Some(Err(e)) => Err(e),
            Some(Ok(value)) => outcome.map(|()| value),
            None => Err(outcome
                .err()
                .unwrap_or_else(|| Error::unexpected("the database write did not run"))),
        };
        // The caller may have gone away (a cancelled request); the write stands regardless.
        let _ = self.reply.send(result);
    }
}

thread_local! {
    /// Frames in the WAL after the writer's last commit, as SQLite's WAL hook reports it.
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

fn record_wal_pages(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// Serves requests until every sender is gone (the backend was dropped).
///
/// It also decides when the WAL is copied back into the database (a checkpoint, run by the
/// checkpoint thread when `checkpoint` wakes it). A checkpoint fsyncs, and on ext4 those
/// fsyncs stall concurrent writes for tens to hundreds of milliseconds, so it happens when
/// the writer has been idle for a moment, or when the WAL has grown very large, rather than
/// every thousand pages as SQLite would by itself (the WAL hook replaces its auto-checkpoint).
pub(crate) fn run(
    mut conn: Connection,
    requests: mpsc::Receiver<Box<dyn Request>>,
    checkpoint: mpsc::SyncSender<()>,
    policy: CheckpointPolicy,
) {
    conn.wal_hook(Some(record_wal_pages));
    let page_size: u64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap_or(4096);
    let wal_pages = i32::try_from(policy.wal_bytes / page_size.max(512))
        .unwrap_or(i32::MAX)
        .max(1);
    // Whether anything was committed since the last checkpoint was asked for.
    let mut unsaved = false;
    loop {
        let first = match requests.recv_timeout(policy.after_idle) {
            Ok(first) => first,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if unsaved {
                    unsaved = checkpoint.try_send(()).is_err();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, group);
        let pages = WAL_PAGES.with(Cell::get);
        unsaved = pages > 0;
        if pages >= wal_pages && checkpoint.try_send(()).is_ok() {
            unsaved = false;
        }
    }
    tracing::debug!("database writer stopped");
}

fn commit_group(conn: &mut Connection, group: Vec<Box<dyn Request>>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            // Typically another process holds the lock past the busy timeout.
            let error = sql_error(e);
            for request in group {
                request.finish(Err(error.clone()));
            }
            return;
        }
    };
    let ran: Vec<(Box<dyn Request>, Option<Error>)> = group
        .into_iter()
        .map(|request| run_one(&tx, request))
        .collect();
    let committed = tx.commit().map_err(sql_error);
    for (request, failure) in ran {
        request.finish(failure.map_or_else(|| committed.clone(), Err));
    }
}

/// Runs one request in a savepoint, undoing its changes if it failed or panicked. Returns the
/// request and, if it must fail whatever the commit does, why.
fn run_one(
    tx: &Transaction<'_>,
    mut request: Box<dyn Request>,
) -> (Box<dyn Request>, Option<Error>) {
    if let Err(e) = tx.execute_batch("SAVEPOINT request") {
        return (request, Some(sql_error(e)));
    }
    let undo = |tx: &Transaction<'_>| {
        tx.execute_batch("ROLLBACK TO request; RELEASE request")
            .err()
            .map(sql_error)
    };
    match catch_unwind(AssertUnwindSafe(|| request.run(tx))) {
        Ok(true) => match tx.execute_batch("RELEASE request") {
            Ok(()) => (request, None),
            Err(e) => {
                let _ = undo(tx);
                (request, Some(sql_error(e)))
            }
        },
        Ok(false) => {
            let failure = undo(tx);
            (request, failure)
        }
        Err(_) => {
            tracing::error!("a database write panicked; its changes were rolled back");
            let _ = undo(tx);
            (
                request,
                Some(Error::unexpected("the database write panicked")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::db::Db;
    use super::*;

    fn db() -> (tempfile::TempDir, Arc<Db>) {
        let dir = tempfile::tempdir().unwrap();
        let policy = CheckpointPolicy {
            after_idle: std::time::Duration::from_millis(100),
            wal_bytes: 1 << 20,
        };
        let db = Arc::new(Db::open(&dir.path().join("t.db"), 1, policy).unwrap());
        (dir, db)
    }

    fn count(tx: &Transaction<'_>) -> DbResult<i64> {
        Ok(tx.query_row("SELECT COUNT(*) FROM queues", [], |r| r.get(0))?)
    }

    #[tokio::test]
    async fn a_panicking_write_fails_alone_and_the_writer_carries_on() {
        let (_dir, db) = db();

        let panicked = db
            .write(|tx| -> DbResult<()> {
                tx.execute(
                    "INSERT INTO queues (name, fifo, created_ns) VALUES ('doomed', 0, 0)",
                    [],
                )?;
                panic!("a bug in a store");
            })
            .await;
        let after = db.write(count).await;

        assert!(
            matches!(panicked, Err(Error::Unexpected { .. })),
            "{panicked:?}"
        );
        assert_eq!(
            after.unwrap(),
            0,
            "the panicking write's insert was rolled back"
        );
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_behind() {
        let (_dir, db) = db();

        let failed = db
            .write(|tx| -> DbResult<()> {
                tx.execute(
                    "INSERT INTO queues (name, fifo, created_ns) VALUES ('half', 0, 0)",
                    [],
                )?;
                Err(Error::conflict("changed my mind").into())
            })
            .await;

        assert!(matches!(failed, Err(Error::Conflict { .. })));
        assert_eq!(db.write(count).await.unwrap(), 0);
    }
}
