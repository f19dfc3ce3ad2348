//! Moving a login in and out of an off-the-record browser context (context mode).
//!
//! Contexts keep nothing on disk, so the login (the WhatsApp Web origin's IndexedDB and Local
//! Storage) is dumped from the live page by `assets/storage.js` (a tagged encoding that keeps
//! ArrayBuffers, typed arrays, Dates, Blobs, Maps and Sets; a non-extractable CryptoKey fails
//! the dump, naming its database and store) and restored into a fresh context **before
//! WhatsApp Web's scripts run**: [`restore_before_load`] intercepts the first request for the
//! WhatsApp Web document (`Fetch` domain), answers it with an empty HTML page of the same
//! origin, writes the state there, and turns interception off again. The caller then
//! navigates for real, and the app finds its login where it left it.

use std::time::Duration;

use base64::Engine as _;
use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::fetch::{
    DisableParams as FetchDisable, EnableParams as FetchEnable, EventRequestPaused,
    FulfillRequestParams, HeaderEntry, RequestPattern, RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::ResourceType;
use chromiumoxide::cdp::browser_protocol::page::NavigateParams;
use futures::StreamExt;
use serde_json::Value;

use super::ChromiumError;
use super::cdp::{self, EvalError, evaluate};
use crate::engine::AuthDump;

/// The dump/restore script: one expression evaluating to `{ dump, restore, encode, decode }`.
pub const STORAGE_JS: &str = include_str!("../../../assets/storage.js");

/// What the intercepted document request is answered with: an empty page of the WhatsApp Web
/// origin, where the state is written before the app ever runs.
const BLANK_PAGE: &str = "<!doctype html><title>openwa restore</title>";

/// Upper bound for a dump or a restore (a real WhatsApp Web IndexedDB can be large).
const STORAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a dump or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The page's state cannot be exported (e.g. a non-extractable CryptoKey; the message
    /// names the database and object store).
    #[error("the login cannot be dumped: {0}")]
    NotExportable(String),
    /// The page navigated during the dump; try again.
    #[error("the page reloaded during the dump")]
    Reloaded,
    #[error("restoring the login: {0}")]
    Restore(String),
    #[error(transparent)]
    Browser(#[from] ChromiumError),
}

/// Dumps the current document's origin: IndexedDB + Local Storage, tagged-encoded JSON.
pub async fn dump(page: &Page) -> Result<AuthDump, StorageError> {
    let expr = format!("(async () => ({STORAGE_JS}).dump())()");
    match evaluate(page, expr, true, STORAGE_TIMEOUT).await {
        Ok(Value::String(json)) => Ok(AuthDump::from_bytes(json.into_bytes())),
        Ok(other) => Err(StorageError::NotExportable(format!(
            "the dump script returned {}",
            type_name(&other)
        ))),
        Err(EvalError::ContextLost) => Err(StorageError::Reloaded),
        Err(EvalError::Exception(text)) => Err(StorageError::NotExportable(text)),
        Err(e) => Err(StorageError::Browser(ChromiumError::Cdp(format!(
            "dumping the login: {e}"
        )))),
    }
}

/// Writes `dump` into the (fresh) context of `page` under the origin of `url`, before any of
/// the app's scripts run there. Leaves `page` on an empty document of that origin, with
/// interception off; the caller navigates to `url` afterwards.
pub async fn restore_before_load(
    page: &Page,
    url: &str,
    dump: &AuthDump,
) -> Result<(), StorageError> {
    let mut paused = cdp::cdp(page.event_listener::<EventRequestPaused>()).await?;
    let pattern = RequestPattern::builder()
        .url_pattern(format!("{}*", url.split(['?', '#']).next().unwrap_or(url)))
        .resource_type(ResourceType::Document)
        .request_stage(RequestStage::Request)
        .build();
    cdp::cdp(page.execute(FetchEnable::builder().pattern(pattern).build())).await?;
    let blank = async {
        let navigate = cdp::cdp(page.execute(NavigateParams::new(url)));
        let fulfil = async {
            let ev = tokio::time::timeout(cdp::CDP_TIMEOUT, paused.next())
                .await
                .map_err(|_| {
                    StorageError::Restore(format!("the request for {url} was not intercepted"))
                })?
                .ok_or_else(|| StorageError::Restore("DevTools event stream closed".into()))?;
            let body = base64::engine::general_purpose::STANDARD.encode(BLANK_PAGE);
            let answer = FulfillRequestParams::builder()
                .request_id(ev.request_id.clone())
                .response_code(200)
                .response_header(HeaderEntry::new("Content-Type", "text/html; charset=utf-8"))
                .body(body)
                .build()
                .map_err(StorageError::Restore)?;
            cdp::cdp(page.execute(answer)).await?;
            Ok::<_, StorageError>(())
        };
        let (navigated, fulfilled) = tokio::join!(navigate, fulfil);
        fulfilled?;
        navigated?;
        Ok::<_, StorageError>(())
    }
    .await;
    // Interception off whatever happened: the real navigation must reach the network.
    let disabled = cdp::cdp(page.execute(FetchDisable::default())).await;
    blank?;
    disabled?;

    let text = String::from_utf8(dump.as_bytes().to_vec())
        .map_err(|_| StorageError::Restore("the dump is not UTF-8 text".into()))?;
    let expr = format!(
        "(async () => ({STORAGE_JS}).restore({}))()",
        Value::String(text)
    );
    // The fulfilled document may still be committing when the navigation command returns:
    // an evaluation that lands in the old document is retried once.
    for attempt in 0..2 {
        match evaluate(page, expr.clone(), true, STORAGE_TIMEOUT).await {
            Ok(summary) => {
                tracing::debug!(%summary, "login restored into the browser context");
                return Ok(());
            }
            Err(EvalError::ContextLost) if attempt == 0 => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(StorageError::Restore(e.to_string())),
        }
    }
    Err(StorageError::Restore(
        "the empty page kept reloading".into(),
    ))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
