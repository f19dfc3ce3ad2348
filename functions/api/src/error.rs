//! The API's one error type and its wire contract.
//!
//! Every failure becomes an [`ApiError`]: a stable [`ErrorCode`], a message safe to show, and for
//! invalid input the offending `field`. [`ErrorCode::status`] is the one table from code to HTTP
//! status. `ApiError::into_response` does not write the body itself: it attaches the error to the
//! response, and the request middleware (which knows the request id) renders the envelope
//!
//! ```json
//! {"error": {"code": "invalid_request", "message": "...", "field": "to", "request_id": "..."}}
//! ```
//!
//! The same middleware turns any other error response (axum's own 404/405/413, a caught panic)
//! into that envelope, so no response leaves the router in another shape.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use openwa_core::Error;
use serde::Serialize;
use utoipa::ToSchema;

/// Stable, snake_case error codes. Clients branch on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    MalformedJson,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    IdempotencyKeyReused,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The one table: each code, its HTTP status, and its wire name.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest | Self::MalformedJson => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::MalformedJson => "malformed_json",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The code for an error response produced outside our handlers (axum, tower-http).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthenticated,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::CONFLICT => Self::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => Self::InvalidRequest,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            s if s.is_client_error() => Self::InvalidRequest,
            _ => Self::Internal,
        }
    }

    /// A generic message for responses that did not come with one.
    pub fn default_message(self) -> &'static str {
        match self {
            Self::InvalidRequest => "the request is invalid",
            Self::MalformedJson => "the request body is not valid JSON",
            Self::Unauthenticated => "missing or invalid API key",
            Self::Forbidden => "this key may not do that",
            Self::NotFound => "no such resource",
            Self::MethodNotAllowed => "this method is not allowed on this resource",
            Self::Conflict => "the request conflicts with the current state",
            Self::PayloadTooLarge => "the request body is too large",
            Self::UnsupportedMediaType => "send JSON with `Content-Type: application/json`",
            Self::IdempotencyKeyReused => {
                "the idempotency key was already used with a different request"
            }
            Self::RateLimited => "rate limit exceeded",
            Self::Unavailable => "a dependency is temporarily unavailable; retry later",
            Self::Internal => "internal error; quote the request id when reporting it",
        }
    }
}

/// The error envelope, as documented in the OpenAPI document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// For `invalid_request`: the offending part of the request (`to`, `text.body`, `limit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Also sent as the `x-request-id` header; quote it when reporting a problem.
    pub request_id: String,
}

/// A failed request, ready to render.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(ErrorCode::InvalidRequest, message)
        }
    }

    /// A 500 whose cause is logged here, once, inside the request's span (which carries the
    /// request id); the client sees only the generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed with an internal error");
        Self::new(ErrorCode::Internal, ErrorCode::Internal.default_message())
    }

    pub fn of(code: ErrorCode) -> Self {
        Self::new(code, code.default_message())
    }

    pub fn body(&self, request_id: &str) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                code: self.code,
                message: self.message.clone(),
                field: self.field.clone(),
                request_id: request_id.to_owned(),
            },
        }
    }

    /// The final response: status, envelope and the headers some codes carry.
    pub fn render(&self, request_id: &str) -> Response {
        let mut res = (self.code.status(), Json(self.body(request_id))).into_response();
        let headers = res.headers_mut();
        if self.code == ErrorCode::Unauthenticated {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(after) = self.retry_after {
            // Round up: a client that waits the advertised time must then succeed.
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid { field, message } => Self::invalid(field, message),
            Error::NotFound { resource } => {
                Self::new(ErrorCode::NotFound, format!("{resource} not found"))
            }
            Error::Conflict { message } => Self::new(ErrorCode::Conflict, message),
            Error::IdempotencyMismatch => Self::of(ErrorCode::IdempotencyKeyReused),
            Error::Unauthenticated => Self::of(ErrorCode::Unauthenticated),
            Error::Forbidden { message } => Self::new(ErrorCode::Forbidden, message),
            Error::RateLimited { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::of(ErrorCode::RateLimited)
            },
            Error::TooLarge { message } => Self::new(ErrorCode::PayloadTooLarge, message),
            // Runner-side fencing; an API caller only sees that the state moved under it.
            Error::StaleEpoch { .. } => Self::of(ErrorCode::Conflict),
            Error::Unavailable { message } => {
                tracing::warn!(error = %message, "dependency unavailable");
                Self::of(ErrorCode::Unavailable)
            }
            Error::Unexpected { message } => Self::internal(message),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(
            ErrorCode::from_status(rejection.status()),
            rejection.body_text(),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(ErrorCode::InvalidRequest, rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    /// Leaves the body to the request middleware, which adds the request id; a response that
    /// somehow bypasses it still carries the right status.
    fn into_response(self) -> Response {
        let mut res = self.code.status().into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_back_from_its_own_status_where_unambiguous() {
        for code in [
            ErrorCode::Unauthenticated,
            ErrorCode::NotFound,
            ErrorCode::RateLimited,
            ErrorCode::PayloadTooLarge,
        ] {
            assert_eq!(ErrorCode::from_status(code.status()), code);
        }
    }

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::IdempotencyKeyReused,
            ErrorCode::Internal,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn internal_errors_do_not_reveal_their_cause() {
        let err = ApiError::from(Error::unexpected("sqlite: disk I/O error at /var/lib/x"));
        assert_eq!(err.code, ErrorCode::Internal);
        assert!(!err.message.contains("sqlite"));
    }
}
