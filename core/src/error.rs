//! The one error type of the domain. Its variants drive decisions (retry, status code, fencing);
//! adapters translate SDK/driver errors into it at their edge and never leak them here.

use std::time::Duration;

/// Result alias used by ports and services.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input broke a rule; `field` names the offending part (JSON pointer-ish path).
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },

    /// The resource does not exist, or the caller may not know that it exists.
    #[error("{resource} not found")]
    NotFound { resource: &'static str },

    /// The write lost a race or would overwrite something (duplicate id, stale version).
    #[error("conflict: {message}")]
    Conflict { message: String },

    /// The same idempotency key was used with a different request body.
    #[error("idempotency key was already used with a different request")]
    IdempotencyMismatch,

    /// A runner wrote with a lease epoch that is no longer current (fencing).
    #[error("lease lost: epoch {epoch} is stale")]
    StaleEpoch { epoch: u64 },

    /// No, unknown, revoked or expired credentials.
    #[error("missing or invalid credentials")]
    Unauthenticated,

    /// Authenticated, but the role or network does not allow this.
    #[error("forbidden: {message}")]
    Forbidden { message: String },

    /// Too many requests for the caller's budget.
    #[error("rate limit exceeded")]
    RateLimited { retry_after: Duration },

    /// The request is well-formed but too large for the resource.
    #[error("too large: {message}")]
    TooLarge { message: String },

    /// A dependency is down or throttling; the operation may succeed if retried.
    #[error("temporarily unavailable: {message}")]
    Unavailable { message: String },

    /// A bug or an unexpected state. The message is for logs, never for clients.
    #[error("unexpected: {message}")]
    Unexpected { message: String },
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
        }
    }

    pub fn unexpected(message: impl Into<String>) -> Self {
        Self::Unexpected {
            message: message.into(),
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::RateLimited { .. })
    }

    /// Prefixes the field of an `Invalid` error, e.g. `text.body` inside `content`.
    pub fn within(self, parent: &str) -> Self {
        match self {
            Self::Invalid { field, message } => Self::Invalid {
                field: format!("{parent}.{field}"),
                message,
            },
            other => other,
        }
    }
}
