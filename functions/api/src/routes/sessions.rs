//! `/v1/sessions`: create, list, get, update, delete, and start/stop (the desired state only; a
//! runner acts on it).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use openwa_core::id::SessionId;
use openwa_core::services::{NewSession, SessionPatch};
use openwa_core::session::{DesiredState, Session, SessionConfig, SessionStatus};
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};

use super::{SessionPage, page_request};
use crate::auth::Auth;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, Path, Query, parse_opt, rename};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// Your slug for the session: lower-case letters, digits and `-`, 1 to 64 characters.
    pub id: SessionId,
    pub name: Option<String>,
    pub config: Option<SessionConfig>,
    /// Set the desired state to `running` right away.
    #[serde(default)]
    pub start: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSessionRequest {
    /// A new display name; `null` clears it, absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// Replaces the whole config.
    pub config: Option<SessionConfig>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`, via `default`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListSessionsQuery {
    /// Only sessions in this status.
    pub status: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

pub fn session_id(raw: &str) -> ApiResult<SessionId> {
    SessionId::parse(raw).map_err(|e| rename(e, "session_id"))
}

#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = CreateSessionRequest,
    responses((status = 201, body = Session), (status = "4XX", body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(who): Auth,
    JsonBody(req): JsonBody<CreateSessionRequest>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let new = NewSession {
        id: req.id,
        name: req.name,
        config: req.config.unwrap_or_default(),
        start: req.start,
    };
    let session = state.sessions.create(&who, new).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", params(ListSessionsQuery),
    responses((status = 200, body = SessionPage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<ListSessionsQuery>,
) -> ApiResult<Json<SessionPage>> {
    let status = parse_opt("status", q.status.as_deref(), SessionStatus::parse)?;
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    Ok(Json(state.sessions.list(&who, status, &page).await?.into()))
}

#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Session), (status = "4XX", body = ErrorEnvelope)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Session>> {
    Ok(Json(state.sessions.get(&who, &session_id(&id)?).await?))
}

#[utoipa::path(patch, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    request_body = UpdateSessionRequest,
    responses((status = 200, body = Session), (status = "4XX", body = ErrorEnvelope)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateSessionRequest>,
) -> ApiResult<Json<Session>> {
    let patch = SessionPatch {
        name: req.name,
        config: req.config,
    };
    Ok(Json(
        state
            .sessions
            .update(&who, &session_id(&id)?, patch)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted with its messages and send queue"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.sessions.delete(&who, &session_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/sessions/{id}/start", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, description = "Desired state is now `running`", body = Session),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn start(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Session>> {
    Ok(Json(
        state
            .sessions
            .set_desired(&who, &session_id(&id)?, DesiredState::Running)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/sessions/{id}/stop", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, description = "Desired state is now `stopped`", body = Session),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn stop(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Session>> {
    Ok(Json(
        state
            .sessions
            .set_desired(&who, &session_id(&id)?, DesiredState::Stopped)
            .await?,
    ))
}
