//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and the
//! domain types' `ToSchema` derives, so it cannot drift from the code.
//!
//! The top-level `webhooks` section (what openwa POSTs to subscribers, one entry per event type
//! with an example from [`crate::webhook_examples`]) is added by [`WebhookPayloads`].

use openwa_core::event::{Event, EventType};
use serde_json::{Value, json};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder, ServerBuilder,
};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorCode, ErrorEnvelope};
use crate::routes::{
    audit, deliveries, health, keys, login, media, messages, send, sessions, webhooks,
};
use crate::webhook_examples;

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
        webhooks::create,
        webhooks::list,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        webhooks::rotate_secret,
        webhooks::test,
        deliveries::list,
        deliveries::get,
        deliveries::redeliver,
        deliveries::redeliver_range,
    ),
    components(schemas(ErrorEnvelope, ErrorBody, ErrorCode, send::SendMessageRequest, Event, EventType)),
    modifiers(&Security, &ErrorResponses, &WebhookPayloads),
    security(("bearer" = []), ("api_key" = [])),
    tags(
        (name = "sessions", description = "WhatsApp sessions (linked devices) and their desired state"),
        (name = "messages", description = "Sending and reading messages"),
        (name = "media", description = "Uploading files to send, downloading stored media"),
        (name = "webhooks", description = "Webhook subscriptions, their deliveries and redelivery; the payloads are under `webhooks`"),
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

/// The OpenAPI 3.1 `webhooks` object: one `POST` per event type, with the envelope schema, an
/// example payload and the signing headers.
///
/// utoipa 5 has no field for it, so it goes into the top-level extensions, which serialise
/// flattened into the document (the key needs no `x-` prefix when inserted directly). The
/// document is only ever serialised, never read back, so the entry is not lost.
struct WebhookPayloads;

impl Modify for WebhookPayloads {
    fn modify(&self, doc: &mut Document) {
        let entries: serde_json::Map<String, Value> = EventType::ALL
            .into_iter()
            .map(|t| (t.as_str().to_owned(), webhook_entry(t)))
            .collect();
        doc.extensions
            .get_or_insert_with(Default::default)
            .insert("webhooks".to_owned(), Value::Object(entries));
    }
}

fn webhook_entry(t: EventType) -> Value {
    let (summary, _) = webhook_examples::describe(t);
    let header = |name: &str, required: bool, kind: &str, description: &str| {
        json!({
            "name": name,
            "in": "header",
            "required": required,
            "description": description,
            "schema": {"type": kind},
        })
    };
    json!({
        "post": {
            "operationId": format!("webhook_{}", t.as_str().replace('.', "_")),
            "summary": summary,
            "description": format!(
                "Sent to every active webhook whose filter matches `{}`. At least once, in no \
                 guaranteed order: deduplicate on `webhook-id`. Verify the signature over the raw \
                 body before parsing it.",
                t.as_str()
            ),
            "tags": ["webhooks"],
            "security": [],
            "parameters": [
                header("webhook-id", true, "string",
                    "The event id (`evt_…`); the same on every retry of the event."),
                header("webhook-timestamp", true, "integer",
                    "When this attempt was signed, in Unix seconds; reject values far from your clock."),
                header("webhook-signature", true, "string",
                    "`v1,<base64 HMAC-SHA256 of \"{webhook-id}.{webhook-timestamp}.{body}\">`, keyed \
                     with the base64-decoded part of the secret after `whsec_`. During a secret \
                     rotation two signatures, separated by a space; accept if any matches."),
                header("x-hub-signature-256", false, "string",
                    "Only when the webhook has `hub_signature`: `sha256=<hex HMAC-SHA256 of the body>` \
                     keyed with the whole `whsec_…` secret."),
            ],
            "requestBody": {
                "required": true,
                "content": {
                    "application/json": {
                        "schema": {
                            "allOf": [{"$ref": "#/components/schemas/Event"}],
                            "properties": {"type": {"const": t.as_str()}},
                        },
                        "example": webhook_examples::example(t),
                    }
                }
            },
            "responses": {
                "2XX": {"description": "Delivered. Anything else (3xx included) is a failed attempt and retried."},
                "410": {"description": "Gone: the webhook is disabled and a `webhook.disabled` event is published."},
                "429": {"description": "Retried after `Retry-After` (as is 503)."},
            }
        }
    })
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
