//! A webhook's deliveries: list (each with its attempt count, last status code, latency and
//! next attempt), one delivery with its attempts, and redelivery of one delivery or of every
//! dead or retrying delivery in a time range. Redeliveries queue work, so they answer 202.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use openwa_core::Error;
use openwa_core::apikey::Role;
use openwa_core::id::DeliveryId;
use openwa_core::webhook::{Delivery, DeliveryAttempt, DeliveryStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::webhooks::webhook_id;
use super::{DeliveryPage, page_request};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, Path, Query, parse_opt, rename};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListDeliveriesQuery {
    /// Only deliveries in this status: `pending`, `succeeded`, `retrying` or `dead`.
    pub status: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// One delivery and every attempt made so far, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    pub delivery: Delivery,
    pub attempts: Vec<DeliveryAttempt>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverRangeRequest {
    /// RFC 3339; deliveries created at or after it.
    pub since: DateTime<Utc>,
    /// RFC 3339; deliveries created before it. Must be after `since`.
    pub until: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedeliveredCount {
    /// How many dead or retrying deliveries were queued again (at most 10 000 per call).
    pub redelivered: u32,
}

fn delivery_id(raw: &str) -> ApiResult<DeliveryId> {
    DeliveryId::parse(raw).map_err(|e| rename(e, "delivery_id"))
}

fn delivery_status(raw: &str) -> openwa_core::Result<DeliveryStatus> {
    use DeliveryStatus::{Dead, Pending, Retrying, Succeeded};
    [Pending, Succeeded, Retrying, Dead]
        .into_iter()
        .find(|s| s.as_str() == raw)
        .ok_or_else(|| {
            Error::invalid(
                "status",
                "expected one of pending, succeeded, retrying, dead",
            )
        })
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), ListDeliveriesQuery),
    responses((status = 200, body = DeliveryPage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    Query(q): Query<ListDeliveriesQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    let id = webhook_id(&id)?;
    let status = parse_opt("status", q.status.as_deref(), delivery_status)?;
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let found = state.webhooks.deliveries(&who, &id, status, &page).await?;
    Ok(Json(found.into()))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries/{delivery_id}", tag = "webhooks",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 200, body = DeliveryDetail), (status = "4XX", body = ErrorEnvelope)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path((id, delivery)): Path<(String, String)>,
) -> ApiResult<Json<DeliveryDetail>> {
    let (id, delivery) = (webhook_id(&id)?, delivery_id(&delivery)?);
    let (delivery, attempts) = state.webhooks.delivery(&who, &id, &delivery).await?;
    Ok(Json(DeliveryDetail { delivery, attempts }))
}

#[utoipa::path(post, path = "/v1/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    params(("delivery_id" = String, Path)),
    responses((status = 202, body = Delivery, description = "One more attempt is queued now"),
        (status = 409, body = ErrorEnvelope, description = "The webhook is disabled"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn redeliver(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(delivery): Path<String>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let delivery = delivery_id(&delivery)?;
    // The role is checked before the lookup, so a key that may not redeliver cannot probe
    // which delivery ids exist.
    who.require(Role::Operator)?;
    let not_found = || {
        ApiError::from(Error::NotFound {
            resource: "delivery",
        })
    };
    let webhook = match state.backend.deliveries.get(&delivery).await {
        Ok(found) => found.webhook_id,
        Err(Error::NotFound { .. }) => return Err(not_found()),
        Err(other) => return Err(other.into()),
    };
    // A delivery of a webhook the key may not see (or one deleted since) is just as unknown.
    match state.webhooks.redeliver(&who, &webhook, &delivery).await {
        Ok(queued) => Ok((StatusCode::ACCEPTED, Json(queued))),
        Err(Error::NotFound { .. }) => Err(not_found()),
        Err(other) => Err(other.into()),
    }
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/redeliver", tag = "webhooks",
    params(("id" = String, Path)), request_body = RedeliverRangeRequest,
    responses((status = 202, body = RedeliveredCount,
        description = "Every dead or retrying delivery created in `[since, until)` is queued again"),
        (status = 409, body = ErrorEnvelope, description = "The webhook is disabled"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn redeliver_range(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<RedeliverRangeRequest>,
) -> ApiResult<(StatusCode, Json<RedeliveredCount>)> {
    let id = webhook_id(&id)?;
    let redelivered = state
        .webhooks
        .redeliver_range(&who, &id, req.since, req.until)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(RedeliveredCount { redelivered })))
}
