//! Auth-state snapshots: the browser profile parts that hold the WhatsApp login
//! (`Default/IndexedDB` and `Default/Local Storage`) are archived (tar + gzip), encrypted with
//! AES-256-GCM and kept in the blob store at `snapshots/<session>/latest`, so another runner
//! can continue the session without a new QR scan.
//!
//! Blob format: `OWSNAP` magic, one version byte (1), the 12-byte random nonce, then the
//! ciphertext (with its 16-byte tag). The session id is the associated data, so a snapshot
//! cannot be replayed into another session. The key is 32 random bytes, base64, stored in the
//! `Secrets` port under [`KEY_SECRET_NAME`] and created on first use.

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

use crate::error::{Result, RunnerError};

/// The secret holding the snapshot key (base64 of 32 bytes).
pub const KEY_SECRET_NAME: &str = "runner-snapshot-key";
/// The profile directories that hold the login, relative to the profile root.
pub const AUTH_DIRS: [&str; 2] = ["Default/IndexedDB", "Default/Local Storage"];

const MAGIC: &[u8; 6] = b"OWSNAP";
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = MAGIC.len() + 1 + NONCE_LEN;
const CONTENT_TYPE: &str = "application/vnd.openwa.snapshot";

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

/// Encrypts `plain` for `session`: header + ciphertext.
pub fn seal(key: &SnapshotKey, session: &SessionId, plain: &[u8]) -> Result<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let cipher =
        Aes256Gcm::new_from_slice(&key.0).map_err(|e| RunnerError::Snapshot(e.to_string()))?;
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: session.as_str().as_bytes(),
            },
        )
        .map_err(|_| RunnerError::Snapshot("encryption failed".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts a blob made by [`seal`]; fails on a wrong key, another session, or any tampering.
pub fn open(key: &SnapshotKey, session: &SessionId, blob: &[u8]) -> Result<Vec<u8>> {
    if blob.len() < HEADER_LEN || &blob[..MAGIC.len()] != MAGIC {
        return Err(RunnerError::Snapshot("not a snapshot".into()));
    }
    if blob[MAGIC.len()] != VERSION {
        return Err(RunnerError::Snapshot(format!(
            "unsupported snapshot version {}",
            blob[MAGIC.len()]
        )));
    }
    let nonce = &blob[MAGIC.len() + 1..HEADER_LEN];
    let cipher =
        Aes256Gcm::new_from_slice(&key.0).map_err(|e| RunnerError::Snapshot(e.to_string()))?;
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: &blob[HEADER_LEN..],
                aad: session.as_str().as_bytes(),
            },
        )
        .map_err(|_| {
            RunnerError::Snapshot("decryption failed (wrong key or tampered snapshot)".into())
        })
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
        let sealed = tokio::task::spawn_blocking(move || seal(&key, &id, &archive(&profile)?))
            .await
            .map_err(|e| RunnerError::Snapshot(e.to_string()))??;
        let meta = self
            .blobs
            .put(&snapshot_key(session), sealed, CONTENT_TYPE)
            .await?;
        tracing::debug!(size = meta.size, "snapshot stored");
        Ok(meta.size)
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
        tokio::task::spawn_blocking(move || unpack(&profile, &open(&key, &id, &blob)?))
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
        let blob = seal(&key, &sid(), &archive(src.path()).unwrap()).unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dst.path().join("Default/IndexedDB")).unwrap();
        std::fs::write(dst.path().join("Default/IndexedDB/stale"), b"old").unwrap();
        unpack(dst.path(), &open(&key, &sid(), &blob).unwrap()).unwrap();

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
        let blob = seal(&SnapshotKey::random(), &sid(), b"state").unwrap();
        assert!(open(&SnapshotKey::random(), &sid(), &blob).is_err());
        let key = SnapshotKey::from_bytes([7; 32]);
        let blob = seal(&key, &sid(), b"state").unwrap();
        assert!(open(&key, &SessionId::parse("s2").unwrap(), &blob).is_err());
        assert_eq!(open(&key, &sid(), &blob).unwrap(), b"state");
    }

    #[test]
    fn tampered_snapshots_are_refused() {
        let key = SnapshotKey::random();
        let blob = seal(&key, &sid(), b"state").unwrap();
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
        assert_ne!(seal(&key, &sid(), b"state").unwrap(), blob);
    }
}
