//! The embedded backend: every port on local files, for `openwa up`, tests and single-host
//! installs. One data directory holds it all:
//!
//! ```text
//! <data_dir>/openwa.db      SQLite (WAL): stores and the job queue
//! <data_dir>/blobs/         media and auth snapshots
//! <data_dir>/secrets.json   named secrets (0600); OPENWA_SECRET_<NAME> overrides
//! ```
//!
//! Layout:
//! - `db`, `writer`, [`migrations`], `codec`: connections and group commit, schema, shared
//!   encodings
//! - [`sessions`], [`messages`], [`keys`] (keys + audit), [`webhooks`], [`deliveries`]
//!   (deliveries + events): the stores
//! - [`queue`]: the job queue
//! - [`blobs`], [`secrets`], [`rate_limit`]: the other ports

mod codec;
mod db;
pub mod migrations;
mod writer;

pub mod blobs;
pub mod deliveries;
pub mod keys;
pub mod messages;
pub mod queue;
pub mod rate_limit;
pub mod secrets;
pub mod sessions;
pub mod webhooks;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openwa_core::clock::Clock;
use openwa_core::error::Result;
use openwa_core::ports::Backend;

pub use blobs::FsBlobStore;
pub use deliveries::{SqliteDeliveryStore, SqliteEventStore};
pub use keys::{SqliteApiKeyStore, SqliteAuditStore};
pub use messages::SqliteMessageStore;
pub use migrations::SCHEMA_VERSION;
pub use queue::{QueueConfig, SqliteJobQueue};
pub use rate_limit::MemoryRateLimiter;
pub use secrets::{EnvSecrets, FileSecrets};
pub use sessions::SqliteSessionStore;
pub use webhooks::SqliteWebhookStore;

/// The database file inside the data directory.
pub const DB_FILE: &str = "openwa.db";
/// The blob root inside the data directory.
pub const BLOB_DIR: &str = "blobs";
/// The secrets file inside the data directory.
pub const SECRETS_FILE: &str = "secrets.json";

/// Knobs of the embedded backend; the defaults suit `openwa up`.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// A job received this many times is dead-lettered on its next receive.
    pub max_receives: u32,
    /// FIFO queues drop a job whose dedup id was seen within this window.
    pub dedup_window: Duration,
    /// How often a long poll re-checks for jobs that became visible by time.
    pub poll_interval: Duration,
    /// Read connections in the pool (writes use one more).
    pub readers: usize,
    /// Rate-limit buckets kept in memory before idle ones are evicted.
    pub rate_limit_keys: usize,
    /// The WAL is checkpointed into the database file once writes pause this long...
    pub checkpoint_after_idle: Duration,
    /// ...or, under sustained writes, once it reaches this size. Checkpoints fsync, which
    /// stalls concurrent writes, so fewer is better for latency; the WAL costs disk meanwhile.
    pub checkpoint_wal_mib: u32,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            max_receives: 5,
            dedup_window: Duration::from_secs(5 * 60),
            poll_interval: Duration::from_millis(100),
            readers: 4,
            rate_limit_keys: 100_000,
            checkpoint_after_idle: Duration::from_secs(1),
            checkpoint_wal_mib: 1024,
        }
    }
}

/// Opens (creating if needed) the embedded backend in `data_dir` with default settings.
pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Backend> {
    open_with(data_dir, clock, EmbeddedConfig::default())
}

/// Opens (creating if needed) the embedded backend in `data_dir`. Fails if the database was
/// written by a newer openwa (schema version above [`SCHEMA_VERSION`]).
#[tracing::instrument(skip_all, fields(data_dir = %data_dir.display()))]
pub fn open_with(
    data_dir: &Path,
    clock: Arc<dyn Clock>,
    config: EmbeddedConfig,
) -> Result<Backend> {
    create_private_dir(data_dir)?;
    let checkpoints = writer::CheckpointPolicy {
        after_idle: config.checkpoint_after_idle,
        wal_bytes: u64::from(config.checkpoint_wal_mib) << 20,
    };
    let db = Arc::new(db::Db::open(
        &data_dir.join(DB_FILE),
        config.readers,
        checkpoints,
    )?);
    let queue_config = QueueConfig {
        max_receives: config.max_receives,
        dedup_window: config.dedup_window,
        poll_interval: config.poll_interval,
    };
    let queue = Arc::new(SqliteJobQueue::new(db.clone(), clock.clone(), queue_config));
    Ok(Backend {
        sessions: Arc::new(SqliteSessionStore::new(db.clone(), clock.clone())),
        messages: Arc::new(SqliteMessageStore::new(
            db.clone(),
            queue.clone(),
            clock.clone(),
        )),
        keys: Arc::new(SqliteApiKeyStore::new(db.clone())),
        audit: Arc::new(SqliteAuditStore::new(db.clone())),
        webhooks: Arc::new(SqliteWebhookStore::new(db.clone())),
        deliveries: Arc::new(SqliteDeliveryStore::new(db.clone())),
        events: Arc::new(SqliteEventStore::new(db.clone())),
        queue,
        blobs: Arc::new(FsBlobStore::open(&data_dir.join(BLOB_DIR))?),
        secrets: Arc::new(EnvSecrets::new(FileSecrets::new(
            &data_dir.join(SECRETS_FILE),
        ))),
        rate_limiter: Arc::new(MemoryRateLimiter::new(config.rate_limit_keys)),
        clock,
    })
}

/// Creates the data directory owner-only if it does not exist; an existing one is left as is.
fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| db::io_error("data directory", e))
}
