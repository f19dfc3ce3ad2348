//! Test support (feature `testing`): a fresh, uniquely named stack on the AWS-compatible
//! endpoint the test command started (`scripts/moto.sh`), so tests never share resources.

use std::sync::Arc;

use aws_config::BehaviorVersion;
use openwa_core::clock::{Clock, SystemClock};

use crate::context::AwsContext;
use crate::settings::AwsSettings;

/// The endpoint the tests use. Panics with instructions when none is configured: an AWS test
/// that silently passed without an endpoint would prove nothing.
pub fn endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AWS adapter tests need an AWS-compatible endpoint: run them through scripts/test.sh, \
             or start one with `eval \"$(scripts/moto.sh start)\"`"
        ),
    }
}

/// Settings with names unique to this call (`<tag>` + a random suffix).
pub fn unique_settings(tag: &str) -> AwsSettings {
    let suffix = ulid::Ulid::new().to_string().to_ascii_lowercase();
    let id = format!("{tag}{}", &suffix[16..]);
    AwsSettings {
        table: format!("t-{id}"),
        bucket: format!("b-{id}"),
        queue_prefix: id.chars().take(crate::settings::MAX_QUEUE_PREFIX).collect(),
        secret_prefix: format!("s-{id}"),
        max_receives: 3,
        ..AwsSettings::default()
    }
}

/// Clients for the test endpoint (static test credentials, `us-east-1`).
pub async fn context(settings: AwsSettings, clock: Arc<dyn Clock>) -> AwsContext {
    context_at(&endpoint(), settings, clock).await
}

/// Clients for the endpoint at `url` (static test credentials, `us-east-1`).
pub async fn context_at(url: &str, settings: AwsSettings, clock: Arc<dyn Clock>) -> AwsContext {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "openwa-tests",
        ))
        .load()
        .await;
    AwsContext::from_sdk_config(&sdk, settings, clock)
}

/// A fresh bootstrapped stack: unique names, tables/queues/bucket created, system clock.
pub async fn fresh_stack(tag: &str) -> AwsContext {
    let ctx = context(unique_settings(tag), Arc::new(SystemClock)).await;
    crate::bootstrap(&ctx)
        .await
        .expect("bootstrap on the test endpoint");
    ctx
}
