//! Test support: an embedded backend in a temp dir, the fake engine, runners with short
//! leases, and helpers to create sessions, enqueue sends and read published events.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openwa_core::clock::{Clock, SystemClock};
use openwa_core::content::Content;
use openwa_core::event::Event;
use openwa_core::id::{MessageId, SessionId};
use openwa_core::jid::ChatId;
use openwa_core::message::{Direction, Message, MessageStatus, SendJob};
use openwa_core::ports::{Backend, NewJob, QueueName};
use openwa_core::session::{DesiredState, Pacing, Session, SessionConfig, SessionStatus};
use openwa_runner::engine::fake::{FakeEngine, FakeOptions};
use openwa_runner::{IsolationMode, Runner, RunnerConfig};
use tokio::sync::oneshot;

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub fake: FakeEngine,
}

impl TestEnv {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::with(clock, FakeOptions::default())
    }

    /// A test env whose fake engine keeps the login the `isolation` mode's way.
    pub fn in_mode(isolation: IsolationMode) -> Self {
        Self::with(
            Arc::new(SystemClock),
            FakeOptions {
                isolation,
                ..FakeOptions::default()
            },
        )
    }

    fn with(clock: Arc<dyn Clock>, options: FakeOptions) -> Self {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let backend = openwa_infra::embedded::open(&dir.path().join("data"), clock).unwrap();
        Self {
            dir,
            backend,
            fake: FakeEngine::new(options),
        }
    }

    /// A runner config with short leases and timeouts; profiles under `<tmp>/<runner id>`.
    pub fn config(&self, runner_id: &str) -> RunnerConfig {
        RunnerConfig {
            runner_id: runner_id.into(),
            capacity: 10,
            lease_duration: Duration::from_millis(900),
            claim_interval: Duration::from_millis(50),
            profiles_root: self.dir.path().join(runner_id),
            wa_url: "http://fake.invalid/".into(),
            snapshot_interval: Duration::from_secs(60),
            drain_grace: Duration::from_secs(3),
            restart_backoff_min: Duration::from_millis(50),
            restart_backoff_max: Duration::from_millis(400),
            job_visibility: Duration::from_millis(800),
            ..RunnerConfig::default()
        }
    }

    pub fn start(&self, config: RunnerConfig) -> RunningRunner {
        self.start_with(config, self.fake.clone())
    }

    pub fn start_with(&self, config: RunnerConfig, engine: FakeEngine) -> RunningRunner {
        let runner = Runner::new(config, self.backend.clone(), Arc::new(engine));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(runner.run(async {
            let _ = rx.await;
        }));
        RunningRunner {
            shutdown: Some(tx),
            task,
        }
    }

    /// Creates a session that wants to run.
    pub async fn session(&self, id: &str, pacing: Pacing) -> SessionId {
        let id = SessionId::parse(id).unwrap();
        let config = SessionConfig {
            pacing,
            metadata: [("team".to_owned(), "qa".to_owned())].into(),
            ..Default::default()
        };
        let mut session = Session::new(id.clone(), None, config, self.backend.clock.now()).unwrap();
        session.desired = DesiredState::Running;
        self.backend
            .queue
            .ensure(&QueueName::Send(id.clone()))
            .await
            .unwrap();
        self.backend.sessions.create(&session).await.unwrap();
        id
    }

    pub async fn get(&self, id: &SessionId) -> Session {
        self.backend.sessions.get(id).await.unwrap()
    }

    pub async fn set_desired(&self, id: &SessionId, desired: DesiredState) {
        for _ in 0..20 {
            let mut s = self.get(id).await;
            s.desired = desired;
            if self.backend.sessions.update(&s).await.is_ok() {
                return;
            }
        }
        panic!("could not set desired");
    }

    /// Stores a queued text message and enqueues its send job, as the API does.
    pub async fn enqueue_text(&self, session: &SessionId, chat: &ChatId, body: &str) -> MessageId {
        let now = self.backend.clock.now();
        let content = Content::Text {
            body: body.into(),
            link_preview: false,
        };
        let message = Message {
            id: MessageId::generate(),
            wa_id: None,
            session_id: session.clone(),
            chat_id: chat.clone(),
            direction: Direction::Outbound,
            author: None,
            kind: content.kind(),
            content,
            reply_to: None,
            mentions: vec![],
            status: MessageStatus::Queued,
            failure: None,
            idempotency_key: None,
            request_fingerprint: None,
            created_at: now,
            updated_at: now,
        };
        self.backend.messages.insert(&message).await.unwrap();
        let job = SendJob {
            message_id: message.id.clone(),
            session_id: session.clone(),
            chat_id: chat.clone(),
        };
        let new_job = NewJob {
            body: serde_json::to_vec(&job).unwrap(),
            group: Some(chat.to_string()),
            dedup_id: Some(message.id.to_string()),
            delay: Duration::ZERO,
        };
        self.backend
            .queue
            .send(&QueueName::Send(session.clone()), new_job)
            .await
            .unwrap();
        message.id
    }

    /// Whether `runner` holds the session, runs an engine for it, and that engine reported
    /// connected (the status alone may still be the previous holder's).
    pub async fn connected_on(&self, id: &SessionId, runner: &str) -> bool {
        let root = self.dir.path().join(runner);
        let live = self
            .fake
            .runs(id)
            .iter()
            .any(|r| r.stopped.is_none() && r.profile_dir.starts_with(&root));
        let s = self.get(id).await;
        live && s.status == SessionStatus::Connected && s.lease.owner.as_deref() == Some(runner)
    }

    pub async fn message(&self, session: &SessionId, id: &MessageId) -> Message {
        self.backend.messages.get(session, id).await.unwrap()
    }

    /// Takes every event published so far off the events queue.
    pub async fn drain_events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let jobs = self
                .backend
                .queue
                .receive(
                    &QueueName::Events,
                    10,
                    Duration::from_secs(30),
                    Duration::ZERO,
                )
                .await
                .unwrap();
            if jobs.is_empty() {
                return out;
            }
            for job in jobs {
                out.push(serde_json::from_slice(&job.body).unwrap());
                self.backend
                    .queue
                    .ack(&QueueName::Events, &job.receipt)
                    .await
                    .unwrap();
            }
        }
    }
}

pub struct RunningRunner {
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<openwa_runner::Result<()>>,
}

impl RunningRunner {
    /// Graceful shutdown: drain and wait.
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), &mut self.task)
            .await
            .expect("drained in time")
            .unwrap()
            .unwrap();
    }

    /// An abrupt death: the task is aborted, nothing is released.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

pub fn chat(n: u32) -> ChatId {
    ChatId::parse(&format!("1555020{n:04}")).unwrap()
}

/// Polls `check` until it holds; panics with `what` after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// Test output stays silent unless `TEST_LOG` is set.
fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,openwa_runner=debug")
            .with_test_writer()
            .try_init();
    }
}
