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

use std::io::{Read as _, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use openwa_core::Error as CoreError;
use openwa_core::id::SessionId;
use openwa_core::ports::{BlobStore, Secrets};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use crate::engine::AuthDump;
use crate::error::{Result, RunnerError};

/// The secret holding the snapshot key (base64 of 32 bytes).
pub const KEY_SECRET_NAME: &str = "runner-snapshot-key";
/// The profile directories that hold the login, relative to the profile root.
pub const AUTH_DIRS: [&str; 2] = ["Default/IndexedDB", "Default/Local Storage"];

const MAGIC: &[u8; 6] = b"OWSNAP";
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = MAGIC.len() + 1 + NONCE_LEN;
const CONTENT_TYPE: &str = "application/vnd.openwa.snapshot";

/// What a snapshot holds; which isolation mode can restore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// tar.gz of the profile's auth directories (process mode).
    ProfileArchive,
    /// gzip of a context-mode [`AuthDump`].
    ContextDump,
}

impl SnapshotKind {
    fn version(self) -> u8 {
        match self {
            Self::ProfileArchive => 1,
            Self::ContextDump => 2,
        }
    }

    fn from_version(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::ProfileArchive),
            2 => Some(Self::ContextDump),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::ProfileArchive => "a profile archive (taken by a process-mode runner)",
            Self::ContextDump => "a context dump (taken by a context-mode runner)",
        }
    }

    /// The associated data: the session id, plus the kind for every kind but the original.
    fn aad(self, session: &SessionId) -> Vec<u8> {
        let mut aad = session.as_str().as_bytes().to_vec();
        if self == Self::ContextDump {
            aad.extend_from_slice(b"\0context-dump");
        }
        aad
    }
}

/// Where a session's latest snapshot lives.
pub fn snapshot_key(session: &SessionId) -> String {
    format!("snapshots/{session}/latest")
}

/// A 256-bit snapshot key. Never logged.
#[derive(Clone)]
pub struct SnapshotKey([u8; 32]);

impl SnapshotKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn random() -> Self {
        Self(rand::random())
    }

    fn parse(secret: &SecretString) -> Result<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(secret.expose_secret().trim())
            .map_err(|_| {
                RunnerError::Snapshot(format!("secret {KEY_SECRET_NAME} is not base64"))
            })?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
            RunnerError::Snapshot(format!("secret {KEY_SECRET_NAME} is not 32 bytes"))
        })?;
        Ok(Self(bytes))
    }

    fn encode(&self) -> SecretString {
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

impl std::fmt::Debug for SnapshotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotKey(..)")
    }
}

/// Archives the auth directories of `profile` (missing ones are skipped) into a tar.gz.
pub fn archive(profile: &Path) -> Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    for dir in AUTH_DIRS {
        let path = profile.join(dir);
        if path.is_dir() {
            tar.append_dir_all(dir, &path)?;
        }
    }
    Ok(tar.into_inner()?.finish()?)
}

/// Replaces the auth directories of `profile` with the archive's content. Entries outside the
/// auth directories are refused.
pub fn unpack(profile: &Path, archive: &[u8]) -> Result<()> {
    clear(profile)?;
    std::fs::create_dir_all(profile)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path: PathBuf = entry.path()?.into_owned();
        let inside = path.components().all(|c| matches!(c, Component::Normal(_)))
            && AUTH_DIRS.iter().any(|d| path.starts_with(d));
        if !inside {
            return Err(RunnerError::Snapshot(format!(
                "archive entry {} is outside the auth directories",
                path.display()
            )));
        }
        entry.unpack_in(profile)?;
    }
    Ok(())
}

/// Removes the auth directories of `profile` (logout, or before a restore).
pub fn clear(profile: &Path) -> Result<()> {
    for dir in AUTH_DIRS {
        match std::fs::remove_dir_all(profile.join(dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}

/// Encrypts `plain` for `session` as a snapshot of `kind`: header + ciphertext.
pub fn seal(
    key: &SnapshotKey,
    session: &SessionId,
    kind: SnapshotKind,
    plain: &[u8],
) -> Result<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let cipher =
        Aes256Gcm::new_from_slice(&key.0).map_err(|e| RunnerError::Snapshot(e.to_string()))?;
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &kind.aad(session),
            },
        )
        .map_err(|_| RunnerError::Snapshot("encryption failed".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
    out.extend_from_slice(MAGIC);
    out.push(kind.version());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts a blob made by [`seal`], with its kind; fails on a wrong key, another session, or
/// any tampering (the kind included).
pub fn open(
    key: &SnapshotKey,
    session: &SessionId,
    blob: &[u8],
) -> Result<(SnapshotKind, Vec<u8>)> {
    if blob.len() < HEADER_LEN || &blob[..MAGIC.len()] != MAGIC {
        return Err(RunnerError::Snapshot("not a snapshot".into()));
    }
    let kind = SnapshotKind::from_version(blob[MAGIC.len()]).ok_or_else(|| {
        RunnerError::Snapshot(format!(
            "unsupported snapshot version {}",
            blob[MAGIC.len()]
        ))
    })?;
    let nonce = &blob[MAGIC.len() + 1..HEADER_LEN];
    let cipher =
        Aes256Gcm::new_from_slice(&key.0).map_err(|e| RunnerError::Snapshot(e.to_string()))?;
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: &blob[HEADER_LEN..],
                aad: &kind.aad(session),
            },
        )
        .map(|plain| (kind, plain))
        .map_err(|_| {
            RunnerError::Snapshot("decryption failed (wrong key or tampered snapshot)".into())
        })
}

/// Opens a blob that must be of kind `want`; the other kind is a clear error.
fn open_kind(
    key: &SnapshotKey,
    session: &SessionId,
    blob: &[u8],
    want: SnapshotKind,
) -> Result<Vec<u8>> {
    let (kind, plain) = open(key, session, blob)?;
    if kind != want {
        return Err(RunnerError::Snapshot(format!(
            "the snapshot is {}, this runner restores only {}; the session must be linked again \
             (or run it on a runner in the other isolation mode)",
            kind.describe(),
            want.describe()
        )));
    }
    Ok(plain)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| RunnerError::Snapshot(format!("context dump is not gzip: {e}")))?;
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> SessionId {
        SessionId::parse("s1").unwrap()
    }

    #[test]
    fn a_sealed_archive_round_trips_into_a_fresh_profile() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(
            src.path()
                .join("Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb"),
        )
        .unwrap();
        std::fs::write(
            src.path()
                .join("Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/000003.log"),
            b"login",
        )
        .unwrap();
        std::fs::create_dir_all(src.path().join("Default/Local Storage/leveldb")).unwrap();
        std::fs::write(
            src.path().join("Default/Local Storage/leveldb/CURRENT"),
            b"MANIFEST-1",
        )
        .unwrap();
        std::fs::create_dir_all(src.path().join("Default/Cache")).unwrap();
        std::fs::write(
            src.path().join("Default/Cache/big"),
            b"not part of the login",
        )
        .unwrap();

        let key = SnapshotKey::random();
        let blob = seal(
            &key,
            &sid(),
            SnapshotKind::ProfileArchive,
            &archive(src.path()).unwrap(),
        )
        .unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dst.path().join("Default/IndexedDB")).unwrap();
        std::fs::write(dst.path().join("Default/IndexedDB/stale"), b"old").unwrap();
        let plain = open_kind(&key, &sid(), &blob, SnapshotKind::ProfileArchive).unwrap();
        unpack(dst.path(), &plain).unwrap();

        let restored = std::fs::read(
            dst.path()
                .join("Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/000003.log"),
        );
        assert_eq!(restored.unwrap(), b"login");
        assert_eq!(
            std::fs::read(dst.path().join("Default/Local Storage/leveldb/CURRENT")).unwrap(),
            b"MANIFEST-1"
        );
        assert!(!dst.path().join("Default/IndexedDB/stale").exists());
        assert!(!dst.path().join("Default/Cache").exists());
    }

    #[test]
    fn a_wrong_key_or_another_session_cannot_open_a_snapshot() {
        const P: SnapshotKind = SnapshotKind::ProfileArchive;
        let blob = seal(&SnapshotKey::random(), &sid(), P, b"state").unwrap();
        assert!(open(&SnapshotKey::random(), &sid(), &blob).is_err());
        let key = SnapshotKey::from_bytes([7; 32]);
        let blob = seal(&key, &sid(), P, b"state").unwrap();
        assert!(open(&key, &SessionId::parse("s2").unwrap(), &blob).is_err());
        assert_eq!(open(&key, &sid(), &blob).unwrap(), (P, b"state".to_vec()));
    }

    #[test]
    fn a_snapshot_says_its_kind_and_the_other_mode_refuses_it_by_name() {
        let key = SnapshotKey::random();
        let dump = seal(&key, &sid(), SnapshotKind::ContextDump, b"{}").unwrap();
        assert_eq!(
            open(&key, &sid(), &dump).unwrap(),
            (SnapshotKind::ContextDump, b"{}".to_vec())
        );
        let err = open_kind(&key, &sid(), &dump, SnapshotKind::ProfileArchive)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("context dump") && err.contains("profile archive"),
            "{err}"
        );
        let archive = seal(&key, &sid(), SnapshotKind::ProfileArchive, b"tar").unwrap();
        assert!(open_kind(&key, &sid(), &archive, SnapshotKind::ContextDump).is_err());
        // The kind is authenticated: relabelling a blob as the other kind breaks it.
        for (blob, other) in [(&dump, 1u8), (&archive, 2u8)] {
            let mut relabelled = blob.clone();
            relabelled[MAGIC.len()] = other;
            assert!(open(&key, &sid(), &relabelled).is_err());
        }
    }

    #[test]
    fn a_context_dump_round_trips_through_gzip() {
        let dump = br#"{"indexedDB":[],"localStorage":{"k":"v"}}"#.repeat(50);
        let packed = gzip(&dump).unwrap();
        assert!(packed.len() < dump.len());
        assert_eq!(gunzip(&packed).unwrap(), dump);
        assert!(gunzip(b"not gzip").is_err());
    }

    #[test]
    fn tampered_snapshots_are_refused() {
        let key = SnapshotKey::random();
        let blob = seal(&key, &sid(), SnapshotKind::ProfileArchive, b"state").unwrap();
        for i in [MAGIC.len() + 1, HEADER_LEN, blob.len() - 1] {
            let mut bad = blob.clone();
            bad[i] ^= 1;
            assert!(open(&key, &sid(), &bad).is_err(), "byte {i}");
        }
        assert!(open(&key, &sid(), &blob[..HEADER_LEN]).is_err());
        let mut other_version = blob.clone();
        other_version[MAGIC.len()] = 9;
        assert!(open(&key, &sid(), &other_version).is_err());
        // Two snapshots of the same state use different nonces.
        assert_ne!(
            seal(&key, &sid(), SnapshotKind::ProfileArchive, b"state").unwrap(),
            blob
        );
    }
}
