//! `/v1/api-keys` (admin): create (the secret is in that response and nowhere else), list, get,
//! revoke.

use std::collections::BTreeSet;
use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use openwa_core::apikey::{ApiKey, Role};
use openwa_core::id::{ApiKeyId, SessionId};
use openwa_core::services::NewApiKey;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiKeyPage, page_request};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, Path, Query, rename};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub name: String,
    pub role: Role,
    /// Sessions the key may see; absent means all.
    pub allowed_sessions: Option<Vec<SessionId>>,
    /// Networks (`10.0.0.0/8`) or single addresses the key may be used from; absent means any.
    pub allowed_cidrs: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Requests per minute; absent means the server default.
    pub rate_limit_per_minute: Option<u32>,
}

/// The created key: the record plus the secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The API key itself. Store it now: it cannot be shown again.
    pub secret: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListKeysQuery {
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest,
    responses((status = 201, body = CreatedApiKey), (status = "4XX", body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(who): Auth,
    JsonBody(req): JsonBody<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let allowed_cidrs = req
        .allowed_cidrs
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            parse_network(raw).ok_or_else(|| {
                ApiError::invalid(
                    format!("allowed_cidrs[{i}]"),
                    "expected a CIDR or an IP address",
                )
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let new = NewApiKey {
        name: req.name,
        role: req.role,
        allowed_sessions: req.allowed_sessions.map(BTreeSet::from_iter),
        allowed_cidrs,
        rate_limit_per_minute: req.rate_limit_per_minute,
        expires_at: req.expires_at,
    };
    let (key, secret) = state.keys.create(Some(&who), new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key,
            secret: secret.expose().to_owned(),
        }),
    ))
}

fn parse_network(raw: &str) -> Option<IpNet> {
    raw.trim()
        .parse::<IpNet>()
        .ok()
        .or_else(|| raw.trim().parse::<IpAddr>().ok().map(IpNet::from))
}

fn key_id(raw: &str) -> ApiResult<ApiKeyId> {
    ApiKeyId::parse(raw).map_err(|e| rename(e, "id"))
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", params(ListKeysQuery),
    responses((status = 200, body = ApiKeyPage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<ListKeysQuery>,
) -> ApiResult<Json<ApiKeyPage>> {
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    Ok(Json(state.keys.list(&who, &page).await?.into()))
}

#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 200, body = ApiKey), (status = "4XX", body = ErrorEnvelope)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(state.keys.get(&who, &key_id(&id)?).await?))
}

#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked; the key is refused from now on"), (status = "4XX", body = ErrorEnvelope)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.keys.revoke(Some(&who), &key_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/api-keys/{id}/revoke", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 200, description = "The revoked key", body = ApiKey), (status = "4XX", body = ErrorEnvelope)))]
pub async fn revoke(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(state.keys.revoke(Some(&who), &key_id(&id)?).await?))
}
