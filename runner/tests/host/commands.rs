//! Session commands from the API reach the runner through the control queue: a pairing code
//! request while the session shows a QR, a logout of a connected session, and the re-read that
//! makes a stop take effect before the next lease renewal.

use std::time::Duration;

use openwa_core::Error;
use openwa_core::apikey::Role;
use openwa_core::auth::Principal;
use openwa_core::id::ApiKeyId;
use openwa_core::jid::ChatId;
use openwa_core::services::{AuditLog, SessionService};
use openwa_core::session::{DesiredState, Pacing, SessionStatus};
use openwa_runner::engine::fake::{FakeEngine, FakeOptions};
use openwa_runner::snapshot::snapshot_key;

use crate::support::{TestEnv, eventually};

const WAIT: Duration = Duration::from_secs(10);

fn operator() -> Principal {
    Principal {
        key_id: ApiKeyId::generate(),
        key_name: "test".into(),
        role: Role::Operator,
        allowed_sessions: None,
        rate_limit_per_minute: None,
        source_ip: None,
    }
}

/// A test env whose fake engine waits for an explicit scan (the default scans at once).
fn env_waiting_for_scan() -> TestEnv {
    let mut env = TestEnv::new();
    env.fake = FakeEngine::new(FakeOptions {
        auto_scan: None,
        ..Default::default()
    });
    env
}

fn service(env: &TestEnv) -> SessionService {
    let b = &env.backend;
    let audit = AuditLog::new(b.audit.clone(), b.clock.clone());
    SessionService::new(
        b.sessions.clone(),
        b.messages.clone(),
        b.queue.clone(),
        audit,
        b.clock.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_code_requested_through_the_service_is_stored_on_the_session() {
    let env = env_waiting_for_scan();
    let id = env.session("s1", Pacing::default()).await;
    let runner = env.start(env.config("r1"));
    eventually(WAIT, "qr", || async {
        env.get(&id).await.status == SessionStatus::Qr
    })
    .await;

    let phone = ChatId::parse("+1 555 010 9999").unwrap();
    service(&env)
        .request_pairing_code(&operator(), &id, phone.clone())
        .await
        .unwrap();

    eventually(WAIT, "pairing code stored", || async {
        env.get(&id).await.pairing_code.is_some()
    })
    .await;
    let s = env.get(&id).await;
    let code = s.pairing_code.unwrap();
    assert_eq!(code.code, "FAKE-CODE");
    assert_eq!(code.phone, phone);
    assert_eq!(s.status, SessionStatus::Pairing);
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_code_is_refused_once_the_session_is_connected() {
    let env = env_waiting_for_scan();
    let id = env.session("s1", Pacing::default()).await;
    let runner = env.start(env.config("r1"));
    eventually(WAIT, "qr", || async {
        env.get(&id).await.status == SessionStatus::Qr
    })
    .await;
    env.fake.scan(&id);
    eventually(WAIT, "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;

    let phone = ChatId::parse("15550109999").unwrap();
    let err = service(&env)
        .request_pairing_code(&operator(), &id, phone)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_through_the_service_logs_the_device_out_and_deletes_the_snapshot() {
    let env = env_waiting_for_scan();
    let id = env.session("s1", Pacing::default()).await;
    let runner = env.start(env.config("r1"));
    eventually(WAIT, "qr", || async {
        env.get(&id).await.status == SessionStatus::Qr
    })
    .await;
    env.fake.scan(&id);
    eventually(WAIT, "a snapshot", || async {
        env.backend.blobs.get(&snapshot_key(&id)).await.is_ok()
    })
    .await;

    service(&env).logout(&operator(), &id).await.unwrap();

    eventually(WAIT, "logged out", || async {
        env.get(&id).await.status == SessionStatus::LoggedOut
    })
    .await;
    eventually(WAIT, "snapshot deleted", || async {
        matches!(
            env.backend.blobs.get(&snapshot_key(&id)).await,
            Err(Error::NotFound { .. })
        )
    })
    .await;
    runner.stop().await;
}

#[tokio::test]
async fn a_logout_without_a_runner_holding_the_session_is_a_conflict() {
    let env = TestEnv::new();
    let id = env.session("s1", Pacing::default()).await;
    let err = service(&env).logout(&operator(), &id).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_through_the_service_reaches_the_holder_before_its_next_lease_renewal() {
    let env = TestEnv::new();
    let id = env.session("s1", Pacing::default()).await;
    // A 60 s lease renews every 20 s: only the stop's re-read hint can make it quicker.
    let config = openwa_runner::RunnerConfig {
        lease_duration: Duration::from_secs(60),
        ..env.config("r1")
    };
    let runner = env.start(config);
    eventually(WAIT, "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;

    let stopped_at = std::time::Instant::now();
    service(&env)
        .set_desired(&operator(), &id, DesiredState::Stopped)
        .await
        .unwrap();

    eventually(Duration::from_secs(8), "stopped and released", || async {
        let s = env.get(&id).await;
        s.status == SessionStatus::Stopped && s.lease.owner.is_none()
    })
    .await;
    println!("stop -> stopped: {:?}", stopped_at.elapsed());
    runner.stop().await;
}
