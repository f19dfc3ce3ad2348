//! The control API ("the phone"): HTTP JSON under `/control`. Errors use the envelope of
//! [`crate::error::ApiError`]. See `README.md` for curl examples.
//!
//! Layout:
//! - [`accounts`]: accounts, contacts, scanning, pairing codes, devices (logout, conflict, drop).
//! - [`messages`]: inbound messages of every type, reading what arrived, acks, edits, revokes,
//!   reactions, polls and groups.
//! - this file: the router, the JSON body extractor, pages, the connection log and faults.

pub mod accounts;
pub mod messages;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::network::state::Faults;
use crate::server::AppState;

/// Result type of control handlers.
pub type ApiResult = Result<Json<Value>, ApiError>;

/// A JSON body whose rejection is answered with the error envelope.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e @ JsonRejection::JsonDataError(_)) => Err(ApiError::invalid(e.body_text())),
            Err(e) => Err(ApiError::invalid(e.body_text())),
        }
    }
}

/// The `/control` router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/accounts", get(accounts::list).post(accounts::create))
        .route("/accounts/{phone}", get(accounts::get_one))
        .route("/accounts/{phone}/contacts", post(accounts::add_contact))
        .route("/accounts/{phone}/scan", post(accounts::scan))
        .route(
            "/accounts/{phone}/pairing-code",
            post(accounts::pairing_code),
        )
        .route(
            "/accounts/{phone}/devices/{device}",
            delete(accounts::logout_device),
        )
        .route(
            "/accounts/{phone}/devices/{device}/conflict",
            post(accounts::conflict),
        )
        .route(
            "/accounts/{phone}/devices/{device}/drop",
            post(accounts::drop_connection),
        )
        .route(
            "/accounts/{phone}/devices/{device}/restore",
            post(accounts::restore),
        )
        .route(
            "/accounts/{phone}/messages",
            get(messages::list).post(messages::send),
        )
        .route("/accounts/{phone}/read", post(messages::read))
        .route("/accounts/{phone}/played", post(messages::played))
        .route("/accounts/{phone}/react", post(messages::react))
        .route("/accounts/{phone}/poll-vote", post(messages::poll_vote))
        .route("/accounts/{phone}/revoke", post(messages::revoke))
        .route("/accounts/{phone}/edit", post(messages::edit))
        .route("/accounts/{phone}/groups", post(messages::create_group))
        .route(
            "/accounts/{phone}/groups/{group}/participants",
            post(messages::participants),
        )
        .route(
            "/accounts/{phone}/groups/{group}/subject",
            post(messages::subject),
        )
        .route(
            "/accounts/{phone}/groups/{group}/leave",
            post(messages::leave),
        )
        .route("/groups", get(messages::list_groups))
        .route("/pages", get(pages))
        .route("/pages/reload", post(reload_all))
        .route("/pages/{id}/reload", post(reload_one))
        .route("/connections", get(connections))
        .route(
            "/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .fallback(|| async { ApiError::NotFound("no such control endpoint".into()) })
}

async fn pages(State(app): State<AppState>) -> ApiResult {
    Ok(Json(json!({"pages": app.net.pages()})))
}

async fn reload_all(State(app): State<AppState>) -> ApiResult {
    Ok(Json(json!({"reloaded": app.net.reload_pages(None)?})))
}

async fn reload_one(State(app): State<AppState>, Path(id): Path<u64>) -> ApiResult {
    Ok(Json(json!({"reloaded": app.net.reload_pages(Some(id))?})))
}

#[derive(Deserialize)]
struct ConnQuery {
    phone: Option<String>,
}

async fn connections(State(app): State<AppState>, Query(q): Query<ConnQuery>) -> ApiResult {
    Ok(Json(
        json!({"events": app.net.connection_log(q.phone.as_deref())}),
    ))
}

async fn get_faults(State(app): State<AppState>) -> ApiResult {
    Ok(Json(json!(app.net.faults())))
}

async fn clear_faults(State(app): State<AppState>) -> ApiResult {
    app.net.set_faults(Faults::default());
    Ok(Json(json!(app.net.faults())))
}

/// Shorthands accepted besides the plain [`Faults`] fields.
#[derive(Deserialize)]
struct FaultPatch {
    /// `"Name"` (renamed to `Name_v2`) or `{"from": "Name", "to": "New"}`.
    rename_module: Option<Value>,
    /// Make a module unresolvable.
    remove_module: Option<String>,
    /// Restore one module.
    restore_module: Option<String>,
    ack_delay_ms: Option<u64>,
    lose_acks: Option<bool>,
    reload_on_send: Option<bool>,
    reload_loop: Option<bool>,
    deprecated_version: Option<bool>,
}

async fn set_faults(State(app): State<AppState>, Body(p): Body<FaultPatch>) -> ApiResult {
    let mut f = app.net.faults();
    match p.rename_module {
        Some(Value::String(name)) => {
            let to = format!("{name}_v2");
            f.renamed_modules.insert(name, to);
        }
        Some(Value::Object(o)) => {
            let from = o
                .get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid("rename_module.from is required"))?;
            let to = o
                .get("to")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{from}_v2"));
            f.renamed_modules.insert(from.to_owned(), to);
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "rename_module must be a name or {from, to}",
            ));
        }
        None => {}
    }
    if let Some(name) = p.remove_module {
        f.renamed_modules.insert(name, String::new());
    }
    if let Some(name) = p.restore_module {
        f.renamed_modules.remove(&name);
    }
    if let Some(v) = p.ack_delay_ms {
        f.ack_delay_ms = v;
    }
    if let Some(v) = p.lose_acks {
        f.lose_acks = v;
    }
    if let Some(v) = p.reload_on_send {
        f.reload_on_send = v;
    }
    if let Some(v) = p.reload_loop {
        f.reload_loop = v;
    }
    if let Some(v) = p.deprecated_version {
        f.deprecated_version = v;
    }
    app.net.set_faults(f);
    Ok(Json(json!(app.net.faults())))
}
