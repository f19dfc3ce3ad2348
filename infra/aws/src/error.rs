//! SDK errors to [`openwa_core::Error`]: throttling, timeouts and 5xx are `Unavailable`
//! (retryable), everything else `Unexpected`. Messages name the operation and the service's
//! error code, never request contents.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use openwa_core::error::Error;

/// Service error codes that mean "try again".
const RETRYABLE_CODES: [&str; 8] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestThrottled",
    "TransactionInProgressException",
];

/// Translates any SDK error of operation `op`.
pub fn sdk_error<E, R>(op: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            Error::unavailable(format!("{op}: the AWS endpoint did not answer"))
        }
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().unwrap_or("unknown");
            if RETRYABLE_CODES.contains(&code) {
                Error::unavailable(format!("{op}: {code}"))
            } else {
                let detail = inner.message().unwrap_or("");
                Error::unexpected(format!("{op}: {code} {detail}").trim_end().to_string())
            }
        }
        SdkError::ResponseError(_) => Error::unavailable(format!("{op}: unreadable response")),
        _ => Error::unexpected(format!("{op}: {err:?}")),
    }
}

/// The service error code of an SDK error, if the service answered.
pub fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}
