//! The SDK clients and settings every adapter shares, and a count of the AWS calls they make
//! (per `Service.Operation`), which benches and `/metrics` read.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::BehaviorVersion;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use openwa_core::clock::Clock;

use crate::settings::AwsSettings;

/// One per process: cheap to clone (the SDK clients are `Arc`s inside).
#[derive(Clone)]
pub struct AwsContext {
    pub settings: AwsSettings,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub clock: Arc<dyn Clock>,
    /// Every operation the clients above started (retries not counted twice).
    pub calls: Arc<CallCounter>,
    /// The SDK configuration the clients came from, for clients only some binaries need (the
    /// DynamoDB Streams client of the polling outbox relay: [`Self::streams_client`]).
    pub sdk: aws_config::SdkConfig,
}

impl AwsContext {
    /// Clients configured the SDK's own way: region, credentials and endpoint from the
    /// environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, …), so LocalStack/moto/AWS need no code.
    pub async fn from_env(settings: AwsSettings, clock: Arc<dyn Clock>) -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::from_sdk_config(&sdk, settings, clock)
    }

    /// Clients from an already loaded SDK configuration.
    pub fn from_sdk_config(
        sdk: &aws_config::SdkConfig,
        settings: AwsSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // Emulators answer on one host name; virtual-hosted bucket names would not resolve.
        let path_style =
            sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let calls = Arc::new(CallCounter::default());
        let counting = || Counting(calls.clone());
        let s3_conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .interceptor(counting())
            .build();
        let dynamo_conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(counting())
            .build();
        let sqs_conf = aws_sdk_sqs::config::Builder::from(sdk)
            .interceptor(counting())
            .build();
        let secrets_conf = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .interceptor(counting())
            .build();
        Self {
            settings,
            dynamo: aws_sdk_dynamodb::Client::from_conf(dynamo_conf),
            sqs: aws_sdk_sqs::Client::from_conf(sqs_conf),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            secrets: aws_sdk_secretsmanager::Client::from_conf(secrets_conf),
            clock,
            calls,
            sdk: sdk.clone(),
        }
    }

    /// A DynamoDB Streams client on the same configuration, counted like the others.
    pub fn streams_client(&self) -> aws_sdk_dynamodbstreams::Client {
        let conf = aws_sdk_dynamodbstreams::config::Builder::from(&self.sdk)
            .interceptor(Counting(self.calls.clone()))
            .build();
        aws_sdk_dynamodbstreams::Client::from_conf(conf)
    }
}

/// AWS operations started, by `Service.Operation` (e.g. `DynamoDB.TransactWriteItems`).
#[derive(Debug, Default)]
pub struct CallCounter {
    counts: Mutex<BTreeMap<String, u64>>,
}

/// The calls made between two [`CallCounter::snapshot`]s, by operation (operations with none
/// left out).
pub fn calls_between(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

impl CallCounter {
    /// A copy of the counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// All operations so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    fn add(&self, operation: String) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(operation)
            .or_default() += 1;
    }
}

/// The interceptor behind [`CallCounter`]: runs once per operation, before any attempt (and
/// after the operation's config, which names it, is in the bag; `read_before_execution` runs
/// too early for client-level interceptors).
#[derive(Debug)]
struct Counting(Arc<CallCounter>);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "openwa-call-counter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or_else(
            || "unknown".to_owned(),
            |m| format!("{}.{}", m.service(), m.name()),
        );
        self.0.add(operation);
        Ok(())
    }
}
