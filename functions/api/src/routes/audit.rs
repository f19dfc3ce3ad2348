//! `/v1/audit` (admin): the audit log, newest first, filtered by action, key, session and time.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use openwa_core::audit::AuditFilter;
use openwa_core::id::{ApiKeyId, SessionId};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{AuditPage, page_request};
use crate::auth::Auth;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{Query, parse_opt};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Dotted action, e.g. `session.create`, `message.send`, `api_key.revoke`.
    pub action: Option<String>,
    pub key_id: Option<String>,
    pub session_id: Option<String>,
    /// RFC 3339 time; entries at or after it.
    pub since: Option<String>,
    /// RFC 3339 time; entries before it.
    pub until: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let filter = AuditFilter {
        action: q.action.filter(|a| !a.is_empty()),
        key_id: parse_opt("key_id", q.key_id.as_deref(), ApiKeyId::parse)?,
        session_id: parse_opt("session_id", q.session_id.as_deref(), SessionId::parse)?,
        since: parse_opt("since", q.since.as_deref(), parse_time)?,
        until: parse_opt("until", q.until.as_deref(), parse_time)?,
    };
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    Ok(Json(state.audit.list(&who, &filter, &page).await?.into()))
}

fn parse_time(raw: &str) -> openwa_core::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            openwa_core::Error::invalid(
                "time",
                "expected an RFC 3339 time like 2025-01-31T12:00:00Z",
            )
        })
}
