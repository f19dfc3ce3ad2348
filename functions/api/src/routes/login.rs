//! Linking a session to a WhatsApp account: the current QR (JSON and PNG), a pairing code for
//! linking by phone number, and logout. QR and pairing code are written by the runner that holds
//! the session; pairing and logout reach that runner through the session's control queue.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use openwa_core::Error;
use openwa_core::jid::ChatId;
use openwa_core::session::{PairingCode, Qr, Session};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sessions::session_id;
use crate::auth::Auth;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, Path, rename};
use crate::state::AppState;

/// How long `POST …/pairing-code` waits for the runner to answer before replying 202.
const PAIRING_WAIT: Duration = Duration::from_secs(15);
const PAIRING_POLL: Duration = Duration::from_millis(200);

fn no_qr(session: &Session) -> Error {
    Error::conflict(format!(
        "no QR code to scan: the session is {}",
        session.status.as_str()
    ))
}

/// The QR code of a session waiting to be linked.
async fn current_qr(
    state: &AppState,
    who: &openwa_core::auth::Principal,
    id: &str,
) -> ApiResult<Qr> {
    let session = state.sessions.get(who, &session_id(id)?).await?;
    match &session.qr {
        Some(qr) if qr.expires_at > state.backend.clock.now() => Ok(qr.clone()),
        _ => Err(no_qr(&session).into()),
    }
}

#[utoipa::path(get, path = "/v1/sessions/{id}/qr", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Qr, description = "The QR payload to scan and when it expires"),
        (status = 409, body = ErrorEnvelope, description = "The session is not showing a QR"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn qr(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Qr>> {
    Ok(Json(current_qr(&state, &who, &id).await?))
}

#[utoipa::path(get, path = "/v1/sessions/{id}/qr.png", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, content_type = "image/png", description = "The QR code as a PNG image"),
        (status = 409, body = ErrorEnvelope, description = "The session is not showing a QR"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn qr_png(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let qr = current_qr(&state, &who, &id).await?;
    let png =
        render_png(&qr.payload).map_err(|e| Error::unexpected(format!("QR rendering: {e}")))?;
    let mut res = png.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Renders `payload` as a black-on-white PNG: 8 pixels per module, the standard 4-module quiet
/// zone.
pub fn render_png(payload: &str) -> Result<Vec<u8>, String> {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::new(payload.as_bytes()).map_err(|e| e.to_string())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
            for y in my * SCALE..(my + 1) * SCALE {
                pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairingCodeRequest {
    /// The phone number of the WhatsApp account to link, in international form.
    pub phone: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PairingCodeResponse {
    /// `ready` with the code, or `requested` when the runner has not answered yet (poll the
    /// session or wait for the `session.pairing_code` event).
    pub status: String,
    pub code: Option<String>,
    pub phone: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[utoipa::path(post, path = "/v1/sessions/{id}/pairing-code", tag = "sessions", params(("id" = String, Path)),
    request_body = PairingCodeRequest,
    responses((status = 200, body = PairingCodeResponse, description = "The code to type on the phone"),
        (status = 202, body = PairingCodeResponse, description = "Requested; the code follows as an event"),
        (status = 409, body = ErrorEnvelope, description = "The session is not waiting for a login"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn pairing_code(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<PairingCodeRequest>,
) -> ApiResult<(StatusCode, Json<PairingCodeResponse>)> {
    let id = session_id(&id)?;
    let phone = ChatId::from_phone(&req.phone).map_err(|e| rename(e, "phone"))?;
    let before = state
        .sessions
        .request_pairing_code(&who, &id, phone.clone())
        .await?;
    let now = state.backend.clock.now();
    let fresh = |code: &Option<PairingCode>| {
        code.as_ref()
            .filter(|c| {
                c.phone == phone && Some(*c) != before.pairing_code.as_ref() && c.expires_at > now
            })
            .cloned()
    };
    let deadline = tokio::time::Instant::now() + PAIRING_WAIT;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(PAIRING_POLL).await;
        let session = state.sessions.get(&who, &id).await?;
        if let Some(code) = fresh(&session.pairing_code) {
            let body = PairingCodeResponse {
                status: "ready".into(),
                code: Some(code.code),
                phone: phone.to_string(),
                expires_at: Some(code.expires_at),
            };
            return Ok((StatusCode::OK, Json(body)));
        }
    }
    let body = PairingCodeResponse {
        status: "requested".into(),
        code: None,
        phone: phone.to_string(),
        expires_at: None,
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

#[utoipa::path(post, path = "/v1/sessions/{id}/logout", tag = "sessions", params(("id" = String, Path)),
    responses((status = 202, body = Session, description = "The runner logs the device out; status becomes `logged_out`"),
        (status = 409, body = ErrorEnvelope, description = "No runner holds the session"),
        (status = "4XX", body = ErrorEnvelope)))]
pub async fn logout(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let session = state.sessions.logout(&who, &session_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(session)))
}
