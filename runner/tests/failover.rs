//! Two `openwa-runner` processes on one store (the embedded SQLite data dir), one session, real
//! Chromium against the simulator:
//! - while the first runner holds the lease the second never drives the session: the
//!   simulator's connection log shows no conflict (a second page of the account would displace
//!   the first and be logged as one);
//! - when the holder is SIGKILLed (with its Chromium, as when a container dies) the second takes
//!   the session over within lease + 15 s, from the snapshot, without a new scan, and every send
//!   job enqueued before and after the kill reaches the recipient exactly once.
//!
//! Run in both isolation modes: in context mode the snapshot is a dump of the live page and
//! the runner's shared browser dies with it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openwa_core::apikey::Role;
use openwa_core::auth::Principal;
use openwa_core::clock::SystemClock;
use openwa_core::content::Content;
use openwa_core::id::ApiKeyId;
use openwa_core::id::{MessageId, SessionId};
use openwa_core::jid::ChatId;
use openwa_core::message::{MessageStatus, SendCommand};
use openwa_core::ports::{Backend, QueueName};
use openwa_core::services::MessageService;
use openwa_core::session::{DesiredState, Session, SessionConfig, SessionStatus};
use openwa_runner::IsolationMode;
use openwa_runner::snapshot::snapshot_key;
use openwa_simulator::{Simulator, SimulatorConfig};
use serde_json::{Value, json};

const GATEWAY: &str = "15550100011";
const CUSTOMER: &str = "15550100012";
const LEASE_SECS: u64 = 6;

/// `CHROMIUM_BIN`, else the runner's default (the headless shell when installed).
fn chromium() -> PathBuf {
    let bin = std::env::var_os("CHROMIUM_BIN").map_or_else(
        openwa_runner::engine::chromium::default_binary,
        PathBuf::from,
    );
    assert!(
        bin.exists(),
        "Chromium not found at {}; set CHROMIUM_BIN",
        bin.display()
    );
    bin
}

/// A runner process; dropping it kills it and its descendants.
struct RunnerProcess {
    child: Child,
}

impl RunnerProcess {
    fn start(
        id: &str,
        data_dir: &Path,
        profiles: &Path,
        wa_url: &str,
        isolation: IsolationMode,
    ) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_openwa-runner"))
            .env("OPENWA_RUNNER_ISOLATION", isolation.as_str())
            .env("OPENWA_DATA_DIR", data_dir)
            .env("OPENWA_RUNNER_ID", id)
            .env("OPENWA_PROFILES_DIR", profiles)
            .env("OPENWA_WA_URL", wa_url)
            .env("OPENWA_LEASE_SECS", LEASE_SECS.to_string())
            .env("OPENWA_CLAIM_INTERVAL_SECS", "1")
            .env("OPENWA_SNAPSHOT_INTERVAL_SECS", "10")
            .env("OPENWA_RESTART_BACKOFF_MIN_MS", "200")
            .env("OPENWA_JOB_VISIBILITY_SECS", "10")
            .env("OPENWA_CHROMIUM", chromium())
            .env(
                "RUST_LOG",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn openwa-runner");
        Self { child }
    }

    /// SIGKILLs the runner and every process below it, like a container that dies.
    fn kill_with_descendants(&mut self) {
        let mut pids = descendants(self.child.id());
        pids.push(self.child.id());
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.child.wait();
    }
}

impl Drop for RunnerProcess {
    fn drop(&mut self) {
        self.kill_with_descendants();
    }
}

/// All processes whose parent chain leads to `root`.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if let Some(ppid) = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        {
            parent_of.push((pid, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(child, parent) in &parent_of {
            if parent == p && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

struct World {
    sim: Simulator,
    http: reqwest::Client,
    backend: Backend,
    dir: tempfile::TempDir,
}

impl World {
    async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/control{path}", self.sim.base_url());
        let mut req = self.http.request(method, url);
        if !body.is_null() {
            req = req.json(&body);
        }
        let res = req.send().await.expect("control API");
        assert!(
            res.status().is_success(),
            "control {path}: {}",
            res.status()
        );
        res.json().await.unwrap_or(Value::Null)
    }

    async fn session(&self, id: &SessionId) -> Session {
        self.backend.sessions.get(id).await.unwrap()
    }

    async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(&Session) -> bool,
        id: &SessionId,
    ) -> Session {
        let deadline = Instant::now() + within;
        loop {
            let s = self.session(id).await;
            if check(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; session: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Accepts a text send the way the API does (store `queued`, enqueue the job).
    async fn enqueue_text(&self, session: &SessionId, to: &ChatId, body: &str) -> MessageId {
        let b = &self.backend;
        let messages = MessageService::new(
            b.sessions.clone(),
            b.messages.clone(),
            b.queue.clone(),
            b.blobs.clone(),
            b.clock.clone(),
        );
        let operator = Principal {
            key_id: ApiKeyId::generate(),
            key_name: "test".into(),
            role: Role::Operator,
            allowed_sessions: None,
            rate_limit_per_minute: None,
            source_ip: None,
        };
        let command = SendCommand {
            session_id: session.clone(),
            to: to.clone(),
            content: Content::Text {
                body: body.into(),
                link_preview: false,
            },
            reply_to: None,
            mentions: vec![],
            idempotency_key: None,
        };
        messages.send(&operator, command).await.unwrap().message.id
    }

    async fn customer_bodies(&self) -> Vec<String> {
        let list = self
            .control(
                reqwest::Method::GET,
                &format!("/accounts/{CUSTOMER}/messages?chat={GATEWAY}@c.us"),
                Value::Null,
            )
            .await;
        let items = list
            .as_array()
            .cloned()
            .or_else(|| list["messages"].as_array().cloned())
            .unwrap_or_default();
        items
            .iter()
            .filter_map(|m| m["body"].as_str().map(str::to_owned))
            .collect()
    }
}

/// One failover at a time: each runs two runners and their browsers on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runner_s_session_moves_to_the_other_runner_without_a_scan_and_without_losing_sends()
 {
    fails_over_in(IsolationMode::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_context_mode_a_killed_runner_s_session_moves_over_without_a_scan_and_without_losing_sends()
 {
    fails_over_in(IsolationMode::Context).await;
}

async fn fails_over_in(mode: IsolationMode) {
    let _serial = SERIAL.lock().await;
    let sim = Simulator::start(SimulatorConfig {
        qr_interval: Duration::from_millis(1000),
        ..Default::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let backend = openwa_infra::embedded::open(&data, Arc::new(SystemClock)).unwrap();
    let w = World {
        sim,
        http: reqwest::Client::new(),
        backend,
        dir,
    };
    for (phone, name) in [(GATEWAY, "Gateway"), (CUSTOMER, "Customer")] {
        w.control(
            reqwest::Method::POST,
            "/accounts",
            json!({"phone": phone, "pushname": name}),
        )
        .await;
    }
    let id = SessionId::parse("s1").unwrap();
    let mut session = Session::new(
        id.clone(),
        None,
        SessionConfig::default(),
        w.backend.clock.now(),
    )
    .unwrap();
    session.desired = DesiredState::Running;
    w.backend
        .queue
        .ensure(&QueueName::Send(id.clone()))
        .await
        .unwrap();
    w.backend
        .queue
        .ensure(&QueueName::Control(id.clone()))
        .await
        .unwrap();
    w.backend.sessions.create(&session).await.unwrap();
    let wa_url = format!("{}/", w.sim.base_url());

    // Runner A links the session.
    let mut a = RunnerProcess::start("runner-a", &data, &w.dir.path().join("a"), &wa_url, mode);
    let s = w
        .wait_for("a QR", Duration::from_secs(60), |s| s.qr.is_some(), &id)
        .await;
    w.control(
        reqwest::Method::POST,
        &format!("/accounts/{GATEWAY}/scan"),
        json!({"qr": s.qr.unwrap().payload}),
    )
    .await;
    w.wait_for(
        "connected on A",
        Duration::from_secs(60),
        |s| s.status == SessionStatus::Connected && s.lease.owner.as_deref() == Some("runner-a"),
        &id,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let snapshot = loop {
        if let Ok((blob, _)) = w.backend.blobs.get(&snapshot_key(&id)).await {
            break blob;
        }
        assert!(Instant::now() < deadline, "no snapshot after login");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The runner really runs in `mode`: the snapshot's kind byte says which it took.
    let kind = match mode {
        IsolationMode::Process => 1,
        IsolationMode::Context => 2,
    };
    assert_eq!(snapshot.get(6), Some(&kind), "{mode} mode snapshot kind");

    // Runner B joins: it must not touch the session while A renews.
    let _b = RunnerProcess::start("runner-b", &data, &w.dir.path().join("b"), &wa_url, mode);
    tokio::time::sleep(Duration::from_secs(LEASE_SECS + 2)).await;
    let s = w.session(&id).await;
    assert_eq!(
        s.lease.owner.as_deref(),
        Some("runner-a"),
        "B left A's session alone"
    );
    let epoch_a = s.lease.epoch;

    // Sends before the kill (some may be in flight when A dies) and after it.
    let customer = ChatId::parse(CUSTOMER).unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(w.enqueue_text(&id, &customer, &format!("before {i}")).await);
    }
    a.kill_with_descendants();
    let killed_at = Instant::now();
    for i in 0..5 {
        ids.push(w.enqueue_text(&id, &customer, &format!("after {i}")).await);
    }

    let s = w
        .wait_for(
            "B connected",
            Duration::from_secs(LEASE_SECS + 45),
            |s| {
                s.status == SessionStatus::Connected && s.lease.owner.as_deref() == Some("runner-b")
            },
            &id,
        )
        .await;
    let takeover = killed_at.elapsed();
    assert!(s.lease.epoch > epoch_a, "B claimed with a higher epoch");
    assert!(
        takeover <= Duration::from_secs(LEASE_SECS + 15),
        "takeover took {takeover:?}, more than lease + 15 s"
    );
    eprintln!("{mode} mode: takeover after SIGKILL: {takeover:?} (lease {LEASE_SECS} s)");

    // Every message reaches the customer exactly once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bodies = w.customer_bodies().await;
        let all = (0..5).all(|i| {
            bodies.contains(&format!("before {i}")) && bodies.contains(&format!("after {i}"))
        });
        if all {
            for i in 0..5 {
                for body in [format!("before {i}"), format!("after {i}")] {
                    assert_eq!(
                        bodies.iter().filter(|b| **b == body).count(),
                        1,
                        "{body:?} arrived exactly once: {bodies:?}"
                    );
                }
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every send arrived: {bodies:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for mid in &ids {
        let m = w.backend.messages.get(&id, mid).await.unwrap();
        assert!(
            m.status >= MessageStatus::Sent && m.status != MessageStatus::Failed,
            "{mid}: {:?}",
            m.status
        );
    }

    // No scan happened after the first, and the account never had two pages at once: a second
    // page of the same device would have displaced the first, which the simulator logs as a
    // conflict.
    let log = w
        .control(
            reqwest::Method::GET,
            &format!("/connections?phone={GATEWAY}"),
            Value::Null,
        )
        .await;
    let events = log["events"].as_array().unwrap();
    let paired = events.iter().filter(|e| e["event"] == "paired").count();
    assert_eq!(paired, 1, "exactly one pairing (no new scan): {log}");
    assert!(
        !events.iter().any(|e| e["event"] == "conflict"),
        "no page was displaced by another: {log}"
    );
    let mut connected = std::collections::BTreeSet::new();
    for e in events {
        let page = e["page_id"].as_u64().unwrap();
        match e["event"].as_str().unwrap() {
            "connected" => {
                assert!(
                    connected.is_empty(),
                    "page {page} connected while {connected:?} still were: {log}"
                );
                connected.insert(page);
            }
            "disconnected" | "logged_out" => {
                connected.remove(&page);
            }
            _ => {}
        }
    }
}
