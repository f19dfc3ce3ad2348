//! What a runner tells its container platform, for autoscaling on ECS/Fargate:
//!
//! - **Sessions per runner**, every minute, as a CloudWatch Embedded Metric Format line on
//!   stdout (namespace `openwa`, metrics `SessionsHeld`, `SessionCapacity` and
//!   `SessionFailures` — sessions held in status `failed` — dimension `Service`): the awslogs
//!   driver turns it into metrics with no SDK call and no extra IAM. The Terraform
//!   target-tracking policy scales on the `Average` of `SessionsHeld` across tasks; an alarm
//!   watches `SessionFailures`.
//! - **Scale-in protection** while the runner holds sessions, through the ECS agent's task
//!   protection endpoint (`$ECS_AGENT_URI/task-protection/v1/state`), so a scale-in never kills
//!   a runner with live WhatsApp sessions; released when it holds none.
//!
//! Both are off outside ECS unless asked for (`OPENWA_EMF_METRICS=1`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::metrics::Metrics;

/// How the reporter behaves; [`CloudReporting::from_env`] reads it.
#[derive(Debug, Clone)]
pub struct CloudReporting {
    /// Print EMF metric lines.
    pub emf: bool,
    /// The `Service` dimension's value.
    pub service: String,
    /// The ECS agent endpoint, when running as an ECS task.
    pub ecs_agent_uri: Option<String>,
    pub interval: Duration,
    pub capacity: usize,
}

impl CloudReporting {
    /// `OPENWA_EMF_METRICS` (default: on when `ECS_CONTAINER_METADATA_URI_V4` is set),
    /// `OPENWA_METRICS_SERVICE` (default `openwa-runner`), `ECS_AGENT_URI` (set by ECS).
    pub fn from_env(capacity: usize) -> Self {
        let on_ecs = std::env::var_os("ECS_CONTAINER_METADATA_URI_V4").is_some();
        let emf = std::env::var("OPENWA_EMF_METRICS")
            .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
            .unwrap_or(on_ecs);
        Self {
            emf,
            service: std::env::var("OPENWA_METRICS_SERVICE")
                .unwrap_or_else(|_| "openwa-runner".into()),
            ecs_agent_uri: std::env::var("ECS_AGENT_URI")
                .ok()
                .filter(|v| !v.is_empty()),
            interval: Duration::from_secs(60),
            capacity,
        }
    }

    /// Whether there is anything to report.
    pub fn enabled(&self) -> bool {
        self.emf || self.ecs_agent_uri.is_some()
    }
}

/// One EMF line for `held` sessions (`failed` of them in status `failed`) at `timestamp_ms`.
pub fn emf_line(
    service: &str,
    held: usize,
    failed: usize,
    capacity: usize,
    timestamp_ms: i64,
) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "openwa",
                "Dimensions": [["Service"]],
                "Metrics": [
                    {"Name": "SessionsHeld", "Unit": "Count"},
                    {"Name": "SessionCapacity", "Unit": "Count"},
                    {"Name": "SessionFailures", "Unit": "Count"},
                ],
            }],
        },
        "Service": service,
        "SessionsHeld": held,
        "SessionCapacity": capacity,
        "SessionFailures": failed,
    })
    .to_string()
}

/// The task-protection request body: protected while sessions are held. Protection expires on
/// its own (ECS caps it at 48 h); it is renewed every report while still needed.
pub fn protection_body(held: usize) -> serde_json::Value {
    if held > 0 {
        json!({"ProtectionEnabled": true, "ExpiresInMinutes": 60})
    } else {
        json!({"ProtectionEnabled": false})
    }
}

/// Reports until `stop` resolves.
pub async fn report(
    config: CloudReporting,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok();
    let mut tick = tokio::time::interval(config.interval);
    let mut protected: Option<bool> = None;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {}
        }
        let by_status = metrics.sessions_by_status();
        let held: usize = by_status.values().sum();
        let failed = by_status
            .get(&openwa_core::session::SessionStatus::Failed)
            .copied()
            .unwrap_or(0);
        if config.emf {
            let now = chrono::Utc::now().timestamp_millis();
            println!(
                "{}",
                emf_line(&config.service, held, failed, config.capacity, now)
            );
        }
        if let (Some(uri), Some(http)) = (&config.ecs_agent_uri, &http) {
            let want = held > 0;
            // Renew while held (the protection expires), change once when released.
            if want || protected != Some(false) {
                let url = format!("{uri}/task-protection/v1/state");
                match http.put(&url).json(&protection_body(held)).send().await {
                    Ok(res) if res.status().is_success() => protected = Some(want),
                    Ok(res) => {
                        tracing::warn!(status = %res.status(), "ECS task protection refused")
                    }
                    Err(error) => tracing::warn!(%error, "ECS task protection unreachable"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emf_line_declares_the_metrics_it_carries() {
        let line = emf_line("svc", 3, 1, 20, 1_700_000_000_000);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let declared = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "openwa");
        for m in declared["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v[name].is_number(), "{name} has a value");
        }
        assert_eq!(v["SessionsHeld"], 3);
        assert_eq!(v["SessionFailures"], 1);
        assert_eq!(v["Service"], "svc");
        assert!(!line.contains('\n'), "one log event per line");
    }

    #[test]
    fn protection_follows_held_sessions() {
        assert_eq!(protection_body(2)["ProtectionEnabled"], true);
        assert_eq!(protection_body(0)["ProtectionEnabled"], false);
    }
}
