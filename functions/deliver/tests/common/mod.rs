//! Test helpers: an embedded backend per test, an injectable resolver, scripted local receivers.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use openwa_core::clock::SystemClock;
use openwa_core::error::{Error, Result};
use openwa_core::id::{SessionId, WebhookId};
use openwa_core::ports::{Backend, QueueName};
use openwa_core::webhook::{EventPattern, Webhook, WebhookSecret, WebhookTarget};
use openwa_deliver::{AllowList, DeliverConfig, Deliverer, Resolver, SsrfGuard, UnavailableSqs};

/// DNS answers the test controls; each lookup is counted.
#[derive(Default)]
pub struct FakeDns {
    answers: Mutex<HashMap<String, Vec<Vec<IpAddr>>>>,
    pub lookups: Mutex<Vec<String>>,
}

impl FakeDns {
    /// `host` answers `ips` from now on.
    pub fn set(&self, host: &str, ips: &[&str]) {
        self.answers.lock().unwrap().insert(
            host.into(),
            vec![ips.iter().map(|i| i.parse().unwrap()).collect()],
        );
    }

    /// `host` answers each list once, in order, then repeats the last.
    pub fn sequence(&self, host: &str, answers: &[&[&str]]) {
        let lists = answers
            .iter()
            .map(|ips| ips.iter().map(|i| i.parse().unwrap()).collect())
            .collect();
        self.answers.lock().unwrap().insert(host.into(), lists);
    }
}

#[async_trait]
impl Resolver for FakeDns {
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>> {
        self.lookups.lock().unwrap().push(host.to_owned());
        let mut answers = self.answers.lock().unwrap();
        let lists = answers
            .get_mut(host)
            .ok_or_else(|| Error::unavailable(format!("no such host {host}")))?;
        Ok(if lists.len() > 1 {
            lists.remove(0)
        } else {
            lists[0].clone()
        })
    }
}

pub struct App {
    pub backend: Backend,
    pub dns: Arc<FakeDns>,
    pub guard: SsrfGuard,
    pub deliverer: Arc<Deliverer>,
    pub config: DeliverConfig,
    pub dir: tempfile::TempDir,
}

/// A fast test configuration: time scaled by `factor`, loopback allowed.
pub fn test_config(factor: f64) -> DeliverConfig {
    let mut c = DeliverConfig {
        schedule: openwa_core::webhook::RetrySchedule::scaled(factor),
        allowlist: AllowList::loopback(),
        request_timeout: Duration::from_millis(500),
        defer: Duration::from_millis(100),
        ..DeliverConfig::default()
    };
    c.poll.visibility = Duration::from_secs(5);
    c.poll.wait = Duration::from_millis(200);
    c.poll.retry_base = Duration::from_millis(100);
    c
}

pub async fn spawn_app(config: DeliverConfig) -> App {
    let dir = tempfile::tempdir().unwrap();
    let backend = openwa_infra::embedded::open(dir.path(), Arc::new(SystemClock)).unwrap();
    backend.queue.ensure(&QueueName::Events).await.unwrap();
    backend.queue.ensure(&QueueName::Deliveries).await.unwrap();
    let dns = Arc::new(FakeDns::default());
    let guard = SsrfGuard::new(dns.clone(), config.allowlist.clone());
    let deliverer = Arc::new(
        openwa_deliver::deliverer_with(&backend, &config, guard.clone(), Arc::new(UnavailableSqs))
            .unwrap(),
    );
    App {
        backend,
        dns,
        guard,
        deliverer,
        config,
        dir,
    }
}

impl App {
    /// Runs fan-out and the deliver worker in the background until the returned guard drops.
    pub fn start_workers(&self) -> Running {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut fanout_config = openwa_fanout::FanoutConfig::default();
        fanout_config.poll.wait = Duration::from_millis(200);
        tokio::spawn(openwa_fanout::run(
            self.backend.clone(),
            fanout_config,
            stop(rx.clone()),
        ));
        tokio::spawn(openwa_deliver::run_with(
            self.backend.clone(),
            self.deliverer.clone(),
            self.config.clone(),
            stop(rx),
        ));
        Running(tx)
    }

    pub async fn subscribe(&self, url: &str, session: Option<&str>, patterns: &[&str]) -> Webhook {
        let now = Utc::now();
        let w = Webhook {
            id: WebhookId::generate(),
            session_id: session.map(|s| SessionId::parse(s).unwrap()),
            target: WebhookTarget::Http {
                url: url.to_owned(),
            },
            events: patterns
                .iter()
                .map(|p| EventPattern::parse(p).unwrap())
                .collect(),
            secret: Some(WebhookSecret::generate()),
            previous_secret: None,
            previous_secret_until: None,
            headers: BTreeMap::new(),
            hub_signature: false,
            active: true,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        };
        self.backend.webhooks.create(&w).await.unwrap();
        w
    }
}

pub struct Running(tokio::sync::watch::Sender<bool>);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// What a receiver does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    StatusWith(u16, &'static str, String),
    /// Holds the request this long before answering 200.
    Hang(Duration),
}

/// One received request.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub wall: chrono::DateTime<Utc>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone, Default)]
pub struct Receiver {
    script: Arc<Mutex<Vec<Reply>>>,
    /// Answer once the script is used up.
    then: Arc<Mutex<Option<Reply>>>,
    pub hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn set_default(&self, reply: Reply) {
        *self.then.lock().unwrap() = Some(reply);
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    r.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        wall: Utc::now(),
        headers,
        body,
    });
    let reply = {
        let mut script = r.script.lock().unwrap();
        if script.is_empty() {
            r.then.lock().unwrap().clone().unwrap_or(Reply::Status(200))
        } else {
            script.remove(0)
        }
    };
    match reply {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Reply::StatusWith(code, name, value) => {
            (StatusCode::from_u16(code).unwrap(), [(name, value)]).into_response()
        }
        Reply::Hang(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
    }
}

/// A local receiver on 127.0.0.1 answering `script` in order, then 200.
pub async fn receiver(script: Vec<Reply>) -> (Receiver, String) {
    let r = Receiver {
        script: Arc::new(Mutex::new(script)),
        ..Receiver::default()
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, format!("http://{addr}/hook"))
}

/// Polls `check` until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check().await
}
