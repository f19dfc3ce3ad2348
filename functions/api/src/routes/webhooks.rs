//! `/v1/webhooks`: subscriptions (create — the signing secret is in that response and in the
//! rotation response, nowhere else —, list, get, update, delete), rotating the secret and
//! sending a test event. Deliveries and redelivery are in [`super::deliveries`].
//!
//! A target URL refused by the SSRF guard (a private or loopback address not on the allowlist)
//! is a 400 `invalid_request` with `field: "url"`, like any other invalid URL: the request is
//! wrong, not the server.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use openwa_core::apikey::Role;
use openwa_core::auth::Principal;
use openwa_core::id::{SessionId, WebhookId};
use openwa_core::page::{Page, PageRequest};
use openwa_core::services::{NewWebhook, WebhookPatch};
use openwa_core::webhook::{Delivery, EventPattern, Webhook, WebhookSecret, WebhookTarget};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{WebhookPage, page_request};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, Path, Query, parse_opt, rename};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Only events of this session; absent means every session (needs a key that is not
    /// limited to sessions).
    pub session_id: Option<SessionId>,
    /// Signed HTTP POSTs go to this `http(s)` URL. Give exactly one of `url` and
    /// `sqs_queue_url`.
    pub url: Option<String>,
    /// The event JSON goes to this SQS queue instead (AWS deployments).
    pub sqs_queue_url: Option<String>,
    /// Event filters: `*`, a family like `message.*`, or exact types. Default `["*"]`.
    pub events: Option<Vec<EventPattern>>,
    /// Extra headers sent with every delivery; names the gateway sets are refused.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Also send Meta-style `X-Hub-Signature-256`.
    #[serde(default)]
    pub hub_signature: bool,
    /// Your own `whsec_<base64>` secret; one is generated when absent.
    pub secret: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    /// A new HTTP target (replaces the current target, HTTP or SQS).
    pub url: Option<String>,
    /// A new SQS target (replaces the current target).
    pub sqs_queue_url: Option<String>,
    /// Replaces the event filters.
    pub events: Option<Vec<EventPattern>>,
    /// Replaces the custom headers.
    pub headers: Option<BTreeMap<String, String>>,
    pub hub_signature: Option<bool>,
    /// `true` re-enables a webhook disabled by a 410 answer; `false` pauses deliveries.
    pub active: Option<bool>,
}

/// A webhook with its signing secret, returned by create and rotate-secret only.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The `whsec_…` signing secret. Store it now: it cannot be shown again.
    pub secret: String,
}

impl WebhookWithSecret {
    fn new((webhook, secret): (Webhook, WebhookSecret)) -> Self {
        Self {
            webhook,
            secret: secret.expose().to_owned(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListWebhooksQuery {
    /// Only webhooks that receive this session's events: its own and the all-session ones.
    pub session_id: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

pub fn webhook_id(raw: &str) -> ApiResult<WebhookId> {
    WebhookId::parse(raw).map_err(|e| rename(e, "id"))
}

/// The target named by exactly one of `url` and `sqs_queue_url`, or `None` if neither is given.
fn target(url: Option<&str>, sqs_queue_url: Option<&str>) -> ApiResult<Option<WebhookTarget>> {
    match (url, sqs_queue_url) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "url",
            "give either url or sqs_queue_url, not both",
        )),
        (Some(url), None) => Ok(Some(WebhookTarget::parse_http(url)?)),
        (None, Some(queue)) => Ok(Some(WebhookTarget::parse_sqs(queue)?)),
        (None, None) => Ok(None),
    }
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhookRequest,
    responses((status = 201, body = WebhookWithSecret, description = "Created; the secret is shown this once"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(who): Auth,
    JsonBody(req): JsonBody<CreateWebhookRequest>,
) -> ApiResult<(StatusCode, Json<WebhookWithSecret>)> {
    let target = target(req.url.as_deref(), req.sqs_queue_url.as_deref())?
        .ok_or_else(|| ApiError::invalid("url", "give either url or sqs_queue_url"))?;
    let secret = req
        .secret
        .as_deref()
        .map(WebhookSecret::parse)
        .transpose()?;
    let events = match req.events {
        Some(events) => events,
        None => vec![EventPattern::parse("*")?],
    };
    let new = NewWebhook {
        session_id: req.session_id,
        target,
        events,
        headers: req.headers,
        hub_signature: req.hub_signature,
        secret,
    };
    let created = state.webhooks.create(&who, new).await?;
    Ok((StatusCode::CREATED, Json(WebhookWithSecret::new(created))))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(ListWebhooksQuery),
    responses((status = 200, body = WebhookPage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<ListWebhooksQuery>,
) -> ApiResult<Json<WebhookPage>> {
    let session = parse_opt("session_id", q.session_id.as_deref(), SessionId::parse)?;
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let found = match session {
        None => state.webhooks.list(&who, &page).await?,
        Some(session) => list_for_session(&state, &who, &session, &page).await?,
    };
    Ok(Json(found.into()))
}

/// `WebhookService::list` has no session filter; the store has one. The service's access rules
/// are applied here the same way: viewer role, the session visible to the key (404 otherwise),
/// and only webhooks the key may see.
async fn list_for_session(
    state: &AppState,
    who: &Principal,
    session: &SessionId,
    page: &PageRequest,
) -> ApiResult<Page<Webhook>> {
    who.require(Role::Viewer)?;
    who.check_session(session)?;
    let mut found = state.backend.webhooks.list(Some(session), page).await?;
    found.items.retain(|w| match &w.session_id {
        Some(s) => who.can_see(s),
        None => who.allowed_sessions.is_none(),
    });
    Ok(found)
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Webhook), (status = "4XX", body = ErrorEnvelope)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(state.webhooks.get(&who, &webhook_id(&id)?).await?))
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = UpdateWebhookRequest,
    responses((status = 200, body = Webhook), (status = "4XX", body = ErrorEnvelope)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateWebhookRequest>,
) -> ApiResult<Json<Webhook>> {
    let id = webhook_id(&id)?;
    let patch = WebhookPatch {
        target: target(req.url.as_deref(), req.sqs_queue_url.as_deref())?,
        events: req.events,
        headers: req.headers,
        hub_signature: req.hub_signature,
        active: req.active,
    };
    Ok(Json(state.webhooks.update(&who, &id, patch).await?))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted; no further deliveries are made"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.webhooks.delete(&who, &webhook_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookWithSecret,
        description = "The new secret, shown this once; the old one keeps signing for 24 hours"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookWithSecret>> {
    let rotated = state
        .webhooks
        .rotate_secret(&who, &webhook_id(&id)?)
        .await?;
    Ok(Json(WebhookWithSecret::new(rotated)))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 202, body = Delivery,
        description = "A `webhook.test` event is queued for this webhook only, whatever its filter"),
        (status = 409, body = ErrorEnvelope, description = "The webhook is disabled"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn test(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let delivery = state.webhooks.test(&who, &webhook_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
