//! Errors: the library error ([`SimError`]) and the control API's error envelope ([`ApiError`]).
//!
//! Every control API failure is answered as `{"error":{"code","message"}}`; one table
//! ([`ApiError::status`]) maps each code to its HTTP status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Failures of the simulator as a library.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The state file could not be read, is corrupt, has an unknown version, or cannot be
    /// written.
    #[error("state file {}: {reason}", path.display())]
    StateFile {
        path: std::path::PathBuf,
        reason: String,
    },
}

/// A control API error with a stable, snake_case `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request was malformed or named an impossible value.
    #[error("{0}")]
    Invalid(String),
    /// The named resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (e.g. the account already exists).
    #[error("{0}")]
    Conflict(String),
}

impl ApiError {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_request",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
        }
    }

    /// The HTTP status for this error (the one table of code -> status).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
        }
    }

    /// Shorthand for a not-found error about `what`.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// Shorthand for an invalid-request error.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        (self.status(), Json(body)).into_response()
    }
}
