//! Shared set-up of the Chromium engine tests (`chromium_*.rs`): an in-process simulator with
//! two accounts, a Chromium engine pointed at it, control API calls and event waits.
//! Also compiled on its own as an (empty) test target, hence `allow(dead_code)`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use openwa_core::content::Content;
use openwa_core::id::{MessageId, SessionId};
use openwa_core::jid::ChatId;
use openwa_runner::engine::chromium::{ChromiumConfig, ChromiumEngine, default_binary};
use openwa_runner::engine::{
    AuthDump, Engine, EngineEvent, EngineSession, IsolationMode, OutgoingMessage, SessionSpec,
    wa_key_for,
};
use openwa_simulator::{Simulator, SimulatorConfig};
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;

/// Browser tests run one at a time: each starts its own Chromium on a 2-core machine.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const GATEWAY_PHONE: &str = "15550100001";
pub const FRIEND_PHONE: &str = "15550100002";
pub const WAIT: Duration = Duration::from_secs(30);

/// `CHROMIUM_BIN`, else the runner's default (the headless shell when installed).
pub fn chromium() -> PathBuf {
    let bin = std::env::var_os("CHROMIUM_BIN").map_or_else(default_binary, PathBuf::from);
    assert!(
        bin.exists(),
        "Chromium not found at {} — install Debian's `chromium-headless-shell` package or set CHROMIUM_BIN",
        bin.display()
    );
    bin
}

/// A simulator with two accounts and a Chromium engine pointed at it.
pub struct World {
    pub sim: Simulator,
    pub http: reqwest::Client,
    pub engine: ChromiumEngine,
    pub profiles: tempfile::TempDir,
}

impl World {
    pub async fn new() -> Self {
        Self::new_in(IsolationMode::Process).await
    }

    /// A world whose engine runs in `isolation` mode (context mode: one shared browser on a
    /// profile under the world's temporary directory).
    pub async fn new_in(isolation: IsolationMode) -> Self {
        let sim = Simulator::start(SimulatorConfig {
            qr_interval: Duration::from_millis(700),
            ..SimulatorConfig::default()
        })
        .await
        .expect("simulator starts");
        let profiles = tempfile::tempdir().unwrap();
        let mut config = ChromiumConfig::for_binary(chromium());
        if isolation == IsolationMode::Context {
            config = config.in_context_mode(profiles.path().join(".shared-browser"));
        }
        let world = Self {
            sim,
            http: reqwest::Client::new(),
            engine: ChromiumEngine::new(config),
            profiles,
        };
        world
            .control(
                "POST",
                "/accounts",
                json!({"phone": GATEWAY_PHONE, "pushname": "Gateway"}),
            )
            .await;
        world
            .control(
                "POST",
                "/accounts",
                json!({"phone": FRIEND_PHONE, "pushname": "Friend"}),
            )
            .await;
        world
    }

    pub async fn control(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/control{path}", self.sim.base_url());
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let resp = req.send().await.expect("control API reachable");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    pub fn spec(&self, name: &str) -> SessionSpec {
        SessionSpec {
            session_id: SessionId::parse(name).unwrap(),
            profile_dir: self.profile(name),
            auth_dump: None,
            proxy: None,
            wa_url: format!("{}/", self.sim.base_url()),
            takeover_on_conflict: false,
        }
    }

    pub fn profile(&self, name: &str) -> PathBuf {
        self.profiles.path().join(name)
    }

    pub async fn start(&self, name: &str) -> (Box<dyn EngineSession>, Receiver<EngineEvent>) {
        self.start_spec(self.spec(name)).await
    }

    pub async fn start_spec(
        &self,
        spec: SessionSpec,
    ) -> (Box<dyn EngineSession>, Receiver<EngineEvent>) {
        self.engine.start(spec).await.expect("session starts")
    }

    /// Starts a session and logs it in by scanning its first QR from the gateway's phone.
    pub async fn logged_in(&self, name: &str) -> (Box<dyn EngineSession>, Receiver<EngineEvent>) {
        self.logged_in_as(name, GATEWAY_PHONE).await
    }

    /// Starts a session and logs it in by scanning its first QR from `phone`.
    pub async fn logged_in_as(
        &self,
        name: &str,
        phone: &str,
    ) -> (Box<dyn EngineSession>, Receiver<EngineEvent>) {
        let (session, mut events) = self.start(name).await;
        let qr = next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await;
        let EngineEvent::Qr { payload, .. } = qr else {
            unreachable!()
        };
        self.control(
            "POST",
            &format!("/accounts/{phone}/scan"),
            json!({"qr": payload}),
        )
        .await;
        next_matching(&mut events, |e| matches!(e, EngineEvent::Ready { .. })).await;
        (session, events)
    }

    /// Stops a session the way the runner does, keeping its login: in context mode the login
    /// is dumped from the live page first (returned), in process mode it stays in the profile.
    pub async fn stop_keeping_login(
        &self,
        session: Box<dyn EngineSession>,
        mut events: Receiver<EngineEvent>,
    ) -> Option<AuthDump> {
        let dump = match self.engine.isolation() {
            IsolationMode::Process => None,
            IsolationMode::Context => Some(session.export_auth().await.expect("login dumped")),
        };
        session.stop().await.unwrap();
        until_end(&mut events, Duration::from_secs(15)).await;
        dump
    }

    /// Starts a session with a login dump to restore (context mode).
    pub async fn start_with(
        &self,
        name: &str,
        auth_dump: Option<AuthDump>,
    ) -> (Box<dyn EngineSession>, Receiver<EngineEvent>) {
        self.start_spec(SessionSpec {
            auth_dump,
            ..self.spec(name)
        })
        .await
    }

    /// Waits until the gateway's device has connected `n` times (the page reloads itself
    /// after a login, so the second connection is the reloaded document).
    pub async fn wait_connections(&self, n: usize) {
        for _ in 0..100 {
            let log = self
                .control(
                    "GET",
                    &format!("/connections?phone={GATEWAY_PHONE}"),
                    Value::Null,
                )
                .await;
            let connected = log["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["event"] == "connected")
                .count();
            if connected >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the gateway device did not connect {n} times");
    }

    pub async fn friend_messages(&self) -> Vec<Value> {
        let v = self
            .control(
                "GET",
                &format!("/accounts/{FRIEND_PHONE}/messages"),
                Value::Null,
            )
            .await;
        v["messages"].as_array().unwrap().clone()
    }
}

/// The next event matching `pred` (others are skipped), within [`WAIT`].
pub async fn next_matching(
    events: &mut Receiver<EngineEvent>,
    pred: impl Fn(&EngineEvent) -> bool,
) -> EngineEvent {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(e) = events.recv().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(e)) => e,
        Ok(None) => panic!("event stream ended before the expected event"),
        Err(_) => panic!("no matching event within {WAIT:?}"),
    }
}

/// Every event until the stream ends (bounded by `within`).
pub async fn until_end(events: &mut Receiver<EngineEvent>, within: Duration) -> Vec<EngineEvent> {
    let mut seen = Vec::new();
    let ended = tokio::time::timeout(within, async {
        while let Some(e) = events.recv().await {
            seen.push(e);
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the event stream did not end within {within:?}; saw {seen:?}"
    );
    seen
}

pub fn text_to_friend(body: &str) -> OutgoingMessage {
    let message_id = MessageId::generate();
    OutgoingMessage {
        wa_key: wa_key_for(&message_id),
        message_id,
        chat: ChatId::parse(FRIEND_PHONE).unwrap(),
        content: Content::Text {
            body: body.to_owned(),
            link_preview: false,
        },
        media: None,
        reply_to: None,
        mentions: Vec::new(),
    }
}

pub fn profile_has_login(dir: &Path) -> bool {
    dir.join("Default").join("IndexedDB").exists()
}

pub fn to_friend(content: Content) -> OutgoingMessage {
    OutgoingMessage {
        content,
        ..text_to_friend("")
    }
}

pub fn media_ref(mimetype: &str, bytes: &[u8]) -> openwa_core::content::MediaRef {
    use sha2::Digest;
    openwa_core::content::MediaRef {
        media_id: openwa_core::id::MediaId::generate(),
        mimetype: mimetype.to_owned(),
        filename: Some("pic.png".to_owned()),
        size: bytes.len() as u64,
        sha256: format!("{:x}", sha2::Sha256::digest(bytes)),
    }
}

/// The browser process among a session's pids: it runs on a profile and has no `--type=`
/// (renderers, zygotes and utilities do; the orphan watchdog has no profile).
pub fn browser_pid(pids: &[u32]) -> u32 {
    *pids
        .iter()
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("--user-data-dir=") && !c.contains("--type=")
            })
        })
        .expect("the browser process")
}
