//! Media bytes: pages upload with `POST /media` (raw body, `Content-Type` = mimetype) and
//! download with `GET /media/{hash}`; the control API stores inbound media the same way.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;
use crate::server::AppState;

/// In-memory media blobs keyed by the URL-safe base64 SHA-256 of their bytes.
#[derive(Debug, Default)]
pub struct MediaStore {
    blobs: Mutex<HashMap<String, (String, Bytes)>>,
}

impl MediaStore {
    /// Store bytes; returns the Msg media attributes (`directPath`, `filehash`, `size`, ...).
    pub fn put(&self, mimetype: &str, bytes: Bytes) -> Value {
        let digest = Sha256::digest(&bytes);
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        let filehash = base64::engine::general_purpose::STANDARD.encode(digest);
        let size = bytes.len();
        self.blobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), (mimetype.to_owned(), bytes));
        json!({
            "directPath": format!("/media/{key}"),
            "filehash": filehash,
            "encFilehash": filehash,
            "mediaKey": crate::util::random_b64(32),
            "size": size,
            "mimetype": mimetype,
        })
    }

    /// Fetch bytes by key.
    pub fn get(&self, key: &str) -> Option<(String, Bytes)> {
        self.blobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }
}

/// `POST /media`.
pub async fn upload(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if body.is_empty() {
        return ApiError::invalid("empty media body").into_response();
    }
    let mimetype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    (StatusCode::CREATED, Json(app.media.put(mimetype, body))).into_response()
}

/// `GET /media/{key}`.
pub async fn download(State(app): State<AppState>, Path(key): Path<String>) -> Response {
    match app.media.get(&key) {
        Some((mime, bytes)) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
        None => ApiError::not_found(format!("media {key}")).into_response(),
    }
}
