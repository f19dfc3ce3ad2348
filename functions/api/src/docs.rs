//! `/docs`: the Swagger UI page for `/openapi.json`.
//!
//! With the `swagger-ui` feature (default) the UI's assets are compiled into the binary, so the
//! page works offline (`openwa up --sandbox` needs no internet). Without it — the API Lambda,
//! where those assets would be most of the binary's size — `/docs/` is one small HTML page
//! that loads a pinned Swagger UI from a CDN. Both redirect `/docs` to `/docs/`.

use axum::Router;

use crate::state::AppState;

#[cfg(feature = "swagger-ui")]
pub fn routes() -> Router<AppState> {
    // The UI only points at our own `/openapi.json` route; it serves no document itself.
    let ui = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .config(utoipa_swagger_ui::Config::new(["/openapi.json"]));
    Router::new().merge(ui)
}

#[cfg(not(feature = "swagger-ui"))]
pub fn routes() -> Router<AppState> {
    use axum::response::{Html, Redirect};
    use axum::routing::get;

    Router::new()
        // Relative, so a stage prefix in front of the API is kept.
        .route("/docs", get(|| async { Redirect::permanent("docs/") }))
        .route("/docs/", get(|| async { Html(CDN_PAGE) }))
}

/// Swagger UI from jsDelivr, pointed at `../openapi.json` (relative for the same reason).
#[cfg(not(feature = "swagger-ui"))]
const CDN_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>openwa API</title>
  <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.18.2/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.18.2/swagger-ui-bundle.js" crossorigin></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "../openapi.json", dom_id: "#swagger-ui" });
  </script>
</body>
</html>
"##;
