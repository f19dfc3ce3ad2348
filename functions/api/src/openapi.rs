//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and the
//! domain types' `ToSchema` derives, so it cannot drift from the code.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder, ServerBuilder,
};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorCode, ErrorEnvelope};
use crate::routes::{audit, health, keys, login, media, messages, send, sessions};

#[derive(OpenApi)]
#[openapi(
    info(title = "openwa", description = "Self-hostable WhatsApp HTTP API gateway. Every error response carries the `ErrorEnvelope`."),
    paths(
        health::health,
        health::openapi,
        sessions::create,
        sessions::list,
        sessions::get,
        sessions::update,
        sessions::delete,
        sessions::start,
        sessions::stop,
        login::qr,
        login::qr_png,
        login::pairing_code,
        login::logout,
        messages::send,
        messages::list,
        messages::get,
        media::upload,
        media::download,
        keys::create,
        keys::list,
        keys::get,
        keys::delete,
        keys::revoke,
        audit::list,
    ),
    components(schemas(ErrorEnvelope, ErrorBody, ErrorCode, send::SendMessageRequest)),
    modifiers(&Security, &ErrorResponses),
    security(("bearer" = []), ("api_key" = [])),
    tags(
        (name = "sessions", description = "WhatsApp sessions (linked devices) and their desired state"),
        (name = "messages", description = "Sending and reading messages"),
        (name = "media", description = "Uploading files to send, downloading stored media"),
        (name = "api-keys", description = "API keys (admin)"),
        (name = "audit", description = "The audit log (admin)"),
        (name = "meta", description = "Health and this document"),
    )
)]
pub struct ApiDoc;

/// Declares the two ways to present a key.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("owa_…")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Every operation can fail with a 5xx too, and every response gets a description (the
/// annotations leave the obvious ones empty).
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                describe(operation);
            }
        }
    }
}

fn describe(operation: &mut Operation) {
    let envelope = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
        .build();
    let server_error = ResponseBuilder::new()
        .description("Server error or unavailable dependency; quote the request id")
        .content("application/json", envelope)
        .build();
    operation
        .responses
        .responses
        .entry("5XX".to_owned())
        .or_insert(RefOr::T(server_error));
    for (status, response) in &mut operation.responses.responses {
        let RefOr::T(response) = response else {
            continue;
        };
        if response.description.is_empty() {
            response.description = match status.as_str() {
                "4XX" => "Client error; the envelope's `code` says which".to_owned(),
                code => code
                    .parse::<u16>()
                    .ok()
                    .and_then(|c| http::StatusCode::from_u16(c).ok())
                    .and_then(|c| c.canonical_reason())
                    .unwrap_or("Response")
                    .to_owned(),
            };
        }
    }
}

/// The document, with `servers` set when the public URL is known.
pub fn document(public_base_url: Option<&str>) -> Document {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    if let Some(url) = public_base_url {
        doc.servers = Some(vec![ServerBuilder::new().url(url).build()]);
    }
    doc
}
