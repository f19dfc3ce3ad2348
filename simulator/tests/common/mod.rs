//! Shared test helpers: an in-process simulator on a free loopback port, a headless Chromium
//! with its own profile driven through chromiumoxide, JS evaluation with timeouts, polling,
//! and a tiny HTTP client for the control API.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::error::CdpError;
use chromiumoxide::page::Page;
use futures::StreamExt as _;
use openwa_simulator::{Simulator, SimulatorConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinHandle;

/// Every CDP call is bounded by this.
pub const CDP_TIMEOUT: Duration = Duration::from_secs(15);

/// Start a simulator with fast QR rotation.
pub async fn start_sim(qr_interval_ms: u64, refs: u32) -> Simulator {
    let config = SimulatorConfig {
        qr_interval: Duration::from_millis(qr_interval_ms),
        qr_refs_before_idle: refs,
        pairing_delay: Duration::from_millis(150),
        reconnect_delay: Duration::from_millis(300),
        ..SimulatorConfig::default()
    };
    Simulator::start(config).await.expect("simulator starts")
}

/// The Chromium binary: `$CHROMIUM_BIN`, else Debian's headless shell (the runner's default)
/// or full Chromium; panics with a clear message otherwise.
pub fn chromium_bin() -> PathBuf {
    let shell = PathBuf::from("/usr/lib/chromium/chromium-headless-shell");
    let candidate = std::env::var_os("CHROMIUM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            if shell.exists() {
                shell
            } else {
                PathBuf::from("/usr/lib/chromium/chromium")
            }
        });
    assert!(
        candidate.exists(),
        "Chromium not found at {} — install Debian's `chromium` package or set CHROMIUM_BIN",
        candidate.display()
    );
    candidate
}

/// A headless Chromium with its own profile directory.
pub struct Chrome {
    pub browser: Browser,
    handler: JoinHandle<()>,
    pub profile: PathBuf,
}

impl Chrome {
    /// Launch Chromium on `profile` (created if missing).
    pub async fn launch(profile: &Path) -> Chrome {
        std::fs::create_dir_all(profile).expect("profile dir");
        let config = BrowserConfig::builder()
            .chrome_executable(chromium_bin())
            .user_data_dir(profile)
            .new_headless_mode()
            .no_sandbox()
            .args([
                "disable-gpu",
                "disable-quic",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
            ])
            .launch_timeout(Duration::from_secs(30))
            .request_timeout(CDP_TIMEOUT)
            .build()
            .expect("browser config");
        let (browser, mut handler) =
            tokio::time::timeout(Duration::from_secs(40), Browser::launch(config))
                .await
                .expect("chromium launch timed out")
                .expect("chromium launches");
        let handler = tokio::spawn(async move {
            while let Some(ev) = handler.next().await {
                if let Err(CdpError::Ws(_)) = ev {
                    // The browser is gone: stop polling so later calls fail fast.
                    break;
                }
            }
        });
        Chrome {
            browser,
            handler,
            profile: profile.to_path_buf(),
        }
    }

    /// Open `url` in a new tab.
    pub async fn open(&self, url: &str) -> Page {
        tokio::time::timeout(CDP_TIMEOUT, self.browser.new_page(url))
            .await
            .expect("new_page timed out")
            .expect("new_page")
    }

    /// Close Chromium gracefully (profile flushed) and wait for the process to exit.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(CDP_TIMEOUT, self.browser.close()).await;
        let _ = tokio::time::timeout(CDP_TIMEOUT, self.browser.wait()).await;
        self.handler.abort();
    }
}

/// Evaluate an async JS function body (`return ...` allowed) and return its JSON value.
pub async fn eval(page: &Page, body: &str) -> Result<Value, String> {
    let expr = format!("(async () => {{ {body} }})()");
    match tokio::time::timeout(CDP_TIMEOUT, page.evaluate_expression(expr)).await {
        Err(_) => Err("evaluation timed out".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(r)) => Ok(r.value().cloned().unwrap_or(Value::Null)),
    }
}

/// Evaluate and panic on failure.
pub async fn js(page: &Page, body: &str) -> Value {
    eval(page, body)
        .await
        .unwrap_or_else(|e| panic!("JS failed: {e}\n{body}"))
}

/// Poll `body` until it returns a truthy value (evaluation errors, e.g. during a reload, are
/// retried). Returns the value.
pub async fn wait_for(page: &Page, body: &str, timeout: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last;
    loop {
        match eval(page, body).await {
            Ok(v) if truthy(&v) => return v,
            Ok(v) => last = v.to_string(),
            Err(e) => last = e,
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {body}\nlast: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Wait until the app booted and `Socket.state` is one of `states`.
pub async fn wait_state(page: &Page, states: &[&str], timeout: Duration) -> String {
    let list = serde_json::to_string(states).expect("json");
    let v = wait_for(
        page,
        &format!(
            "if (!window.Debug || !window.Debug.VERSION) return null; \
             const s = require('WAWebSocketModel').Socket.state; return {list}.includes(s) ? s : null;"
        ),
        timeout,
    )
    .await;
    v.as_str().unwrap_or_default().to_owned()
}

/// A minimal HTTP/1.1 JSON client for the control API.
pub async fn http(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(CDP_TIMEOUT, stream.read_to_end(&mut buf))
        .await
        .expect("http timed out")
        .expect("read");
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((len, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// POST and expect 2xx.
pub async fn post(base: &str, path: &str, body: Value) -> Value {
    let (status, v) = http(base, "POST", path, Some(body)).await;
    assert!((200..300).contains(&status), "POST {path} -> {status}: {v}");
    v
}

/// GET and expect 2xx.
pub async fn get(base: &str, path: &str) -> Value {
    let (status, v) = http(base, "GET", path, None).await;
    assert!((200..300).contains(&status), "GET {path} -> {status}: {v}");
    v
}

/// Create an account.
pub async fn account(base: &str, phone: &str, name: &str) {
    post(
        base,
        "/control/accounts",
        serde_json::json!({"phone": phone, "pushname": name}),
    )
    .await;
}

/// Wait for the page to show a QR, scan it as `phone`, and wait until it is connected and
/// synced after its self-reload. Returns the device number.
pub async fn scan_and_connect(base: &str, page: &Page, phone: &str) -> u32 {
    wait_state(page, &["UNPAIRED"], Duration::from_secs(20)).await;
    let qr = wait_for(
        page,
        "return document.getElementById('qr').dataset.payload || null;",
        Duration::from_secs(15),
    )
    .await;
    post(
        base,
        &format!("/control/accounts/{phone}/scan"),
        serde_json::json!({"qr": qr}),
    )
    .await;
    wait_for(page, "return performance.getEntriesByType('navigation')[0].type === 'reload' && require('WAWebSocketModel').Socket.hasSynced;", Duration::from_secs(15)).await;
    let acc = get(base, &format!("/control/accounts/{phone}")).await;
    acc["devices"]
        .as_array()
        .and_then(|d| d.last())
        .and_then(|d| d["id"].as_u64())
        .expect("a device") as u32
}

/// Install a recorder of `change:state` events on the page (`window.__states`).
pub async fn record_states(page: &Page) {
    js(page, "window.__states = []; require('WAWebSocketModel').Socket.on('change:state', (m, s) => window.__states.push(s)); return true;").await;
}
