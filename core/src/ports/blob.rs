//! Blob storage for media and auth snapshots.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub content_type: String,
    pub size: u64,
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Writes (or overwrites) the blob at `key` (a `/`-separated path of safe segments).
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<BlobMeta>;
    /// `NotFound` if absent.
    async fn get(&self, key: &str) -> Result<(Vec<u8>, BlobMeta)>;
    /// Idempotent.
    async fn delete(&self, key: &str) -> Result<()>;
    /// A time-limited URL the client can GET directly, where the backend offers one (S3);
    /// `None` where the API serves the bytes itself (embedded).
    async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<Option<String>>;
}

/// Checks a blob key: 1–512 chars of `[A-Za-z0-9._-]` segments joined by `/`, no `..`.
pub fn validate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(crate::error::Error::invalid(
            "key",
            "is not a valid blob key",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_cannot_escape_their_root() {
        assert!(validate_key("media/med_01.bin").is_ok());
        for bad in [
            "", "/abs", "a//b", "../x", "a/../b", "a/./b", "a\\b", "sp ace",
        ] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
    }
}
