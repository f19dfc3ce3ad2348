//! Control API: accounts, contacts, scanning a QR, confirming a pairing code, and acting on a
//! linked device from the phone (log out, open elsewhere, drop and restore the connection).

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::{ApiResult, Body};
use crate::server::AppState;

#[derive(Deserialize)]
pub struct NewAccount {
    phone: String,
    #[serde(default)]
    pushname: Option<String>,
}

pub async fn list(State(app): State<AppState>) -> ApiResult {
    Ok(Json(json!({"accounts": app.net.accounts()})))
}

pub async fn create(State(app): State<AppState>, Body(a): Body<NewAccount>) -> ApiResult {
    let phone: String = a.phone.chars().filter(|c| *c != '+').collect();
    let name = a.pushname.unwrap_or_else(|| format!("User {phone}"));
    Ok(Json(app.net.create_account(&phone, &name)?))
}

pub async fn get_one(State(app): State<AppState>, Path(phone): Path<String>) -> ApiResult {
    Ok(Json(app.net.account(&phone)?))
}

#[derive(Deserialize)]
pub struct NewContact {
    phone: String,
    name: Option<String>,
}

pub async fn add_contact(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Body(c): Body<NewContact>,
) -> ApiResult {
    let name = c.name.unwrap_or_else(|| c.phone.clone());
    Ok(Json(app.net.add_contact(&phone, &c.phone, &name)?))
}

#[derive(Deserialize)]
pub struct Scan {
    /// The full QR payload or just its ref.
    qr: String,
}

pub async fn scan(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Body(s): Body<Scan>,
) -> ApiResult {
    Ok(Json(app.net.scan(&phone, &s.qr)?))
}

#[derive(Deserialize)]
pub struct Code {
    code: String,
}

pub async fn pairing_code(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Body(c): Body<Code>,
) -> ApiResult {
    Ok(Json(app.net.confirm_pairing_code(&phone, &c.code)?))
}

pub async fn logout_device(
    State(app): State<AppState>,
    Path((phone, device)): Path<(String, u32)>,
) -> ApiResult {
    Ok(Json(app.net.remove_device(&phone, device)?))
}

pub async fn conflict(
    State(app): State<AppState>,
    Path((phone, device)): Path<(String, u32)>,
) -> ApiResult {
    Ok(Json(app.net.open_elsewhere(&phone, device)?))
}

#[derive(Deserialize, Default)]
pub struct DropReq {
    #[serde(default)]
    hold: bool,
}

pub async fn drop_connection(
    State(app): State<AppState>,
    Path((phone, device)): Path<(String, u32)>,
    body: axum::body::Bytes,
) -> ApiResult {
    // The body is optional: an empty one means `{"hold": false}`.
    let req: DropReq = if body.is_empty() {
        DropReq::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| crate::error::ApiError::invalid(e.to_string()))?
    };
    let hold = req.hold;
    Ok(Json(app.net.drop_connection(&phone, device, hold)?))
}

pub async fn restore(
    State(app): State<AppState>,
    Path((phone, device)): Path<(String, u32)>,
) -> ApiResult {
    Ok(Json(app.net.restore(&phone, device)?))
}
