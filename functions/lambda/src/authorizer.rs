//! The `authorizer` Lambda: an API Gateway HTTP API Lambda authorizer (payload format 2.0,
//! simple responses) that checks openwa API keys before a request reaches the `api` Lambda.
//!
//! It reads the key from the same headers the API does (`Authorization: Bearer <key>` or
//! `X-API-Key: <key>`, see [`openwa_api::auth::presented_key`]), looks it up by hash through
//! [`ApiKeyService::authenticate`] — which refuses unknown, revoked and expired keys and source
//! addresses (`requestContext.http.sourceIp`) outside the key's CIDRs, and records the key's
//! use — and answers `{"isAuthorized": true, "context": {...}}` with the [`AuthorizerContext`],
//! or `{"isAuthorized": false}`. API Gateway turns a denial into its own `403 {"message":
//! "Forbidden"}` (not the openwa envelope); a store failure is returned as a Lambda error, which
//! API Gateway answers with a 500 and does not cache.
//!
//! # What Terraform must configure
//!
//! - `authorizer_payload_format_version = "2.0"`, `enable_simple_responses = true`.
//! - Attach the authorizer to the `/v1/...` routes only: `/health`, `/openapi.json` and `/docs`
//!   are public. The `api` Lambda (with `OPENWA_TRUST_GATEWAY_AUTHORIZER`, its default) answers
//!   401 on any `/v1` request that arrives without this authorizer's context.
//! - **Identity source.** API Gateway answers 401 without calling the authorizer when an
//!   identity source is missing, and caches results per identity-source values. Two valid
//!   set-ups:
//!   - caching on (`authorizer_result_ttl_in_seconds` > 0): identity sources
//!     `$request.header.Authorization` **and** `$context.identity.sourceIp`. The source IP must
//!     be part of the cache key, or an allow cached for one address would skip another
//!     address's CIDR check. Clients must then use `Authorization: Bearer`; `X-API-Key` alone is
//!     refused by the gateway.
//!   - caching off (TTL 0): no identity source, so both headers work and every request is
//!     checked.
//! - With caching, a revoked key stays usable for up to the cache TTL: keep it short (≤ 60 s).
//!
//! # The context
//!
//! API Gateway allows only strings, numbers and booleans as context values, so everything is a
//! string (see [`AuthorizerContext`]); the `api` Lambda reads it back from
//! `requestContext.authorizer.lambda` with [`AuthorizerContext::from_fields`].

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use openwa_core::Error;
use openwa_core::apikey::Role;
use openwa_core::auth::Principal;
use openwa_core::id::{ApiKeyId, SessionId};
use openwa_core::ports::Backend;
use openwa_core::services::{ApiKeyService, AuditLog};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event API Gateway sends (payload format 2.0).
pub type AuthorizerRequest = ApiGatewayV2CustomAuthorizerV2Request;

/// `allowed_sessions` of a key that may see every session.
pub const ALL_SESSIONS: &str = "*";

/// The authorizer's verdict, in API Gateway's simple-response shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub is_authorized: bool,
    /// Present only on allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<AuthorizerContext>,
}

impl AuthorizerResponse {
    pub fn allow(principal: &Principal) -> Self {
        Self {
            is_authorized: true,
            context: Some(AuthorizerContext::from_principal(principal)),
        }
    }

    pub fn deny() -> Self {
        Self {
            is_authorized: false,
            context: None,
        }
    }
}

/// Who the caller is, as the authorizer hands it to the API. Every value is a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerContext {
    /// The key's id (`ApiKeyId`), for audit and rate limiting.
    pub key_id: String,
    /// The key's name, for audit entries.
    pub key_name: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    /// [`ALL_SESSIONS`] (`*`) for every session, otherwise the allowed session ids separated by
    /// commas (empty: none). Session ids never contain `*` or `,`.
    pub allowed_sessions: String,
    /// The key's own requests per minute; absent means the API's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<String>,
}

impl AuthorizerContext {
    pub fn from_principal(p: &Principal) -> Self {
        let allowed_sessions = match &p.allowed_sessions {
            None => ALL_SESSIONS.to_owned(),
            Some(ids) => ids
                .iter()
                .map(SessionId::as_str)
                .collect::<Vec<_>>()
                .join(","),
        };
        Self {
            key_id: p.key_id.to_string(),
            key_name: p.key_name.clone(),
            role: p.role.as_str().to_owned(),
            allowed_sessions,
            rate_limit_per_minute: p.rate_limit_per_minute.map(|n| n.to_string()),
        }
    }

    /// Reads `requestContext.authorizer.lambda`. API Gateway may pass the values back as the
    /// JSON types they were returned as, so numbers are accepted where strings are expected.
    pub fn from_fields(fields: &HashMap<String, Value>) -> Result<Self, Error> {
        let text = |name: &'static str| -> Result<String, Error> {
            match fields.get(name) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                _ => Err(Error::invalid(name, "missing from the authorizer context")),
            }
        };
        Ok(Self {
            key_id: text("key_id")?,
            key_name: text("key_name")?,
            role: text("role")?,
            allowed_sessions: text("allowed_sessions")?,
            rate_limit_per_minute: text("rate_limit_per_minute").ok(),
        })
    }

    /// The principal the API acts for; `source_ip` is the gateway's `sourceIp`.
    pub fn into_principal(self, source_ip: Option<IpAddr>) -> Result<Principal, Error> {
        let allowed_sessions = match self.allowed_sessions.as_str() {
            ALL_SESSIONS => None,
            "" => Some(BTreeSet::new()),
            list => Some(
                list.split(',')
                    .map(SessionId::parse)
                    .collect::<Result<BTreeSet<_>, _>>()?,
            ),
        };
        let rate_limit_per_minute = self
            .rate_limit_per_minute
            .map(|n| {
                n.parse()
                    .map_err(|_| Error::invalid("rate_limit_per_minute", "must be a number"))
            })
            .transpose()?;
        Ok(Principal {
            key_id: ApiKeyId::parse(&self.key_id)?,
            key_name: self.key_name,
            role: Role::parse(&self.role)?,
            allowed_sessions,
            rate_limit_per_minute,
            source_ip,
        })
    }
}

/// The authorizer: the key service over the backend's key store.
#[derive(Clone)]
pub struct Authorizer {
    keys: ApiKeyService,
}

impl Authorizer {
    pub fn new(backend: &Backend) -> Self {
        let audit = AuditLog::new(backend.audit.clone(), backend.clock.clone());
        let keys = ApiKeyService::new(backend.keys.clone(), audit, backend.clock.clone());
        Self { keys }
    }

    /// Allows or denies one request. `Err` only when the verdict could not be reached (store
    /// unavailable): API Gateway then answers 500 instead of caching a denial.
    #[tracing::instrument(skip_all, fields(route = event.route_key.as_deref().unwrap_or("")))]
    pub async fn authorize(&self, event: &AuthorizerRequest) -> Result<AuthorizerResponse, Error> {
        let source_ip = event
            .request_context
            .http
            .source_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let Some(presented) = openwa_api::auth::presented_key(&event.headers) else {
            tracing::info!(reason = "no API key", "denied");
            return Ok(AuthorizerResponse::deny());
        };
        match self.keys.authenticate(&presented, source_ip).await {
            Ok(principal) => {
                tracing::info!(key_id = %principal.key_id, "allowed");
                Ok(AuthorizerResponse::allow(&principal))
            }
            Err(error @ (Error::Unavailable { .. } | Error::Unexpected { .. })) => {
                tracing::error!(%error, "key lookup failed");
                Err(error)
            }
            Err(error) => {
                tracing::info!(reason = %error, "denied");
                Ok(AuthorizerResponse::deny())
            }
        }
    }
}
