//! The ingress function: send commands arriving on the SQS ingress queue instead of HTTP.
//!
//! Whoever may `sqs:SendMessage` to the ingress queue is trusted (IAM is the authentication):
//! commands run as the [`ingress_principal`], an operator for every session, with no rate limit.
//! A message body is the JSON of `POST /v1/sessions/{id}/messages` plus two fields:
//!
//! ```json
//! {"session": "sales", "idempotency_key": "order-4711",
//!  "to": "15557654321", "type": "text", "text": {"body": "Your order has shipped"}}
//! ```
//!
//! It goes through the HTTP API's own request parsing ([`SendMessageRequest`], inline media
//! stored on the way) and [`MessageService::send`](openwa_core::services::MessageService::send),
//! so the rules are the same. `idempotency_key` is required: a redelivered message (or the same
//! command sent twice) replays the first result and creates no second message.
//!
//! Results come back as events, there being no response to answer on:
//! - accepted: the usual `message.queued` (only on first acceptance; a replay publishes none);
//! - rejected (not JSON, a missing or invalid field, an unknown session, the key reused with
//!   another command): `ingress.rejected` with the error's code, message and field. Retrying
//!   cannot fix these, so the record succeeds and is deleted. The event id is derived from the
//!   SQS message id, so a redelivered rejected message yields the same event, which fan-out
//!   stores and delivers once;
//! - transient (a store, the blob store or a queue unavailable, or an unexpected error): the
//!   record is reported in `batchItemFailures` and retried; after `maxReceiveCount` receives
//!   SQS's redrive moves it to the ingress dead-letter queue.

use std::collections::BTreeSet;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use openwa_api::AppState;
use openwa_api::error::{ApiError, ErrorCode};
use openwa_api::extract::parse_json;
use openwa_api::routes::send::SendMessageRequest;
use openwa_core::apikey::Role;
use openwa_core::auth::Principal;
use openwa_core::error::{Error, Result};
use openwa_core::event::{Event, EventType};
use openwa_core::id::{ApiKeyId, EventId, MessageId, SessionId};
use openwa_core::message::IdempotencyKey;
use openwa_core::ports::{Backend, ReceivedJob};
use openwa_core::services::EventPublisher;
use openwa_fanout::{Failure, Handled, handle_jobs};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::sqs_event;

/// The fixed key id commands from the ingress queue act (and are audited) as.
pub const INGRESS_KEY_ID: &str = "key_00000000000000000000000001";
/// The name audit entries show for them.
pub const INGRESS_KEY_NAME: &str = "sqs-ingress";
/// Echoed strings are cut to this many characters in rejection events.
const MAX_ECHO: usize = 256;

/// What became of one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accepted {
        message_id: MessageId,
        /// An earlier command with the same idempotency key produced the message.
        replayed: bool,
    },
    /// Refused for good; an `ingress.rejected` event was published.
    Rejected(Rejection),
}

/// Why a command was refused, as the HTTP API would have answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl From<ApiError> for Rejection {
    fn from(e: ApiError) -> Self {
        Self {
            code: e.code,
            message: e.message,
            field: e.field,
        }
    }
}

/// Everything the ingress step needs: the API's services, built once per process.
#[derive(Clone)]
pub struct Ingress {
    state: AppState,
    publisher: EventPublisher,
    principal: Principal,
}

/// The principal ingress commands run as.
pub fn ingress_principal() -> Principal {
    Principal {
        key_id: ApiKeyId::parse(INGRESS_KEY_ID)
            .unwrap_or_else(|_| unreachable!("the ingress key id is a valid id")),
        key_name: INGRESS_KEY_NAME.to_owned(),
        role: Role::Operator,
        allowed_sessions: None::<BTreeSet<SessionId>>,
        rate_limit_per_minute: None,
        source_ip: None,
    }
}

impl Ingress {
    pub fn new(backend: Backend) -> Self {
        let publisher = EventPublisher::new(backend.sessions.clone(), backend.queue.clone());
        Self {
            state: AppState::new(backend, openwa_api::ApiConfig::default()),
            publisher,
            principal: ingress_principal(),
        }
    }

    /// Handles one command. `Err` only for transient failures (the record is retried).
    #[tracing::instrument(skip_all, fields(message_id = %job.id))]
    pub async fn command(&self, job: &ReceivedJob) -> Result<Outcome> {
        let parsed = match parse_command(&job.body) {
            Ok(parsed) => parsed,
            Err((echo, rejection)) => return self.reject(job, echo, rejection).await,
        };
        let echo = parsed.echo.clone();
        let command = match parsed
            .request
            .into_command(
                &self.state,
                &self.principal,
                parsed.session,
                Some(parsed.key),
            )
            .await
        {
            Ok(command) => command,
            Err(e) if is_transient_code(e.code) => {
                return Err(Error::unavailable(format!(
                    "{}: {}",
                    e.code.as_str(),
                    e.message
                )));
            }
            Err(e) => return self.reject(job, echo, e.into()).await,
        };
        match self.state.messages.send(&self.principal, command).await {
            Ok(outcome) => {
                tracing::info!(
                    gateway_message_id = %outcome.message.id,
                    replayed = outcome.replayed,
                    "ingress command accepted"
                );
                Ok(Outcome::Accepted {
                    message_id: outcome.message.id,
                    replayed: outcome.replayed,
                })
            }
            Err(e) if e.is_retryable() || matches!(e, Error::Unexpected { .. }) => Err(e),
            Err(e) => self.reject(job, echo, ApiError::from(e).into()).await,
        }
    }

    /// Publishes `ingress.rejected` for the command in `job`.
    async fn reject(&self, job: &ReceivedJob, echo: Echo, rejection: Rejection) -> Result<Outcome> {
        tracing::info!(code = rejection.code.as_str(), field = ?rejection.field, "ingress command rejected");
        let session_id = echo
            .session
            .as_deref()
            .and_then(|s| SessionId::parse(s).ok());
        let mut error = json!({"code": rejection.code, "message": rejection.message});
        if let Some(field) = &rejection.field {
            error["field"] = json!(field);
        }
        let data = json!({
            "session": echo.session,
            "idempotency_key": echo.idempotency_key,
            "sqs_message_id": job.id,
            "error": error,
        });
        let mut event = Event::new(
            EventType::IngressRejected,
            session_id,
            self.state.backend.clock.now(),
            data,
        );
        event.id = rejection_event_id(job);
        self.publisher.publish(event).await?;
        Ok(Outcome::Rejected(rejection))
    }
}

/// Handles one batch from the ingress queue.
#[tracing::instrument(skip_all, fields(records = event.records.len()))]
pub async fn handle(ingress: &Ingress, event: SqsEvent) -> SqsBatchResponse {
    let batch = sqs_event::batch(event, ingress.state.backend.blobs.as_ref()).await;
    let report = handle_jobs(batch.jobs, |job| async move {
        match ingress.command(&job).await {
            Ok(_) => Ok(Handled::Done),
            Err(error) => Err(Failure::Error(error)),
        }
    })
    .await;
    sqs_event::response(batch.unreadable.into_iter().chain(report.failed_ids()))
}

/// What a rejection event echoes of the command, as sent (cut to [`MAX_ECHO`]).
#[derive(Debug, Clone, Default)]
struct Echo {
    session: Option<String>,
    idempotency_key: Option<String>,
}

struct Parsed {
    session: SessionId,
    key: IdempotencyKey,
    request: SendMessageRequest,
    echo: Echo,
}

/// Splits the body into the envelope fields and the HTTP send request, parsing each.
fn parse_command(body: &[u8]) -> std::result::Result<Parsed, (Echo, Rejection)> {
    let mut object: Map<String, Value> = match parse_json::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            let e = ApiError::new(
                ErrorCode::InvalidRequest,
                "the command must be a JSON object",
            );
            return Err((Echo::default(), e.into()));
        }
        Err(e) => return Err((Echo::default(), e.into())),
    };
    let session = object.remove("session");
    let key = object.remove("idempotency_key");
    let echo = Echo {
        session: session.as_ref().map(echo_of),
        idempotency_key: key.as_ref().map(echo_of),
    };
    let fail = |e: ApiError| Err((echo.clone(), Rejection::from(e)));
    let session = match session {
        Some(Value::String(s)) => match SessionId::parse(&s) {
            Ok(id) => id,
            Err(e) => return fail(rename(e, "session")),
        },
        _ => return fail(ApiError::invalid("session", "is required (a session id)")),
    };
    let key = match key {
        Some(Value::String(k)) => match IdempotencyKey::parse(&k) {
            Ok(key) => key,
            Err(e) => return fail(rename(e, "idempotency_key")),
        },
        _ => {
            return fail(ApiError::invalid(
                "idempotency_key",
                "is required (a string)",
            ));
        }
    };
    let rest = serde_json::to_vec(&object).unwrap_or_default();
    match parse_json::<SendMessageRequest>(&rest) {
        Ok(request) => Ok(Parsed {
            session,
            key,
            request,
            echo,
        }),
        Err(e) => fail(e),
    }
}

fn echo_of(value: &Value) -> String {
    let raw = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    raw.chars().take(MAX_ECHO).collect()
}

/// An `Invalid` error about `field`, keeping its message.
fn rename(error: Error, field: &str) -> ApiError {
    match error {
        Error::Invalid { message, .. } => ApiError::invalid(field, message),
        other => ApiError::from(other),
    }
}

/// Error codes that say "try again", not "this command is wrong".
fn is_transient_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Unavailable | ErrorCode::RateLimited | ErrorCode::Internal
    )
}

/// The same id for every receive of one SQS message: its send time and a hash of its id.
fn rejection_event_id(job: &ReceivedJob) -> EventId {
    let millis = u64::try_from(job.enqueued_at.timestamp_millis()).unwrap_or(0);
    let hash = Sha256::digest(job.id.as_bytes());
    let mut random = [0u8; 16];
    random.copy_from_slice(&hash[..16]);
    let ulid = ulid::Ulid::from_parts(millis, u128::from_be_bytes(random));
    EventId::parse(&format!("{}_{ulid}", EventId::PREFIX))
        .unwrap_or_else(|_| unreachable!("a ULID always parses"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(body: &str) -> Rejection {
        match parse_command(body.as_bytes()) {
            Err((_, r)) => r,
            Ok(_) => panic!("{body} parsed"),
        }
    }

    #[test]
    fn the_envelope_fields_are_required_and_the_rest_is_the_http_request() {
        let ok = r#"{"session":"sales","idempotency_key":"k1","to":"15557654321","type":"text","text":{"body":"hi"}}"#;
        assert!(parse_command(ok.as_bytes()).is_ok());

        assert_eq!(rejection("{nope").code, ErrorCode::MalformedJson);
        assert_eq!(rejection("[1]").code, ErrorCode::InvalidRequest);
        let missing_key =
            r#"{"session":"sales","to":"15557654321","type":"text","text":{"body":"hi"}}"#;
        assert_eq!(
            rejection(missing_key).field.as_deref(),
            Some("idempotency_key")
        );
        let bad_session = r#"{"session":"Not A Slug","idempotency_key":"k","to":"1","type":"text","text":{"body":"hi"}}"#;
        assert_eq!(rejection(bad_session).field.as_deref(), Some("session"));
        let unknown_field = r#"{"session":"sales","idempotency_key":"k","to":"15557654321","type":"text","text":{"body":"hi"},"extra":1}"#;
        assert_eq!(rejection(unknown_field).code, ErrorCode::InvalidRequest);
    }
}
