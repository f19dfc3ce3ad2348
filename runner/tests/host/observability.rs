//! `/health`, `/ready` and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use openwa_core::session::{Pacing, SessionStatus};
use openwa_runner::Runner;

use crate::support::{TestEnv, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_are_served_and_reflect_the_hosted_sessions() {
    let env = TestEnv::new();
    let id = env.session("s1", Pacing::default()).await;
    let runner = Runner::new(
        env.config("r1"),
        env.backend.clone(),
        Arc::new(env.fake.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(axum::serve(listener, runner.router()).into_future());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async {
        let _ = stopped.await;
    }));
    eventually(Duration::from_secs(10), "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;

    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).send();
    assert_eq!(get("/health").await.unwrap().status(), 200);
    assert_eq!(get("/ready").await.unwrap().status(), 200);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("openwa_runner_sessions{status=\"connected\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("openwa_runner_engine_processes 0"));

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(
        get("/ready").await.unwrap().status(),
        503,
        "a drained runner is not ready"
    );
    server.abort();
}
