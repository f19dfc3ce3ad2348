//! Auth-state snapshots, encrypted with AES-256-GCM and kept in the blob store at
//! `snapshots/<session>/latest`, so another runner can continue the session without a new QR
//! scan. Two kinds ([`SnapshotKind`]), one per isolation mode:
//! - a **profile archive** (process mode): the browser profile parts that hold the WhatsApp
//!   login (`Default/IndexedDB` and `Default/Local Storage`), tar + gzip;
//! - a **context dump** (context mode): the engine's [`AuthDump`] of the live page's IndexedDB
//!   and Local Storage, gzip.
//!
//! Blob format: `OWSNAP` magic, one version byte that is also the kind (1 = profile archive,
//! the original format; 2 = context dump), the 12-byte random nonce, then the ciphertext (with
//! its 16-byte tag). The associated data is the session id (version 1) or the session id plus
//! the kind's name (version 2), so a snapshot can be replayed neither into another session nor
//! as the other kind. A runner asked to restore the other kind fails with
//! [`RunnerError::Snapshot`] naming both kinds (the session then needs a new scan). The key is
//! 32 random bytes, base64, stored in the `Secrets` port under [`KEY_SECRET_NAME`] and created
//! on first use.
//!
//! Layout: this file (the blob key, [`Snapshots`] over the blob store and the secrets port),
//! `seal` (key, kinds, encryption), `archive` (the payloads).

mod archive;
mod seal;

use std::path::Path;
use std::sync::Arc;

use openwa_core::Error as CoreError;
use openwa_core::id::SessionId;
use openwa_core::ports::{BlobStore, Secrets};
use tokio::sync::OnceCell;

pub use archive::{AUTH_DIRS, archive, clear, unpack};
pub use seal::{SnapshotKey, SnapshotKind, open, seal};

use crate::engine::AuthDump;
use crate::error::{Result, RunnerError};
use archive::{gunzip, gzip};
use seal::open_kind;

/// The secret holding the snapshot key (base64 of 32 bytes).
pub const KEY_SECRET_NAME: &str = "runner-snapshot-key";

const CONTENT_TYPE: &str = "application/vnd.openwa.snapshot";

/// Where a session's latest snapshot lives.
pub fn snapshot_key(session: &SessionId) -> String {
    format!("snapshots/{session}/latest")
}

/// Takes, restores and deletes snapshots through the blob store, with the key from `Secrets`.
#[derive(Clone)]
pub struct Snapshots {
    blobs: Arc<dyn BlobStore>,
    secrets: Arc<dyn Secrets>,
    key: Arc<OnceCell<SnapshotKey>>,
}

impl Snapshots {
    pub fn new(blobs: Arc<dyn BlobStore>, secrets: Arc<dyn Secrets>) -> Self {
        Self {
            blobs,
            secrets,
            key: Arc::new(OnceCell::new()),
        }
    }

    /// The key, loaded once; created and stored when absent. Two runners creating it at the
    /// same moment both re-read after writing, so they settle on the one that was stored last.
    async fn key(&self) -> Result<SnapshotKey> {
        self.key
            .get_or_try_init(|| async {
                if let Some(secret) = self.secrets.get(KEY_SECRET_NAME).await? {
                    return SnapshotKey::parse(&secret);
                }
                tracing::info!(
                    secret = KEY_SECRET_NAME,
                    "creating the snapshot encryption key"
                );
                self.secrets
                    .put(KEY_SECRET_NAME, SnapshotKey::random().encode())
                    .await?;
                let stored = self.secrets.get(KEY_SECRET_NAME).await?;
                SnapshotKey::parse(
                    &stored.ok_or_else(|| {
                        RunnerError::Snapshot("the new key was not stored".into())
                    })?,
                )
            })
            .await
            .cloned()
    }

    /// Archives, encrypts and stores the profile's auth state. Returns the stored size.
    #[tracing::instrument(skip_all, fields(session_id = %session))]
    pub async fn take(&self, session: &SessionId, profile: &Path) -> Result<u64> {
        let key = self.key().await?;
        let (profile, id) = (profile.to_owned(), session.clone());
        let sealed = tokio::task::spawn_blocking(move || {
            seal(&key, &id, SnapshotKind::ProfileArchive, &archive(&profile)?)
        })
        .await
        .map_err(|e| RunnerError::Snapshot(e.to_string()))??;
        let meta = self
            .blobs
            .put(&snapshot_key(session), sealed, CONTENT_TYPE)
            .await?;
        tracing::debug!(size = meta.size, "snapshot stored");
        Ok(meta.size)
    }

    /// Compresses, encrypts and stores a context dump (context mode). Returns the stored size.
    #[tracing::instrument(skip_all, fields(session_id = %session))]
    pub async fn take_dump(&self, session: &SessionId, dump: AuthDump) -> Result<u64> {
        let key = self.key().await?;
        let id = session.clone();
        let sealed = tokio::task::spawn_blocking(move || {
            seal(
                &key,
                &id,
                SnapshotKind::ContextDump,
                &gzip(dump.as_bytes())?,
            )
        })
        .await
        .map_err(|e| RunnerError::Snapshot(e.to_string()))??;
        let meta = self
            .blobs
            .put(&snapshot_key(session), sealed, CONTENT_TYPE)
            .await?;
        tracing::debug!(size = meta.size, "context snapshot stored");
        Ok(meta.size)
    }

    /// The latest snapshot as a context dump (context mode); `Ok(None)` when there is none.
    #[tracing::instrument(skip_all, fields(session_id = %session))]
    pub async fn load_dump(&self, session: &SessionId) -> Result<Option<AuthDump>> {
        let blob = match self.blobs.get(&snapshot_key(session)).await {
            Ok((bytes, _)) => bytes,
            Err(CoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let key = self.key().await?;
        let id = session.clone();
        let plain = tokio::task::spawn_blocking(move || {
            gunzip(&open_kind(&key, &id, &blob, SnapshotKind::ContextDump)?)
        })
        .await
        .map_err(|e| RunnerError::Snapshot(e.to_string()))??;
        Ok(Some(AuthDump::from_bytes(plain)))
    }

    /// Restores the latest snapshot into `profile`. `Ok(false)` when there is none; then the
    /// auth directories are cleared so a stale local login cannot resurface.
    #[tracing::instrument(skip_all, fields(session_id = %session))]
    pub async fn restore(&self, session: &SessionId, profile: &Path) -> Result<bool> {
        let blob = match self.blobs.get(&snapshot_key(session)).await {
            Ok((bytes, _)) => bytes,
            Err(CoreError::NotFound { .. }) => {
                clear(profile)?;
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        let key = self.key().await?;
        let (profile, id) = (profile.to_owned(), session.clone());
        tokio::task::spawn_blocking(move || {
            unpack(
                &profile,
                &open_kind(&key, &id, &blob, SnapshotKind::ProfileArchive)?,
            )
        })
        .await
        .map_err(|e| RunnerError::Snapshot(e.to_string()))??;
        Ok(true)
    }

    /// Deletes the stored snapshot and the local auth state (logout).
    pub async fn delete(&self, session: &SessionId, profile: &Path) -> Result<()> {
        self.blobs.delete(&snapshot_key(session)).await?;
        clear(profile)
    }
}
