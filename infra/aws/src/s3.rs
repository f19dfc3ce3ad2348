//! [`BlobStore`] on S3: the blob at key `k` is object `k` of the stack's bucket, written with
//! SSE (AES256) and its content type. Keys are checked with
//! [`validate_key`](openwa_core::ports::blob::validate_key) before any call.
//!
//! Besides the port's presigned GET, [`S3BlobStore::presigned_put`] lets a client upload
//! directly (media larger than an API request should carry).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use openwa_core::error::{Error, Result};
use openwa_core::ports::blob::validate_key;
use openwa_core::ports::{BlobMeta, BlobStore};

use crate::context::AwsContext;
use crate::error::{error_code, sdk_error};

const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// SigV4's longest presigned URL lifetime.
pub const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct S3BlobStore {
    ctx: Arc<AwsContext>,
}

impl S3BlobStore {
    pub fn new(ctx: Arc<AwsContext>) -> Self {
        Self { ctx }
    }

    fn bucket(&self) -> &str {
        &self.ctx.settings.bucket
    }

    /// A URL a client can PUT `key`'s bytes to for `ttl`. The upload must send the same
    /// `Content-Type` header (it is signed) and the SSE header
    /// `x-amz-server-side-encryption: AES256` (signed too); the bucket's default encryption
    /// applies either way.
    pub async fn presigned_put(
        &self,
        key: &str,
        content_type: &str,
        ttl: Duration,
    ) -> Result<String> {
        validate_key(key)?;
        let req = self
            .ctx
            .s3
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::Aes256)
            .presigned(presigning(ttl)?)
            .await
            .map_err(|e| sdk_error("PutObject (presign)", e))?;
        Ok(req.uri().to_owned())
    }
}

fn presigning(ttl: Duration) -> Result<PresigningConfig> {
    if ttl.is_zero() || ttl > MAX_PRESIGN_TTL {
        return Err(Error::invalid("ttl", "must be between 1 second and 7 days"));
    }
    PresigningConfig::expires_in(ttl).map_err(|e| Error::invalid("ttl", e.to_string()))
}

fn is_missing<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    matches!(error_code(err), Some("NoSuchKey" | "NotFound"))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    #[tracing::instrument(skip_all, fields(key = %key, size = bytes.len()))]
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<BlobMeta> {
        validate_key(key)?;
        let size = bytes.len() as u64;
        self.ctx
            .s3
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| sdk_error("PutObject", e))?;
        Ok(BlobMeta {
            content_type: content_type.to_owned(),
            size,
        })
    }

    async fn get(&self, key: &str) -> Result<(Vec<u8>, BlobMeta)> {
        validate_key(key)?;
        let out = match self
            .ctx
            .s3
            .get_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if is_missing(&e) => return Err(Error::NotFound { resource: "blob" }),
            Err(e) => return Err(sdk_error("GetObject", e)),
        };
        let content_type = out
            .content_type()
            .filter(|t| !t.is_empty())
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|_| Error::unavailable("GetObject: the download broke off"))?
            .into_bytes()
            .to_vec();
        let size = bytes.len() as u64;
        Ok((bytes, BlobMeta { content_type, size }))
    }

    /// S3 deletes are idempotent already: a missing key answers 204.
    #[tracing::instrument(skip_all, fields(key = %key))]
    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        match self
            .ctx
            .s3
            .delete_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_missing(&e) => Ok(()),
            Err(e) => Err(sdk_error("DeleteObject", e)),
        }
    }

    /// Signing is local: no call. The URL works whether or not the blob exists (a GET of a
    /// missing one answers 404).
    async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<Option<String>> {
        validate_key(key)?;
        let req = self
            .ctx
            .s3
            .get_object()
            .bucket(self.bucket())
            .key(key)
            .presigned(presigning(ttl)?)
            .await
            .map_err(|e| sdk_error("GetObject (presign)", e))?;
        Ok(Some(req.uri().to_owned()))
    }
}
