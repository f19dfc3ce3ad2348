//! Claiming, stopping, takeover after a runner dies, fencing and restarts.

use std::sync::Arc;
use std::time::Duration;

use openwa_core::clock::{Clock, ManualClock};
use openwa_core::event::EventType;
use openwa_core::session::{DesiredState, Pacing, RuntimeUpdate, SessionStatus};
use openwa_runner::RunnerConfig;
use openwa_runner::engine::EngineEvent;
use openwa_runner::engine::fake::{FakeEngine, FakeOptions, RunRecord};

use crate::support::{TestEnv, eventually};

const WAIT: Duration = Duration::from_secs(10);

fn assert_no_overlap(runs: &[RunRecord]) {
    let mut runs = runs.to_vec();
    runs.sort_by_key(|r| r.started);
    for pair in runs.windows(2) {
        let stopped = pair[0].stopped.expect("an earlier run was never stopped");
        assert!(
            stopped <= pair[1].started,
            "two engines ran the session at once: {pair:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_claims_a_session_reports_qr_then_connected_and_lets_it_go_when_stopped() {
    let mut env = TestEnv::new();
    env.fake = FakeEngine::new(FakeOptions {
        auto_scan: None,
        ..Default::default()
    });
    let id = env.session("s1", Pacing::default()).await;
    let runner = env.start(env.config("r1"));

    eventually(WAIT, "status qr with a code", || async {
        let s = env.get(&id).await;
        s.status == SessionStatus::Qr && s.qr.is_some() && s.lease.owner.as_deref() == Some("r1")
    })
    .await;
    env.fake.scan(&id);
    eventually(WAIT, "status connected", || async {
        let s = env.get(&id).await;
        s.status == SessionStatus::Connected && s.me.is_some() && s.qr.is_none()
    })
    .await;

    let events = env.drain_events().await;
    let qr = events
        .iter()
        .find(|e| e.kind == EventType::SessionQr)
        .expect("a session.qr event");
    assert_eq!(qr.metadata.get("team").map(String::as_str), Some("qa"));
    assert!(qr.data["qr"].as_str().is_some());
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventType::SessionStatus && e.data["status"] == "connected")
    );

    env.set_desired(&id, DesiredState::Stopped).await;
    eventually(WAIT, "stopped and released", || async {
        let s = env.get(&id).await;
        s.status == SessionStatus::Stopped && s.lease.owner.is_none()
    })
    .await;
    assert_eq!(env.fake.running(&id), 0, "the engine was stopped");
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_never_run_one_session_at_once_and_a_dead_runners_sessions_move_after_the_lease()
 {
    let env = TestEnv::new();
    let ids = [
        env.session("a", Pacing::default()).await,
        env.session("b", Pacing::default()).await,
        env.session("c", Pacing::default()).await,
    ];
    // Leases long enough that a busy test machine does not make r1 miss a renewal.
    let config = |id: &str| RunnerConfig {
        lease_duration: Duration::from_millis(1500),
        ..env.config(id)
    };
    let first = env.start(config("r1"));
    for id in &ids {
        eventually(WAIT, "connected on r1", || async {
            let s = env.get(id).await;
            s.status == SessionStatus::Connected && s.lease.owner.as_deref() == Some("r1")
        })
        .await;
    }
    let second = env.start(config("r2"));
    // r2 finds nothing to claim while r1 renews.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for id in &ids {
        assert_eq!(env.get(id).await.lease.owner.as_deref(), Some("r1"));
    }

    for id in &ids {
        let key = openwa_runner::snapshot::snapshot_key(id);
        eventually(WAIT, "snapshot taken", || async {
            env.backend.blobs.get(&key).await.is_ok()
        })
        .await;
    }
    first.kill().await;
    for id in &ids {
        eventually(WAIT, "taken over by r2", || env.connected_on(id, "r2")).await;
    }
    for id in &ids {
        let runs = env.fake.runs(id);
        assert!(runs.len() >= 2, "{id}: {runs:?}");
        assert_eq!(env.fake.running(id), 1);
        assert_no_overlap(&runs);
        // r2 continued from r1's snapshot: no new QR scan.
        let last = env
            .fake
            .runs(id)
            .into_iter()
            .max_by_key(|r| r.started)
            .unwrap();
        assert!(last.restored, "{id} was restored from its snapshot");
    }
    second.stop().await;
    for id in &ids {
        assert_eq!(env.fake.running(id), 0);
        assert!(env.get(id).await.lease.owner.is_none(), "released on drain");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_another_runner_claims_with_a_higher_epoch_the_old_runners_writes_are_refused_and_it_stops()
 {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let env = TestEnv::with_clock(clock.clone());
    let id = env.session("s1", Pacing::default()).await;
    let mut config = env.config("old");
    config.lease_duration = Duration::from_secs(30);
    let runner = env.start(config);
    eventually(WAIT, "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;
    let old_epoch = env.get(&id).await.lease.epoch;

    // The stored lease runs out (store time), and another runner claims and writes.
    clock.advance(chrono::Duration::seconds(31));
    let now = clock.now();
    let claimed = env
        .backend
        .sessions
        .claim(&id, "intruder", now, now + chrono::Duration::seconds(30))
        .await
        .unwrap();
    assert!(claimed.lease.epoch > old_epoch);
    let mark = RuntimeUpdate {
        status: Some(SessionStatus::Starting),
        last_error: Some(Some("intruder".into())),
        ..Default::default()
    };
    env.backend
        .sessions
        .update_runtime(&id, claimed.lease.epoch, &mark)
        .await
        .unwrap();

    // The old runner's next status write (from an engine event) carries the stale epoch.
    assert!(
        env.fake
            .emit(
                &id,
                EngineEvent::Disconnected {
                    reason: "network".into()
                }
            )
            .await
    );
    eventually(WAIT, "the old runner stopped its engine", || async {
        env.fake.running(&id) == 0
    })
    .await;
    let s = env.get(&id).await;
    assert_eq!(
        s.status,
        SessionStatus::Starting,
        "the stale write did not land"
    );
    assert_eq!(s.last_error.as_deref(), Some("intruder"));
    assert_eq!(s.lease.owner.as_deref(), Some("intruder"));
    assert_eq!(s.lease.epoch, claimed.lease.epoch);
    runner.stop().await;
    assert_eq!(
        env.get(&id).await.lease.owner.as_deref(),
        Some("intruder"),
        "a fenced runner releases nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_dies_is_restarted_with_backoff_and_the_restart_is_reported() {
    let env = TestEnv::new();
    let id = env.session("s1", Pacing::default()).await;
    let runner = env.start(env.config("r1"));
    eventually(WAIT, "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;
    env.drain_events().await;

    env.fake
        .crash(
            &id,
            EngineEvent::Disconnected {
                reason: "browser crashed".into(),
            },
        )
        .await;
    eventually(WAIT, "a second run, connected", || async {
        env.fake.runs(&id).len() == 2 && env.get(&id).await.status == SessionStatus::Connected
    })
    .await;
    assert_no_overlap(&env.fake.runs(&id));
    let events = env.drain_events().await;
    let restart = events
        .iter()
        .find(|e| e.kind == EventType::SessionStatus && e.data.get("restart_attempt").is_some())
        .expect("the restart is reported");
    assert_eq!(restart.data["status"], "disconnected");
    assert!(
        restart.data["error"]
            .as_str()
            .unwrap()
            .contains("browser crashed")
    );
    runner.stop().await;
}
