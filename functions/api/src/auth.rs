//! Authentication and per-key rate limiting, as one middleware on every `/v1` route.
//!
//! The key comes from `Authorization: Bearer <key>` or `X-API-Key: <key>` ([`presented_key`]);
//! the client address from the connection (`ConnectInfo`) or, when configured, from
//! `X-Forwarded-For`.
//! [`ApiKeyService::authenticate`](openwa_core::services::ApiKeyService::authenticate) turns both
//! into a [`Principal`], which handlers receive through the [`Auth`] extractor.
//!
//! Behind API Gateway with the openwa Lambda authorizer, the key was already checked (hash,
//! revocation, expiry, CIDRs) before the request reached the API. With
//! [`ApiConfig::trust_gateway_authorizer`](crate::ApiConfig::trust_gateway_authorizer) set, the
//! principal is taken from the [`GatewayIdentity`] extension the Lambda adapter builds from
//! `requestContext.authorizer.lambda`, and a request without one is unauthenticated. Without the
//! setting (`openwa up`, the default) that extension is ignored: only a presented key counts.
//! Rate limiting, session allowlists and audit are the same either way.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use openwa_core::Error;
use openwa_core::auth::Principal;
use openwa_core::ports::RateDecision;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The authenticated caller of a `/v1` route.
pub struct Auth(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Only missing if a route was mounted without the middleware: fail closed.
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| ApiError::of(ErrorCode::Unauthenticated))
    }
}

/// The caller as API Gateway's Lambda authorizer established it, inserted into the request's
/// extensions by the Lambda adapter (`openwa_lambda::api`). Only read when
/// [`ApiConfig::trust_gateway_authorizer`](crate::ApiConfig::trust_gateway_authorizer) is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayIdentity(pub Principal);

/// Authenticates the request, applies the key's rate limit, and adds the `RateLimit-*` headers.
pub async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let ip = client_ip(&req, state.config.trust_forwarded_for);
    // Removed in both modes, so nothing downstream can mistake it for an authenticated caller.
    let gateway = req.extensions_mut().remove::<GatewayIdentity>();
    let principal = if state.config.trust_gateway_authorizer {
        let GatewayIdentity(mut principal) = gateway.ok_or(Error::Unauthenticated)?;
        principal.source_ip = ip;
        principal
    } else {
        let presented = presented_key(req.headers()).ok_or(Error::Unauthenticated)?;
        state.keys.authenticate(&presented, ip).await?
    };
    tracing::Span::current().record("key_id", tracing::field::display(&principal.key_id));
    let budget = rate_limit(&state, &principal).await?;

    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let action = audited_action(req.method(), route);
    let resource = req.uri().path().to_owned();
    req.extensions_mut().insert(principal.clone());
    let mut res = next.run(req).await;

    // Services audit what they did; refusals never reach them, so they are recorded here.
    if let (Some(action), Some(error)) = (action, res.extensions().get::<ApiError>())
        && error.code == ErrorCode::Forbidden
    {
        let result = error.code.as_str();
        state
            .audit
            .record(Some(&principal), action, resource, None, result)
            .await;
    }
    if let Some(budget) = budget {
        res.headers_mut()
            .insert("ratelimit-limit", HeaderValue::from(budget.limit));
        res.headers_mut()
            .insert("ratelimit-remaining", HeaderValue::from(budget.remaining));
    }
    Ok(res)
}

/// Counts the request against the key's budget (its own limit or the server default).
/// `None` when the limiter is down: fail open, a limiter outage should not take the API down.
async fn rate_limit(
    state: &AppState,
    principal: &Principal,
) -> Result<Option<RateDecision>, ApiError> {
    let per_minute = principal
        .rate_limit_per_minute
        .unwrap_or(state.config.default_rate_limit_per_minute);
    let key = format!("key:{}", principal.key_id);
    match state
        .backend
        .rate_limiter
        .check(&key, per_minute, state.backend.clock.now())
        .await
    {
        Ok(decision) if !decision.allowed => Err(Error::RateLimited {
            retry_after: decision.retry_after,
        }
        .into()),
        Ok(decision) => Ok(Some(decision)),
        Err(error) => {
            tracing::warn!(%error, "rate limiter unavailable; request let through");
            Ok(None)
        }
    }
}

/// The audit action of each mutating route, for recording refused attempts.
fn audited_action(method: &Method, route: Option<&str>) -> Option<&'static str> {
    Some(match (method.as_str(), route?) {
        ("POST", "/v1/sessions") => "session.create",
        ("PATCH", "/v1/sessions/{id}") => "session.update",
        ("DELETE", "/v1/sessions/{id}") => "session.delete",
        ("POST", "/v1/sessions/{id}/start") => "session.start",
        ("POST", "/v1/sessions/{id}/stop") => "session.stop",
        ("POST", "/v1/sessions/{id}/messages") => "message.send",
        ("POST", "/v1/media") => "media.upload",
        ("POST", "/v1/api-keys") => "api_key.create",
        ("DELETE", "/v1/api-keys/{id}") | ("POST", "/v1/api-keys/{id}/revoke") => "api_key.revoke",
        ("POST", "/v1/webhooks") => "webhook.create",
        ("PATCH", "/v1/webhooks/{id}") => "webhook.update",
        ("DELETE", "/v1/webhooks/{id}") => "webhook.delete",
        ("POST", "/v1/webhooks/{id}/rotate-secret") => "webhook.rotate_secret",
        ("POST", "/v1/webhooks/{id}/test") => "webhook.test",
        ("POST", "/v1/deliveries/{delivery_id}/redeliver") => "webhook.redeliver",
        ("POST", "/v1/webhooks/{id}/redeliver") => "webhook.redeliver_range",
        _ => return None,
    })
}

/// The presented secret, from either header (the Lambda authorizer reads the same). Never
/// logged.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// The caller's address: the connection's peer, or the right-most `X-Forwarded-For` entry (the
/// one our own proxy appended; entries to its left are client-controlled) when trusted.
pub fn client_ip(req: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn the_key_is_read_from_either_header() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer owa_x")])).as_deref(),
            Some("owa_x")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer owa_x")])).as_deref(),
            Some("owa_x")
        );
        assert_eq!(
            presented_key(&headers(&[("x-api-key", "owa_y")])).as_deref(),
            Some("owa_y")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(presented_key(&headers(&[])), None);
    }

    #[test]
    fn forwarded_for_is_ignored_unless_trusted() {
        let mut req = Request::new(axum::body::Body::empty());
        req.headers_mut()
            .insert("x-forwarded-for", "203.0.113.9, 10.0.0.7".parse().unwrap());
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000))));
        assert_eq!(client_ip(&req, false), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(client_ip(&req, true), Some("10.0.0.7".parse().unwrap()));
    }
}
