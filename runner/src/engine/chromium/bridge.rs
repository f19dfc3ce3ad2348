//! The bridge script and calls into it.
//!
//! `assets/bridge.js` is embedded at build time, prefixed with its configuration and
//! registered for every new document. Rust calls `window.__openwa.call(op, args)`; an
//! evaluation cut by a page reload (WhatsApp Web reloads itself after login and logout) is
//! retried once, after the bridge in the new document has booted.

use std::time::Duration;

use chromiumoxide::Page;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::cdp::{EvalError, evaluate};
use crate::engine::EngineError;

/// The bridge script (WhatsApp Web side).
pub const BRIDGE_JS: &str = include_str!("../../../assets/bridge.js");

/// How long a retried call waits for the bridge to come back after a reload.
const REBOOT_WAIT: Duration = Duration::from_secs(30);

/// What the bridge is told at injection.
pub fn source(takeover_on_conflict: bool) -> String {
    let config = json!({ "takeover_on_conflict": takeover_on_conflict });
    format!("window.__openwaConfig = {config};\n{BRIDGE_JS}")
}

/// Calls bridge operations on one page.
#[derive(Clone)]
pub struct BridgeClient {
    page: Page,
    /// Counts bridge boots (one per WhatsApp Web document).
    boots: watch::Receiver<u64>,
}

enum Attempt {
    Done(Result<Value, EngineError>),
    /// The document went away under the call (or had no bridge yet): try again after a boot.
    Retry(String),
}

impl BridgeClient {
    pub fn new(page: Page, boots: watch::Receiver<u64>) -> Self {
        Self { page, boots }
    }

    /// Runs `op` with `args`; `timeout` bounds each attempt.
    pub async fn call(
        &self,
        op: &str,
        args: Value,
        timeout: Duration,
    ) -> Result<Value, EngineError> {
        let before = *self.boots.borrow();
        match self.attempt(op, &args, timeout).await {
            Attempt::Done(r) => r,
            Attempt::Retry(why) => {
                tracing::debug!(op, reason = %why, "bridge call cut by a reload; retrying once");
                let mut boots = self.boots.clone();
                let came_back = tokio::time::timeout(REBOOT_WAIT, boots.wait_for(|n| *n > before))
                    .await
                    .map(|r| r.is_ok());
                match came_back {
                    Ok(true) => {}
                    Ok(false) => return Err(EngineError::Browser("the session ended".into())),
                    Err(_) => {
                        return Err(EngineError::Timeout(format!(
                            "{op}: the page reloaded and the bridge did not come back"
                        )));
                    }
                }
                match self.attempt(op, &args, timeout).await {
                    Attempt::Done(r) => r,
                    Attempt::Retry(why) => Err(EngineError::Browser(format!(
                        "{op}: page reloaded twice during the call ({why})"
                    ))),
                }
            }
        }
    }

    async fn attempt(&self, op: &str, args: &Value, timeout: Duration) -> Attempt {
        let expr = format!(
            "(async () => {{ const b = window.__openwa; \
             if (!b) return {{ ok: false, error: {{ kind: 'no_bridge', message: 'bridge not loaded' }} }}; \
             return await b.call({op}, {args}); }})()",
            op = Value::String(op.to_owned()),
        );
        match evaluate(&self.page, expr, true, timeout).await {
            Ok(v) => decode_answer(op, v),
            Err(EvalError::ContextLost) => Attempt::Retry("execution context destroyed".into()),
            Err(EvalError::Timeout(t)) => Attempt::Done(Err(EngineError::Timeout(format!(
                "{op}: no answer within {t:?}"
            )))),
            Err(e @ EvalError::Exception(_)) => {
                Attempt::Done(Err(EngineError::Rejected(format!("{op}: {e}"))))
            }
            Err(e @ EvalError::Cdp(_)) => {
                Attempt::Done(Err(EngineError::Browser(format!("{op}: {e}"))))
            }
        }
    }
}

/// `{ok, value}` / `{ok: false, error: {kind, message, ...}}` -> a result.
fn decode_answer(op: &str, v: Value) -> Attempt {
    if v.get("ok").and_then(Value::as_bool) == Some(true) {
        return Attempt::Done(Ok(v.get("value").cloned().unwrap_or(Value::Null)));
    }
    let err = v.get("error").cloned().unwrap_or(Value::Null);
    let text = |k: &str| {
        err.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let message = format!("{op}: {}", text("message"));
    let e = match text("kind").as_str() {
        "no_bridge" => return Attempt::Retry(message),
        "surface" => EngineError::SurfaceChanged {
            version: text("version"),
            module: text("module"),
            detail: if text("member").is_empty() {
                message
            } else {
                format!("member {}: {message}", text("member"))
            },
        },
        "not_ready" => EngineError::NotReady(message),
        "recipient" => EngineError::Recipient(message),
        "timeout" => EngineError::Timeout(message),
        _ => EngineError::Rejected(message),
    };
    Attempt::Done(Err(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(v: Value) -> EngineError {
        match decode_answer("send", v) {
            Attempt::Done(Err(e)) => e,
            _ => panic!("expected an error"),
        }
    }

    #[test]
    fn bridge_errors_map_to_engine_errors_by_kind() {
        let e = err_of(
            json!({"ok": false, "error": {"kind": "surface", "message": "x", "module": "WAWebMsgKey", "member": null, "version": "2.3000.9"}}),
        );
        assert!(
            matches!(e, EngineError::SurfaceChanged { ref module, ref version, .. } if module == "WAWebMsgKey" && version == "2.3000.9")
        );
        assert!(matches!(
            err_of(json!({"ok": false, "error": {"kind": "not_ready", "message": "x"}})),
            EngineError::NotReady(_)
        ));
        assert!(matches!(
            err_of(json!({"ok": false, "error": {"kind": "recipient", "message": "x"}})),
            EngineError::Recipient(_)
        ));
        assert!(matches!(
            err_of(json!({"ok": false, "error": {"kind": "boom", "message": "x"}})),
            EngineError::Rejected(_)
        ));
        assert!(matches!(
            decode_answer("x", json!({"ok": false, "error": {"kind": "no_bridge"}})),
            Attempt::Retry(_)
        ));
        assert!(
            matches!(decode_answer("x", json!({"ok": true, "value": 5})), Attempt::Done(Ok(v)) if v == json!(5))
        );
    }

    #[test]
    fn the_injected_source_carries_its_configuration() {
        let s = source(true);
        assert!(s.starts_with("window.__openwaConfig = {\"takeover_on_conflict\":true};"));
        assert!(s.contains("__openwaEmit"));
    }
}
