//! `/v1/media`: upload a file once and send it by `media_id`, and download stored media.
//!
//! The upload body is the file itself (not JSON): its `Content-Type` is the media type, and an
//! optional `?filename=` names it. This is the one non-JSON body of the API; base64 in JSON
//! would cost a third more bytes for the largest payloads.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use openwa_core::apikey::{Role, hash_hex};
use openwa_core::content::MediaRef;
use openwa_core::id::MediaId;
use openwa_core::ports::BlobStore;
use openwa_core::services::messages::media_key;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::extract::{Path, Query, rename};
use crate::state::AppState;

/// How long a presigned download link stays valid (backends that offer them, e.g. S3).
const DOWNLOAD_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Raw file bytes, for the document (`type: string` with a media type, as OpenAPI 3.1 says).
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .content_media_type("application/octet-stream")
            .into()
    }
}

impl utoipa::ToSchema for Binary {}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// File name shown to the recipient (documents).
    pub filename: Option<String>,
}

#[utoipa::path(post, path = "/v1/media", tag = "media", params(UploadQuery),
    request_body(content = Binary, content_type = "application/octet-stream",
        description = "The file's bytes, sent with the file's own `Content-Type` (e.g. `image/png`); at most 16 MiB"),
    responses((status = 201, description = "Stored; send it with `{\"media_id\": …}`", body = MediaRef),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn upload(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<MediaRef>)> {
    let mimetype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the file with its own Content-Type",
            )
        })?;
    let media = state
        .messages
        .store_media(&who, body.to_vec(), mimetype, q.filename)
        .await?;
    Ok((StatusCode::CREATED, Json(media)))
}

#[utoipa::path(get, path = "/v1/media/{media_id}", tag = "media", params(("media_id" = String, Path)),
    responses((status = 200, description = "The file, with its stored Content-Type", body = Binary, content_type = "application/octet-stream"),
        (status = 307, description = "Redirect to a short-lived download link (object-store backends)"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn download(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    who.require(Role::Viewer)?;
    let key = media_key(&media_id(&id)?);
    if let Some(url) = state
        .backend
        .blobs
        .presigned_get(&key, DOWNLOAD_LINK_TTL)
        .await?
    {
        return Ok(Redirect::temporary(&url).into_response());
    }
    let (bytes, meta) = state
        .backend
        .blobs
        .get(&key)
        .await
        .map_err(not_found_as_media)?;
    let content_type = HeaderValue::from_str(&meta.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

fn media_id(raw: &str) -> ApiResult<MediaId> {
    MediaId::parse(raw).map_err(|e| rename(e, "media_id"))
}

fn not_found_as_media(error: openwa_core::Error) -> ApiError {
    match error {
        openwa_core::Error::NotFound { .. } => {
            ApiError::new(ErrorCode::NotFound, "media not found")
        }
        other => other.into(),
    }
}

/// Turns a `media_id` from a send request into the reference the message carries. The blob
/// store keeps only type and size, so the hash (part of the idempotency fingerprint) is taken
/// from the bytes here.
pub async fn resolve(
    blobs: &dyn BlobStore,
    field: &str,
    raw: &str,
    filename: Option<String>,
) -> ApiResult<MediaRef> {
    let id = MediaId::parse(raw).map_err(|e| rename(e, field))?;
    let (bytes, meta) = blobs.get(&media_key(&id)).await.map_err(|e| match e {
        openwa_core::Error::NotFound { .. } => {
            ApiError::invalid(field, "no uploaded media has this id")
        }
        other => other.into(),
    })?;
    Ok(MediaRef {
        media_id: id,
        mimetype: meta.content_type,
        filename,
        size: meta.size,
        sha256: hash_hex(&bytes),
    })
}
