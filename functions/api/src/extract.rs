//! Extractors whose rejections are [`ApiError`]s, so bad input gets the envelope with a precise
//! code: 415 for a non-JSON body, 413 over the body limit, `malformed_json` for syntax errors and
//! `invalid_request` with the JSON path as `field` for wrong types, unknown fields and values the
//! domain refuses.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::of(ErrorCode::UnsupportedMediaType));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let code = ErrorCode::from_status(rejection.status());
            let message = match code {
                ErrorCode::PayloadTooLarge => code.default_message().to_owned(),
                _ => rejection.body_text(),
            };
            ApiError::new(code, message)
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON document, naming the failing path on data errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { None } else { Some(path) };
                ApiError {
                    field,
                    ..ApiError::new(ErrorCode::InvalidRequest, inner.to_string())
                }
            }
            _ => ApiError::new(ErrorCode::MalformedJson, inner.to_string()),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))?;
    Ok(value)
}

/// `application/json`, or any `application/<something>+json`, with optional parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Path parameters; a rejection (e.g. bad percent-encoding) is a 400 envelope.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters; a rejection (e.g. `limit=abc`) is a 400 envelope.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Parses one optional query value with a domain parser, naming the parameter on failure.
pub fn parse_opt<T>(
    field: &str,
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> openwa_core::Result<T>,
) -> Result<Option<T>, ApiError> {
    raw.filter(|s| !s.is_empty())
        .map(|s| parse(s).map_err(|e| rename(e, field)))
        .transpose()
}

/// Re-labels a domain `Invalid` error with the request's own field name (the domain says
/// `chat_id`, the request calls it `to`).
pub fn rename(error: openwa_core::Error, field: &str) -> ApiError {
    match error {
        openwa_core::Error::Invalid { message, .. } => ApiError::invalid(field, message),
        other => other.into(),
    }
}

/// Unit-level helpers only; the router tests exercise the extractors end to end.
#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        to: String,
        n: u32,
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let err = parse_json::<Body>(br#"{"to":"x","n":"seven"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert_eq!(err.field.as_deref(), Some("n"));
    }

    #[test]
    fn broken_json_and_trailing_garbage_are_malformed() {
        assert_eq!(
            parse_json::<Body>(br#"{"to":"#).unwrap_err().code,
            ErrorCode::MalformedJson
        );
        assert_eq!(
            parse_json::<Body>(br#"{"to":"x","n":1} x"#)
                .unwrap_err()
                .code,
            ErrorCode::MalformedJson
        );
    }

    #[test]
    fn json_content_types_with_parameters_and_suffixes_are_accepted() {
        let mut h = HeaderMap::new();
        for (ct, ok) in [
            ("application/json; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
        ] {
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }
}
