//! Starting a session in context mode: a browser context in the runner's shared Chromium
//! (with the session's proxy, if any), one page in it, the login restored into it before
//! WhatsApp Web loads, then the same page preparation and supervisor as in process mode.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use tokio::sync::mpsc;

use super::home::Home;
use super::session::{self, ChromiumSession, Opened};
use super::shared::{BrowserInstance, SharedBrowser};
use super::{ChromiumConfig, ChromiumError, bridge, cdp, storage};
use crate::engine::{EngineError, EngineEvent, SessionSpec};

/// Opens `spec`'s session in a new context of the shared browser and starts its supervisor.
pub(super) async fn start(
    config: &ChromiumConfig,
    shared: &SharedBrowser,
    spec: SessionSpec,
) -> Result<(ChromiumSession, mpsc::Receiver<EngineEvent>), EngineError> {
    let started = Instant::now();
    let instance = shared.get().await?;
    let params = CreateBrowserContextParams {
        proxy_server: spec.proxy.clone(),
        ..Default::default()
    };
    let context = cdp::cdp(instance.browser.create_browser_context(params)).await?;
    let (dead_tx, dead_rx) = mpsc::channel::<String>(4);
    let home = Home::Context {
        instance: instance.clone(),
        context: context.clone(),
        disposed: AtomicBool::new(false),
        ended: dead_tx.clone(),
    };
    let opened = async {
        let target = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(context.clone())
            .build()
            .map_err(ChromiumError::Cdp)?;
        let page = cdp::cdp(instance.browser.new_page(target)).await?;
        if let Some(dump) = &spec.auth_dump {
            storage::restore_before_load(&page, &spec.wa_url, dump)
                .await
                .map_err(|e| ChromiumError::Cdp(e.to_string()))?;
        }
        cdp::prepare_page(
            page,
            &bridge::source(spec.takeover_on_conflict),
            &spec.wa_url,
            instance.user_agent.as_deref(),
        )
        .await
    };
    let conn = match opened.await {
        Ok(conn) => conn,
        Err(e) => {
            home.abort().await;
            return Err(e.into());
        }
    };
    forward_death(&instance, dead_tx);
    tracing::debug!(session = %spec.session_id, pid = instance.pid, elapsed_ms = started.elapsed().as_millis() as u64, "browser context up, WhatsApp Web loading");
    let opened = Opened {
        home,
        conn,
        dead: dead_rx,
        started,
    };
    Ok(session::supervise(config, opened))
}

/// Passes the shared browser's death on to one session's supervisor; gives up when the
/// session is gone (its receiver dropped).
fn forward_death(instance: &Arc<BrowserInstance>, dead: mpsc::Sender<String>) {
    let mut gone = instance.dead.clone();
    tokio::spawn(async move {
        let reason = tokio::select! {
            reason = gone.wait_for(Option::is_some) => {
                reason.ok().and_then(|r| r.clone()).unwrap_or_else(|| "shared Chromium gone".into())
            }
            _ = dead.closed() => return,
        };
        let _ = dead.send(reason).await;
    });
}
