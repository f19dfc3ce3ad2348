//! Jobs too large for an SQS message: their bytes go to the bucket under
//! [`OVERSIZE_PREFIX`](crate::resources::bucket::OVERSIZE_PREFIX)`<queue name>/<ulid>` and the
//! message carries the key in [`attr::PAYLOAD`]. Receiving reads the object back; acking
//! deletes it; a dead letter keeps it. Objects orphaned by a crash between the upload and the
//! send, or by a FIFO send SQS deduplicated, are left to the bucket's lifecycle rule on the
//! prefix (which must outlive the dead-letter retention, 14 days).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, ServerSideEncryption};
use openwa_core::error::{Error, Result};

use super::wire::{self, Attributes, MAX_MESSAGE_BYTES, attr, string_attr};
use crate::context::AwsContext;
use crate::error::{error_code, sdk_error};
use crate::resources::bucket::OVERSIZE_PREFIX;

/// Room kept free under the SQS limit for the attributes a retry or a dead letter adds.
const ATTRIBUTE_RESERVE: usize = 2 * 1024;
/// The body of a message whose job is in S3 (the key is in an attribute).
const POINTER_BODY: &str = "openwa: payload in S3";

/// The S3 prefix of queue `name`'s payloads.
pub fn queue_prefix(name: &str) -> String {
    format!("{OVERSIZE_PREFIX}{name}/")
}

/// The body to send for `bytes`: encoded inline when it fits SQS's limit, else uploaded with
/// a pointer body and [`attr::PAYLOAD`] set.
pub async fn prepare(
    ctx: &AwsContext,
    queue_name: &str,
    bytes: Vec<u8>,
    attributes: &mut Attributes,
) -> Result<String> {
    let budget = MAX_MESSAGE_BYTES - ATTRIBUTE_RESERVE;
    // Base64 plus its attribute is the largest an encoding gets: below that, no trial needed.
    let worst = bytes.len().div_ceil(3) * 4 + wire::attributes_size(attributes) + 64;
    if worst <= budget {
        return Ok(wire::encode_body(bytes, attributes));
    }
    if bytes.len() <= budget {
        let mut trial = attributes.clone();
        let body = wire::encode_body(bytes.clone(), &mut trial);
        if body.len() + wire::attributes_size(&trial) <= budget {
            *attributes = trial;
            return Ok(body);
        }
    }
    let key = format!("{}{}", queue_prefix(queue_name), ulid::Ulid::new());
    let size = bytes.len();
    ctx.s3
        .put_object()
        .bucket(&ctx.settings.bucket)
        .key(&key)
        .body(ByteStream::from(bytes))
        .content_type("application/octet-stream")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .map_err(|e| sdk_error("PutObject", e))?;
    tracing::debug!(size, %key, "job payload stored in S3");
    attributes.insert(attr::PAYLOAD.into(), string_attr(&key));
    Ok(POINTER_BODY.into())
}

/// The bytes of payload `key`; `NotFound` if the object is gone.
pub async fn fetch(ctx: &AwsContext, key: &str) -> Result<Vec<u8>> {
    let out = match ctx
        .s3
        .get_object()
        .bucket(&ctx.settings.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if error_code(&e) == Some("NoSuchKey") => {
            return Err(Error::NotFound {
                resource: "job payload",
            });
        }
        Err(e) => return Err(sdk_error("GetObject", e)),
    };
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|_| Error::unavailable("GetObject: the payload download broke off"))?;
    Ok(bytes.into_bytes().to_vec())
}

/// Deletes payload `key`, logging a failure: the job is settled either way, and the lifecycle
/// rule collects what is left.
pub async fn delete(ctx: &AwsContext, key: &str) {
    let result = ctx
        .s3
        .delete_object()
        .bucket(&ctx.settings.bucket)
        .key(key)
        .send()
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %sdk_error("DeleteObject", e), %key, "job payload not deleted");
    }
}

/// Deletes every payload under `prefix` (a deleted queue's).
pub async fn delete_prefix(ctx: &AwsContext, prefix: &str) -> Result<()> {
    let bucket = &ctx.settings.bucket;
    let mut token = None;
    loop {
        let out = ctx
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("ListObjectsV2", e))?;
        let ids: Vec<ObjectIdentifier> = out
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        if !ids.is_empty() {
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| Error::unexpected(format!("DeleteObjects: {e}")))?;
            ctx.s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| sdk_error("DeleteObjects", e))?;
        }
        match out.next_continuation_token() {
            Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_owned()),
            _ => return Ok(()),
        }
    }
}
