//! [`BlobStore`] on the filesystem: the blob at key `a/b` is the file `<root>/a/b`, its content
//! type the sidecar `<root>/a/b.~meta`. Keys are checked with
//! [`openwa_core::ports::blob::validate_key`], which allows no `~`, so no key can
//! name a sidecar or a temp file, and no `..`, so no key can leave the root.
//!
//! Writes go to a temp file beside the target, are flushed to disk, then renamed over it, so a
//! reader sees the old blob or the new one, never half of one.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use openwa_core::error::{Error, Result};
use openwa_core::ports::blob::validate_key;
use openwa_core::ports::{BlobMeta, BlobStore};

use super::db::{blocking, io_error};

const META_SUFFIX: &str = ".~meta";
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// A store rooted at `root`, created if missing.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| io_error("blob directory", e))?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    fn paths(&self, key: &str) -> Result<(PathBuf, PathBuf)> {
        validate_key(key)?;
        let data = self.root.join(key);
        let meta = self.root.join(format!("{key}{META_SUFFIX}"));
        Ok((data, meta))
    }
}

/// Writes `bytes` to `path` through a synced temp file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "blob path has no parent"))?;
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let tmp = dir.join(format!(".{name}.~tmp{}", ulid::Ulid::new()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn blob_io(e: std::io::Error) -> Error {
    match e.kind() {
        // `a/b` when `a` is a blob, or `a` when `a/…` blobs exist.
        ErrorKind::NotADirectory
        | ErrorKind::IsADirectory
        | ErrorKind::AlreadyExists
        | ErrorKind::DirectoryNotEmpty => {
            Error::conflict("the blob key collides with an existing key's path")
        }
        _ => io_error("blob store", e),
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    #[tracing::instrument(skip_all, fields(key = %key, size = bytes.len()))]
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<BlobMeta> {
        let (data, meta) = self.paths(key)?;
        let content_type = content_type.to_owned();
        blocking(move || {
            // If the target is a directory, rename would fail obscurely; say what it is.
            if data.is_dir() {
                return Err(Error::conflict(
                    "the blob key collides with an existing key's path",
                ));
            }
            write_atomically(&data, &bytes).map_err(blob_io)?;
            write_atomically(&meta, content_type.as_bytes()).map_err(blob_io)?;
            Ok(BlobMeta {
                content_type,
                size: bytes.len() as u64,
            })
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<(Vec<u8>, BlobMeta)> {
        let (data, meta) = self.paths(key)?;
        blocking(move || {
            let bytes = match std::fs::read(&data) {
                Ok(b) => b,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory
                    ) =>
                {
                    return Err(Error::NotFound { resource: "blob" });
                }
                Err(e) => return Err(io_error("blob store", e)),
            };
            let content_type = match std::fs::read_to_string(&meta) {
                Ok(t) if !t.is_empty() => t,
                Ok(_) => DEFAULT_CONTENT_TYPE.to_owned(),
                Err(e) if e.kind() == ErrorKind::NotFound => DEFAULT_CONTENT_TYPE.to_owned(),
                Err(e) => return Err(io_error("blob store", e)),
            };
            let size = bytes.len() as u64;
            Ok((bytes, BlobMeta { content_type, size }))
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(key = %key))]
    async fn delete(&self, key: &str) -> Result<()> {
        let (data, meta) = self.paths(key)?;
        let root = self.root.clone();
        blocking(move || {
            if data.is_dir() {
                return Ok(());
            }
            remove_if_present(&data).map_err(blob_io)?;
            remove_if_present(&meta).map_err(blob_io)?;
            // Tidy directories the blob leaves empty; failure only means one is still in use.
            let mut dir = data.parent();
            while let Some(d) = dir.filter(|d| *d != root) {
                if std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await
    }

    async fn presigned_get(&self, key: &str, _ttl: Duration) -> Result<Option<String>> {
        validate_key(key)?;
        Ok(None)
    }
}
