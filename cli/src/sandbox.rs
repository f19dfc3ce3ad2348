//! `/v1/sandbox/…` on the gateway: the simulator's control API ("the phone"), forwarded for
//! keys with the operator role, so a sandbox user needs only the gateway's address and key.
//! `POST /v1/sandbox/accounts` goes to the simulator's `POST /control/accounts`, and so on.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use openwa_api::auth::Auth;
use openwa_api::{ApiError, AppState};
use openwa_core::Error;
use openwa_core::apikey::Role;

#[derive(Clone)]
struct Proxy {
    control_base: String,
    http: reqwest::Client,
}

/// Routes that forward to the simulator at `simulator_base` (`http://127.0.0.1:PORT`).
pub fn routes(state: AppState, simulator_base: String) -> Router {
    let proxy = Proxy {
        control_base: format!("{simulator_base}/control"),
        http: reqwest::Client::new(),
    };
    Router::new()
        .route("/v1/sandbox/{*rest}", any(forward))
        .with_state(proxy)
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            openwa_api::auth::authenticate,
        ))
        // The API's request id, tracing and error envelope rendering, as on every other route.
        .layer(axum::middleware::from_fn(openwa_api::middleware::observe))
}

async fn forward(
    State(proxy): State<Proxy>,
    Auth(who): Auth,
    method: Method,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require(Role::Operator)?;
    let mut url = format!("{}/{rest}", proxy.control_base);
    if let Some(q) = query {
        url.push('?');
        url.push_str(&q);
    }
    let mut req = proxy.http.request(method, url).body(body);
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let res = req
        .send()
        .await
        .map_err(|e| Error::unavailable(format!("sandbox simulator: {e}")))?;
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = res.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = res
        .bytes()
        .await
        .map_err(|e| Error::unavailable(format!("sandbox simulator: {e}")))?;
    let mut out = (status, bytes).into_response();
    if let Some(ct) = content_type {
        out.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    Ok(out)
}
