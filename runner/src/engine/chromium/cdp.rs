//! The DevTools side of a session: connecting chromiumoxide to our Chromium, polling its
//! handler, preparing the page (binding, bridge on every new document, user agent) and
//! evaluating expressions with a timeout on every call. Shared by both isolation modes.

use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::emulation::SetUserAgentOverrideParams;
use chromiumoxide::cdp::browser_protocol::inspector::{
    EnableParams as InspectorEnable, EventTargetCrashed,
};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, NavigateParams,
};
use chromiumoxide::cdp::browser_protocol::target::{CloseTargetParams, GetTargetsParams};
use chromiumoxide::cdp::js_protocol::runtime::{
    AddBindingParams, EvaluateParams, EventBindingCalled,
};
use chromiumoxide::error::CdpError;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::listeners::EventStream;
use chromiumoxide::{Browser, Page};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::ChromiumError;

/// The binding the bridge calls with each event (a JSON string).
pub const BINDING: &str = "__openwaEmit";
/// Upper bound for one plain CDP command (not an awaited evaluation).
pub const CDP_TIMEOUT: Duration = Duration::from_secs(10);

/// The session's page, with the event streams the session watches.
pub struct Connected {
    pub page: Page,
    pub bindings: EventStream<EventBindingCalled>,
    pub crashes: EventStream<EventTargetCrashed>,
}

/// Connects to Chromium at `ws_url` and spawns the handler task. When the handler fails with
/// a WebSocket error (Chromium died) or ends, the reason is sent on `dead` and polling stops:
/// polling a dead handler makes every pending command hang.
pub async fn connect(ws_url: &str, dead: mpsc::Sender<String>) -> Result<Browser, ChromiumError> {
    let config = HandlerConfig {
        request_timeout: Duration::from_secs(300),
        ..HandlerConfig::default()
    };
    let (browser, mut handler) =
        tokio::time::timeout(CDP_TIMEOUT, Browser::connect_with_config(ws_url, config))
            .await
            .map_err(|_| ChromiumError::Cdp("connecting to DevTools timed out".into()))?
            .map_err(|e| ChromiumError::Cdp(format!("connecting to DevTools: {e}")))?;
    tokio::spawn(async move {
        let reason = loop {
            match handler.next().await {
                Some(Ok(())) => {}
                Some(Err(CdpError::Ws(e))) => break format!("DevTools connection lost: {e}"),
                Some(Err(e)) => tracing::debug!(error = %e, "chromiumoxide handler error"),
                None => break "DevTools connection closed".to_owned(),
            }
        };
        let _ = dead.send(reason).await;
    });
    Ok(browser)
}

/// Opens the session page of a per-session browser (process mode): a new tab, the launch
/// tab closed, then [`prepare_page`].
pub async fn open_page(
    browser: &Browser,
    bridge_source: &str,
    url: &str,
) -> Result<Connected, ChromiumError> {
    let page = cdp(browser.new_page("about:blank")).await?;
    close_pages(browser, Some(&page)).await?;
    // Headless Chromium announces itself as "HeadlessChrome", which WhatsApp Web refuses.
    let version = cdp(browser.version()).await?;
    let user_agent = version
        .user_agent
        .contains("HeadlessChrome")
        .then(|| version.user_agent.replace("HeadlessChrome", "Chrome"));
    prepare_page(page, bridge_source, url, user_agent.as_deref()).await
}

/// Prepares `page` and navigates it to WhatsApp Web: the binding and the bridge are registered
/// before navigating, so they exist in every document WhatsApp Web loads (it reloads itself
/// after login and logout); `user_agent` overrides the browser's.
pub async fn prepare_page(
    page: Page,
    bridge_source: &str,
    url: &str,
    user_agent: Option<&str>,
) -> Result<Connected, ChromiumError> {
    let bindings = cdp(page.event_listener::<EventBindingCalled>()).await?;
    let crashes = cdp(page.event_listener::<EventTargetCrashed>()).await?;
    cdp(page.execute(InspectorEnable::default())).await?;
    cdp(page.execute(AddBindingParams::new(BINDING))).await?;
    cdp(page.execute(AddScriptToEvaluateOnNewDocumentParams::new(bridge_source))).await?;
    if let Some(ua) = user_agent {
        cdp(page.execute(SetUserAgentOverrideParams::new(ua))).await?;
    }
    // Once into the current document too (a no-op until it is WhatsApp Web).
    evaluate(&page, bridge_source.to_owned(), false, CDP_TIMEOUT)
        .await
        .map_err(|e| ChromiumError::Cdp(e.to_string()))?;
    cdp(page.execute(NavigateParams::new(url))).await?;
    Ok(Connected {
        page,
        bindings,
        crashes,
    })
}

/// Closes every tab but `keep` (the one Chromium opened at launch: one renderer less).
pub async fn close_pages(browser: &Browser, keep: Option<&Page>) -> Result<(), ChromiumError> {
    let targets = cdp(browser.execute(GetTargetsParams::default())).await?;
    for t in &targets.result.target_infos {
        if t.r#type == "page" && keep.is_none_or(|k| &t.target_id != k.target_id()) {
            cdp(browser.execute(CloseTargetParams::new(t.target_id.clone()))).await?;
        }
    }
    Ok(())
}

/// Runs one CDP future with [`CDP_TIMEOUT`].
pub async fn cdp<T>(fut: impl Future<Output = Result<T, CdpError>>) -> Result<T, ChromiumError> {
    match tokio::time::timeout(CDP_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ChromiumError::Cdp(e.to_string())),
        Err(_) => Err(ChromiumError::Cdp("DevTools command timed out".into())),
    }
}

/// Why an evaluation did not give a value.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The page navigated (or reloaded) while the expression ran.
    #[error("execution context was destroyed")]
    ContextLost,
    #[error("evaluation timed out after {0:?}")]
    Timeout(Duration),
    #[error("script threw: {0}")]
    Exception(String),
    #[error("DevTools error: {0}")]
    Cdp(String),
}

/// Evaluates `expr` in the page's main world; with `await_promise` the promise's value is
/// returned. Values come back by value (JSON).
pub async fn evaluate(
    page: &Page,
    expr: String,
    await_promise: bool,
    timeout: Duration,
) -> Result<Value, EvalError> {
    let params = EvaluateParams::builder()
        .expression(expr)
        .await_promise(await_promise)
        .return_by_value(true)
        .build()
        .map_err(EvalError::Cdp)?;
    let resp = match tokio::time::timeout(timeout, page.execute(params)).await {
        Err(_) => return Err(EvalError::Timeout(timeout)),
        Ok(Err(e)) => return Err(classify(&e.to_string())),
        Ok(Ok(resp)) => resp,
    };
    if let Some(ex) = &resp.result.exception_details {
        let text = ex
            .exception
            .as_ref()
            .and_then(|o| o.description.clone())
            .unwrap_or_else(|| ex.text.clone());
        return Err(classify_exception(text));
    }
    Ok(resp.result.result.value.clone().unwrap_or(Value::Null))
}

fn is_context_loss(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "execution context was destroyed",
        "cannot find context",
        "inspected target navigated",
        "promise was collected",
        "cannot find default execution context",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

fn classify(msg: &str) -> EvalError {
    if is_context_loss(msg) {
        EvalError::ContextLost
    } else {
        EvalError::Cdp(msg.to_owned())
    }
}

fn classify_exception(text: String) -> EvalError {
    if is_context_loss(&text) {
        EvalError::ContextLost
    } else {
        EvalError::Exception(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn navigation_errors_are_recognised_as_a_lost_context() {
        assert!(matches!(
            classify("Execution context was destroyed."),
            EvalError::ContextLost
        ));
        assert!(matches!(
            classify("Cannot find context with specified id"),
            EvalError::ContextLost
        ));
        assert!(matches!(
            classify("Inspected target navigated or closed"),
            EvalError::ContextLost
        ));
        assert!(matches!(classify("Some other failure"), EvalError::Cdp(_)));
        assert!(matches!(
            classify_exception("TypeError: x is undefined".into()),
            EvalError::Exception(_)
        ));
    }
}
