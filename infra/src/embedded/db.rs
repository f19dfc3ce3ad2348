//! The SQLite foundation: one writer connection owned by a writer thread (see [`writer`]), a
//! small pool of reader connections, and the translation of driver errors into
//! [`openwa_core::Error`].
//!
//! WAL mode lets readers run while the writer commits, so reads never wait for writes. Reads
//! run on tokio's blocking pool; statements are prepared once per connection and reused
//! through rusqlite's statement cache, so a call costs one hand-off, one connection and the SQL
//! itself.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use openwa_core::Error;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::oneshot;

use super::migrations;
use super::writer::{self, CheckpointPolicy, Pending, Request};

/// How long a connection waits for another process's lock before reporting `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Page size of new databases (bytes).
const PAGE_SIZE: u32 = 1024;
/// After a checkpoint resets the WAL, the file is cut back to this size (bytes).
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
/// Prepared statements kept per connection; the stores use a few dozen distinct statements.
const STATEMENT_CACHE: usize = 128;

/// What a closure running against the database can fail with; converted to the domain error at
/// the edge by [`DbError::into_domain`], so rusqlite types never cross a port.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Domain(#[from] Error),
}

impl DbError {
    pub(crate) fn into_domain(self) -> Error {
        match self {
            Self::Domain(e) => e,
            Self::Json(e) => Error::unexpected(format!("stored JSON does not decode: {e}")),
            Self::Sql(e) => sql_error(e),
        }
    }

    /// Whether this is a UNIQUE or PRIMARY KEY violation (the stores turn those into
    /// `Conflict` or an idempotent outcome where the port says so).
    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Sql(rusqlite::Error::SqliteFailure(f, _))
                if f.code == ErrorCode::ConstraintViolation
                    && (f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
        )
    }
}

pub(crate) type DbResult<T> = Result<T, DbError>;

/// Busy, locked, I/O and disk-full are transient (`Unavailable`); anything else is a bug.
pub(crate) fn sql_error(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory => return Error::unavailable(format!("database: {e}")),
            ErrorCode::ConstraintViolation => {
                return Error::unexpected(format!("database constraint: {e}"));
            }
            _ => {}
        }
    }
    Error::unexpected(format!("database: {e}"))
}

pub(crate) fn io_error(context: &str, e: std::io::Error) -> Error {
    Error::unavailable(format!("{context}: {e}"))
}

/// The database: one writer thread and a round-robin pool of readers.
pub(crate) struct Db {
    /// Hands write requests to the writer thread, which owns the only write connection.
    writer: mpsc::Sender<Box<dyn Request>>,
    /// Read-only connections; a read takes the first free one.
    readers: Vec<Mutex<Connection>>,
    /// Where the next read starts looking for a free reader.
    next_reader: AtomicUsize,
}

impl Db {
    /// Opens (creating if needed) the database at `path`, applies pending migrations and
    /// refuses a schema newer than this binary knows.
    pub(crate) fn open(
        path: &Path,
        readers: usize,
        checkpoints: CheckpointPolicy,
    ) -> Result<Self, Error> {
        let existed = path.exists();
        let mut conn = Connection::open(path).map_err(sql_error)?;
        if !existed {
            restrict_permissions(path)?;
            // Only possible before the first write. Small pages keep the WAL small: each
            // commit writes whole pages, and most commits change a few rows.
            conn.pragma_update(None, "page_size", PAGE_SIZE)
                .map_err(sql_error)?;
        }
        configure(&conn, false).map_err(sql_error)?;
        migrations::apply(&mut conn)?;
        let readers = (0..readers.max(1))
            .map(|_| {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(path, flags).map_err(sql_error)?;
                configure(&conn, true).map_err(sql_error)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(sql_error)?;
        let checkpointer = Connection::open(path).map_err(sql_error)?;
        configure(&checkpointer, true).map_err(sql_error)?;
        // One pending wake-up is enough: a checkpoint covers everything written before it.
        let (wake_checkpoint, wakes) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("openwa-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &wakes))
            .map_err(|e| io_error("database checkpoint thread", e))?;
        let (writer, requests) = mpsc::channel();
        std::thread::Builder::new()
            .name("openwa-sqlite-writer".into())
            .spawn(move || writer::run(conn, requests, wake_checkpoint, checkpoints))
            .map_err(|e| io_error("database writer thread", e))?;
        Ok(Self {
            writer,
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a reader connection, on the blocking pool.
    pub(crate) async fn read<T, F>(self: &std::sync::Arc<Self>, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let db = self.clone();
        blocking(move || {
            let conn = db.reader();
            f(&conn).map_err(DbError::into_domain)
        })
        .await
    }

    /// Runs `f` atomically on the writer: its changes are committed together, or not at all
    /// when it fails. The result arrives once the changes are committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> DbResult<T> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let request: Box<dyn Request> = Box::new(Pending::new(f, reply));
        self.writer
            .send(request)
            .map_err(|_| Error::unavailable("the database writer has stopped"))?;
        result
            .await
            .map_err(|_| Error::unavailable("the database writer has stopped"))?
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(conn) = self.readers[(start + i) % n].try_lock() {
                return conn;
            }
        }
        self.readers[start % n]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// Copies the WAL back into the database file when the writer asks (see
/// [`writer::run`]), off the write path. PASSIVE never waits for readers or the writer. Ends
/// with the writer thread, which holds the other end.
fn checkpoint_loop(conn: &Connection, wakes: &mpsc::Receiver<()>) {
    while wakes.recv().is_ok() {
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "database checkpoint failed");
        }
    }
}

/// Runs blocking work on tokio's blocking pool; a panic inside becomes `Unexpected`.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::unexpected(format!("blocking task failed: {e}")))?
}

fn configure(conn: &Connection, read_only: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if !read_only {
        // Persistent for the file; readers inherit it.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "journal_mode stayed {mode}"
            )));
        }
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(())
}

/// The database holds webhook signing secrets and key hashes: owner-only.
fn restrict_permissions(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error("database file", e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
