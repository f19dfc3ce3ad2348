//! openwa-api: the HTTP API of the openwa gateway as one axum [`Router`], served by `openwa up`
//! (`axum::serve` with `into_make_service_with_connect_info::<SocketAddr>()`), by the Lambda
//! main, and by the tests (`tower::ServiceExt::oneshot`).
//!
//! Handlers are thin: extract, parse into domain newtypes, call an `openwa-core` service, `?`.
//! Every error is an [`ApiError`] rendered as one envelope with a stable code; every response
//! carries `x-request-id`.
//!
//! Layout:
//! - [`state`] — [`AppState`] (backend, services) and [`ApiConfig`]
//! - [`error`] — [`ApiError`], the code table and the envelope
//! - [`extract`] — JSON/path/query extractors whose rejections are `ApiError`s
//! - [`auth`] — key authentication and rate limiting middleware, the `Auth` extractor
//! - [`middleware`] — request id, tracing span, envelope rendering, panic containment
//! - [`routes`] — handlers by resource (sessions, messages, media, webhooks, api-keys, audit,
//!   health)
//! - [`openapi`] — the OpenAPI 3.1 document (`/openapi.json`)
//! - [`docs`] — the Swagger UI at `/docs` (assets built in with the default `swagger-ui`
//!   feature, from a CDN without it)
//! - [`webhook_examples`] — one example payload per event type, for the document's `webhooks`

pub mod auth;
pub mod docs;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod webhook_examples;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

pub use error::{ApiError, ErrorCode};
pub use state::{ApiConfig, AppState};

use routes::{audit, deliveries, health, keys, login, media, messages, sessions, webhooks};

/// The whole HTTP API.
pub fn app(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/sessions", post(sessions::create).get(sessions::list))
        .route(
            "/v1/sessions/{id}",
            get(sessions::get)
                .patch(sessions::update)
                .delete(sessions::delete),
        )
        .route("/v1/sessions/{id}/start", post(sessions::start))
        .route("/v1/sessions/{id}/stop", post(sessions::stop))
        .route("/v1/sessions/{id}/qr", get(login::qr))
        .route("/v1/sessions/{id}/qr.png", get(login::qr_png))
        .route("/v1/sessions/{id}/pairing-code", post(login::pairing_code))
        .route("/v1/sessions/{id}/logout", post(login::logout))
        .route(
            "/v1/sessions/{id}/messages",
            post(messages::send).get(messages::list),
        )
        .route(
            "/v1/sessions/{id}/messages/{message_id}",
            get(messages::get),
        )
        .route("/v1/media", post(media::upload))
        .route("/v1/media/{media_id}", get(media::download))
        .route("/v1/api-keys", post(keys::create).get(keys::list))
        .route("/v1/api-keys/{id}", get(keys::get).delete(keys::delete))
        .route("/v1/api-keys/{id}/revoke", post(keys::revoke))
        .route("/v1/audit", get(audit::list))
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/test", post(webhooks::test))
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/v1/webhooks/{id}/deliveries", get(deliveries::list))
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}",
            get(deliveries::get),
        )
        .route(
            "/v1/webhooks/{id}/redeliver",
            post(deliveries::redeliver_range),
        )
        .route(
            "/v1/deliveries/{delivery_id}/redeliver",
            post(deliveries::redeliver),
        )
        // Only matched routes authenticate: an unknown path is a 404, not a 401.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));

    Router::new()
        .route("/health", get(health::health))
        .route("/openapi.json", get(health::openapi))
        .merge(v1)
        .merge(docs::routes())
        .fallback(middleware::not_found)
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::observe))
        .with_state(state)
}
