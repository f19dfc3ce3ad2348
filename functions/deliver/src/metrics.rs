//! The deliver worker's own CloudWatch metric: `DeliveryFailures` (namespace `openwa`, no
//! dimensions), one CloudWatch Embedded Metric Format line on stdout per failed attempt.
//! Lambda turns EMF lines in its log into metrics with no SDK call and no IAM grant; the
//! Terraform alarm `<name>-delivery-failures` sums them. Printed only when
//! `OPENWA_EMF_METRICS` is `1`/`true` (the deliver function's environment sets it), so local
//! runs keep a clean log.

use std::sync::OnceLock;

/// Whether EMF lines are printed (read once per process).
fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var("OPENWA_EMF_METRICS")
            .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
    })
}

/// The EMF line for `failures` failed attempts at `timestamp_ms`.
pub fn failures_line(failures: u64, timestamp_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "openwa",
                "Dimensions": [[]],
                "Metrics": [{"Name": "DeliveryFailures", "Unit": "Count"}],
            }],
        },
        "DeliveryFailures": failures,
    })
    .to_string()
}

/// Counts one failed attempt (non-2xx, timeout, refused target).
pub fn delivery_failed() {
    if enabled() {
        println!(
            "{}",
            failures_line(1, chrono::Utc::now().timestamp_millis())
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_line_declares_the_metric_it_carries() {
        let line = super::failures_line(1, 1_700_000_000_000);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "openwa");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "DeliveryFailures"
        );
        assert_eq!(v["DeliveryFailures"], 1);
        assert!(!line.contains('\n'));
    }
}
