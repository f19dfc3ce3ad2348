//! The simulated WhatsApp Web page and the sandbox phone page. The JavaScript lives in
//! `assets/` (one file per concern) and is embedded at build time.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::server::AppState;

/// Page scripts in load order: name and source.
pub const SCRIPTS: &[(&str, &str)] = &[
    ("events.js", include_str!("../assets/events.js")),
    ("registry.js", include_str!("../assets/registry.js")),
    ("wid.js", include_str!("../assets/wid.js")),
    ("store.js", include_str!("../assets/store.js")),
    ("conn.js", include_str!("../assets/conn.js")),
    ("collections.js", include_str!("../assets/collections.js")),
    ("send.js", include_str!("../assets/send.js")),
    ("media.js", include_str!("../assets/media.js")),
    ("groups.js", include_str!("../assets/groups.js")),
    ("stubs.js", include_str!("../assets/stubs.js")),
    ("ui.js", include_str!("../assets/ui.js")),
    ("boot.js", include_str!("../assets/boot.js")),
];

const OTHER: &[(&str, &str, &str)] = &[
    ("app.css", "text/css", include_str!("../assets/app.css")),
    (
        "phone.js",
        "text/javascript",
        include_str!("../assets/phone.js"),
    ),
];

/// `GET /`: the app page with its configuration inlined (faults must be known before the
/// first `require`).
pub async fn index(State(app): State<AppState>) -> Html<String> {
    let cfg = app.net.config();
    let sim = json!({
        "version": cfg.version,
        "reconnectMs": cfg.reconnect_delay.as_millis() as u64,
        "faults": app.net.faults(),
    });
    let scripts: String = SCRIPTS
        .iter()
        .map(|(name, _)| format!("<script src=\"/assets/{name}\"></script>\n"))
        .collect();
    Html(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>WhatsApp</title>\
         <link rel=\"stylesheet\" href=\"/assets/app.css\"></head>\n<body>\
         <div id=\"app\"><div id=\"status\">Loading…</div><canvas id=\"qr\" width=\"264\" height=\"264\"></canvas>\
         <div id=\"pairing-code\"></div><ul id=\"chats\"></ul></div>\n\
         <script>window.__SIM__ = {sim};</script>\n{scripts}</body></html>\n"
    ))
}

/// `GET /phone`: the sandbox phone page.
pub async fn phone() -> Html<&'static str> {
    Html(include_str!("../assets/phone.html"))
}

/// `GET /assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    if let Some((_, src)) = SCRIPTS.iter().find(|(n, _)| *n == name) {
        return ([(header::CONTENT_TYPE, "text/javascript")], *src).into_response();
    }
    if let Some((_, mime, src)) = OTHER.iter().find(|(n, _, _)| *n == name) {
        return ([(header::CONTENT_TYPE, *mime)], *src).into_response();
    }
    (StatusCode::NOT_FOUND, "no such asset").into_response()
}
