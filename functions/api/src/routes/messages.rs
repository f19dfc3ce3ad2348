//! `/v1/sessions/{id}/messages`: send (202, idempotent with `Idempotency-Key`; 201 with
//! `?wait=` once sent), list and get.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use openwa_core::auth::Principal;
use openwa_core::id::MessageId;
use openwa_core::jid::ChatId;
use openwa_core::message::{Direction, IdempotencyKey, Message, MessageStatus};
use openwa_core::ports::MessageFilter;
use serde::Deserialize;
use utoipa::IntoParams;

use super::send::SendMessageRequest;
use super::sessions::session_id;
use super::{MessagePage, page_request};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, Path, Query, parse_opt, rename};
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The longest `?wait=` a send may ask for, in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// How often a waiting send re-reads the message.
const WAIT_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SendQuery {
    /// Seconds (0 to 30) to wait for the message to be sent or to fail; the answer is then 201.
    pub wait: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListMessagesQuery {
    /// Only messages of this chat (phone number or chat id).
    pub chat_id: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// `queued`, `sending`, `sent`, `delivered`, `read`, `played`, `failed` or `received`.
    pub status: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[utoipa::path(post, path = "/v1/sessions/{id}/messages", tag = "messages",
    params(("id" = String, Path), SendQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the send safe to retry: the same key with the same body returns the first result")),
    request_body = SendMessageRequest,
    responses(
        (status = 201, description = "With `?wait=`: sent (or failed, see `failure`) within the wait", body = Message),
        (status = 202, description = "Accepted and queued (or, with `Idempotent-Replayed: true`, the earlier result)", body = Message),
        (status = 422, description = "The idempotency key was used with a different body", body = ErrorEnvelope),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn send(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    Query(q): Query<SendQuery>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<SendMessageRequest>,
) -> ApiResult<Response> {
    let session = session_id(&id)?;
    // Before any media is stored: a key limited to other sessions gets its 404 first.
    who.check_session(&session)?;
    let key = idempotency_key(&headers)?;
    let wait = wait_duration(q.wait.as_deref())?;
    let command = req.into_command(&state, &who, session, key).await?;
    let outcome = state.messages.send(&who, command).await?;
    let message = match wait {
        Some(wait) => wait_for_outcome(&state, &who, outcome.message, wait).await?,
        None => outcome.message,
    };
    let status = if is_settled(message.status) {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    let mut res = (status, Json(message)).into_response();
    if outcome.replayed {
        res.headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(res)
}

fn wait_duration(raw: Option<&str>) -> ApiResult<Option<Duration>> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match raw.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(secs) if secs <= MAX_WAIT_SECS => Ok(Some(Duration::from_secs(secs))),
        _ => Err(ApiError::invalid(
            "wait",
            format!("must be a whole number of seconds from 0 to {MAX_WAIT_SECS}"),
        )),
    }
}

/// Whether a send has reached WhatsApp (or definitely failed).
fn is_settled(status: MessageStatus) -> bool {
    status != MessageStatus::Queued && status != MessageStatus::Sending
}

/// Re-reads the message until it is settled or `wait` has passed; returns its latest state.
async fn wait_for_outcome(
    state: &AppState,
    who: &Principal,
    mut message: Message,
    wait: Duration,
) -> ApiResult<Message> {
    let deadline = tokio::time::Instant::now() + wait;
    while !is_settled(message.status) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(WAIT_POLL.min(deadline - tokio::time::Instant::now())).await;
        message = state
            .messages
            .get(who, &message.session_id, &message.id)
            .await?;
    }
    Ok(message)
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<IdempotencyKey>> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let raw = value
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?;
    Ok(Some(IdempotencyKey::parse(raw)?))
}

#[utoipa::path(get, path = "/v1/sessions/{id}/messages", tag = "messages",
    params(("id" = String, Path), ListMessagesQuery),
    responses((status = 200, body = MessagePage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    Query(q): Query<ListMessagesQuery>,
) -> ApiResult<Json<MessagePage>> {
    let session = session_id(&id)?;
    let filter = MessageFilter {
        chat_id: parse_opt("chat_id", q.chat_id.as_deref(), ChatId::parse)?,
        direction: parse_opt("direction", q.direction.as_deref(), parse_direction)?,
        status: parse_opt("status", q.status.as_deref(), MessageStatus::parse)?,
    };
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    Ok(Json(
        state
            .messages
            .list(&who, &session, &filter, &page)
            .await?
            .into(),
    ))
}

fn parse_direction(raw: &str) -> openwa_core::Result<Direction> {
    match raw {
        "inbound" => Ok(Direction::Inbound),
        "outbound" => Ok(Direction::Outbound),
        _ => Err(openwa_core::Error::invalid(
            "direction",
            "expected inbound or outbound",
        )),
    }
}

#[utoipa::path(get, path = "/v1/sessions/{id}/messages/{message_id}", tag = "messages",
    params(("id" = String, Path), ("message_id" = String, Path)),
    responses((status = 200, description = "The message with its current status", body = Message),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path((id, message_id)): Path<(String, String)>,
) -> ApiResult<Json<Message>> {
    let session = session_id(&id)?;
    let message_id = MessageId::parse(&message_id).map_err(|e| rename(e, "message_id"))?;
    Ok(Json(state.messages.get(&who, &session, &message_id).await?))
}
