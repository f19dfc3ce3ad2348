//! Auth snapshots across runners, and logout.

use std::time::Duration;

use openwa_core::Error;
use openwa_core::event::EventType;
use openwa_core::session::{Pacing, SessionStatus};
use openwa_runner::IsolationMode;
use openwa_runner::engine::EngineEvent;
use openwa_runner::engine::fake::LOGIN_MARKER;
use openwa_runner::snapshot::snapshot_key;

use crate::support::{TestEnv, eventually, exists};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_login_a_snapshot_is_stored_and_the_next_runner_restores_it_without_a_new_qr() {
    snapshot_moves_the_login(IsolationMode::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_context_mode_the_login_dump_moves_to_the_next_runner_without_a_new_qr() {
    snapshot_moves_the_login(IsolationMode::Context).await;
}

/// Login on r1, a graceful stop, and r2 restores from the snapshot taken at the stop.
async fn snapshot_moves_the_login(mode: IsolationMode) {
    let env = TestEnv::in_mode(mode);
    let id = env.session("s1", Pacing::default()).await;
    let first = env.start(env.config("r1"));
    eventually(WAIT, "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;
    eventually(WAIT, "a snapshot", || async {
        env.backend.blobs.get(&snapshot_key(&id)).await.is_ok()
    })
    .await;
    let (stored, _) = env.backend.blobs.get(&snapshot_key(&id)).await.unwrap();
    assert!(
        stored.starts_with(b"OWSNAP"),
        "stored encrypted with its header"
    );
    let kind = match mode {
        IsolationMode::Process => 1,
        IsolationMode::Context => 2,
    };
    assert_eq!(stored.get(6), Some(&kind), "{mode}: the snapshot's kind");
    // Only the snapshot of the graceful stop is left to restore from (in context mode it must
    // be taken from the live run, before the engine stops).
    env.backend.blobs.delete(&snapshot_key(&id)).await.unwrap();
    first.stop().await;
    assert!(
        env.backend.blobs.get(&snapshot_key(&id)).await.is_ok(),
        "{mode}: a snapshot at the graceful stop"
    );
    env.drain_events().await;

    let second = env.start(env.config("r2"));
    eventually(WAIT, "connected on r2", || env.connected_on(&id, "r2")).await;
    let last = env
        .fake
        .runs(&id)
        .into_iter()
        .max_by_key(|r| r.started)
        .unwrap();
    assert!(last.profile_dir.starts_with(env.dir.path().join("r2")));
    assert!(
        last.restored,
        "{mode}: the login was restored before the engine started"
    );
    assert_eq!(
        exists(&last.profile_dir.join(LOGIN_MARKER)),
        mode == IsolationMode::Process,
        "only process mode keeps the login in the profile"
    );
    let events = env.drain_events().await;
    assert!(
        !events.iter().any(|e| e.kind == EventType::SessionQr),
        "{mode}: no new QR"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_deletes_the_snapshot_and_the_session_waits_for_the_user() {
    let env = TestEnv::new();
    let id = env.session("s1", Pacing::default()).await;
    let runner = env.start(env.config("r1"));
    eventually(WAIT, "a snapshot", || async {
        env.backend.blobs.get(&snapshot_key(&id)).await.is_ok()
    })
    .await;

    env.fake.crash(&id, EngineEvent::LoggedOut).await;
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
    // No restart loop: the session stays logged out, held by the runner.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(env.fake.runs(&id).len(), 1);
    let s = env.get(&id).await;
    assert_eq!(s.status, SessionStatus::LoggedOut);
    assert!(s.me.is_none());
    assert_eq!(s.lease.owner.as_deref(), Some("r1"));
    runner.stop().await;
}
