//! Route handlers, one module per resource, plus the pieces they share (pagination).
//!
//! Layout:
//! - [`health`] — `/health`, `/openapi.json` (the docs page is mounted in `lib.rs`)
//! - [`sessions`] — `/v1/sessions…`
//! - [`login`] — `/v1/sessions/{id}/qr`, `qr.png`, `pairing-code`, `logout`
//! - [`messages`] — `/v1/sessions/{id}/messages…` (request mapping in [`send`])
//! - [`media`] — `/v1/media…` (upload, download)
//! - [`keys`] — `/v1/api-keys…`
//! - [`audit`] — `/v1/audit`
//! - [`webhooks`] — `/v1/webhooks…` (subscriptions, rotate-secret, test)
//! - [`deliveries`] — `/v1/webhooks/{id}/deliveries…`, redelivery

pub mod audit;
pub mod deliveries;
pub mod health;
pub mod keys;
pub mod login;
pub mod media;
pub mod messages;
pub mod send;
pub mod sessions;
pub mod webhooks;

use openwa_core::page::{Page, PageRequest};

use crate::error::ApiError;

/// `limit` and `cursor` as they arrive; parsed with [`PageRequest::parse`].
pub fn page_request(limit: Option<&str>, cursor: Option<String>) -> Result<PageRequest, ApiError> {
    let limit = match limit {
        None => None,
        Some(raw) => Some(raw.parse::<u32>().map_err(|_| {
            ApiError::invalid(
                "limit",
                format!(
                    "must be a whole number between 1 and {}",
                    PageRequest::MAX_LIMIT
                ),
            )
        })?),
    };
    // `?cursor=` (a client passing back an absent cursor) means the first page.
    Ok(PageRequest::parse(limit, cursor.filter(|c| !c.is_empty()))?)
}

/// Declares the JSON page type of one item type: `{"items": [...], "next_cursor": "..."}`.
macro_rules! page_type {
    ($name:ident, $item:ty) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass back as `cursor` for the next page; absent on the last page.
            pub next_cursor: Option<String>,
        }

        impl From<Page<$item>> for $name {
            fn from(page: Page<$item>) -> Self {
                Self {
                    items: page.items,
                    next_cursor: page.next_cursor,
                }
            }
        }
    };
}

page_type!(SessionPage, openwa_core::session::Session);
page_type!(MessagePage, openwa_core::message::Message);
page_type!(ApiKeyPage, openwa_core::apikey::ApiKey);
page_type!(AuditPage, openwa_core::audit::AuditEntry);
page_type!(WebhookPage, openwa_core::webhook::Webhook);
page_type!(DeliveryPage, openwa_core::webhook::Delivery);
