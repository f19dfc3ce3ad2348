//! Creates every table, queue and bucket of [`crate::resources`] on an AWS-compatible
//! endpoint, idempotently: what `openwa bootstrap`, the LocalStack init hook and the tests run.
//!
//! It makes resources that work; production settings the SDK cannot express idempotently
//! (point-in-time recovery, KMS keys, lifecycle rules, alarms) are Terraform's.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, SseSpecification, StreamSpecification, StreamViewType,
    TableStatus, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use openwa_core::error::{Error, Result};

use crate::context::AwsContext;
use crate::error::{error_code, sdk_error};
use crate::resources::{self, table};

/// What bootstrap found or made, one line per resource (for the CLI to print).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootstrapReport {
    pub created: Vec<String>,
    pub existing: Vec<String>,
}

/// Creates the table, the static queues and the bucket where missing.
pub async fn bootstrap(ctx: &AwsContext) -> Result<BootstrapReport> {
    let mut report = BootstrapReport::default();
    ensure_table(ctx, &mut report).await?;
    for q in resources::static_queues() {
        let name = format!("{}-{}", ctx.settings.queue_prefix, q.suffix);
        let dlq = q
            .dead_letter
            .map(|d| format!("{}-{d}", ctx.settings.queue_prefix));
        let spec = QueueSpec {
            name: &name,
            fifo: q.fifo,
            visibility_secs: q.visibility_secs,
            retention_secs: q.retention_secs,
            dead_letter: dlq.as_deref(),
        };
        let (_, created) = ensure_queue(ctx, &spec).await?;
        record(&mut report, created, format!("sqs queue {name}"));
    }
    ensure_bucket(ctx, &mut report).await?;
    Ok(report)
}

fn record(report: &mut BootstrapReport, created: bool, what: String) {
    if created {
        report.created.push(what);
    } else {
        report.existing.push(what);
    }
}

async fn ensure_table(ctx: &AwsContext, report: &mut BootstrapReport) -> Result<()> {
    let name = &ctx.settings.table;
    let key = |attr: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(attr)
            .key_type(kind)
            .build()
            .expect("key schema has all fields")
    };
    let attr = |attr: &str| {
        AttributeDefinition::builder()
            .attribute_name(attr)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute definition has all fields")
    };
    let mut create = ctx
        .dynamo
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .stream_specification(stream_spec())
        .key_schema(key(table::PK, KeyType::Hash))
        .key_schema(key(table::SK, KeyType::Range))
        .attribute_definitions(attr(table::PK))
        .attribute_definitions(attr(table::SK));
    for gsi in table::GSIS {
        create = create
            .attribute_definitions(attr(gsi.pk))
            .attribute_definitions(attr(gsi.sk))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(gsi.name)
                    .key_schema(key(gsi.pk, KeyType::Hash))
                    .key_schema(key(gsi.sk, KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .expect("gsi has all fields"),
            );
    }
    let created = match create.send().await {
        Ok(_) => true,
        Err(e) if error_code(&e) == Some("ResourceInUseException") => false,
        Err(e) => return Err(sdk_error("CreateTable", e)),
    };
    wait_for_table(ctx).await?;
    if !created {
        ensure_stream(ctx).await?;
    }
    let ttl = ctx
        .dynamo
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeTimeToLive", e))?;
    let enabled = ttl
        .time_to_live_description()
        .and_then(|d| d.attribute_name())
        == Some(table::TTL);
    if !enabled {
        ctx.dynamo
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(table::TTL)
                    .enabled(true)
                    .build()
                    .expect("ttl spec has all fields"),
            )
            .send()
            .await
            .map_err(|e| sdk_error("UpdateTimeToLive", e))?;
    }
    record(report, created, format!("dynamodb table {name}"));
    Ok(())
}

/// New images on the table's stream (the outbox relay's source).
fn stream_spec() -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::from(table::STREAM_VIEW))
        .build()
        .expect("stream spec has all fields")
}

/// Turns the stream on for a table created before the outbox existed.
async fn ensure_stream(ctx: &AwsContext) -> Result<()> {
    let name = &ctx.settings.table;
    let described = ctx
        .dynamo
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeTable", e))?;
    let enabled = described
        .table()
        .and_then(|t| t.stream_specification())
        .is_some_and(|s| s.stream_enabled());
    if enabled {
        return Ok(());
    }
    ctx.dynamo
        .update_table()
        .table_name(name)
        .stream_specification(stream_spec())
        .send()
        .await
        .map_err(|e| sdk_error("UpdateTable", e))?;
    wait_for_table(ctx).await
}

async fn wait_for_table(ctx: &AwsContext) -> Result<()> {
    for _ in 0..120 {
        let out = ctx
            .dynamo
            .describe_table()
            .table_name(&ctx.settings.table)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTable", e))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(Error::unavailable(format!(
        "table {} did not become active within 60 s",
        ctx.settings.table
    )))
}

/// One queue's attributes.
#[derive(Debug, Clone)]
pub struct QueueSpec<'a> {
    pub name: &'a str,
    pub fifo: bool,
    pub visibility_secs: u32,
    pub retention_secs: u32,
    /// Name of the queue to redrive into after `max_receives` receives.
    pub dead_letter: Option<&'a str>,
}

/// Creates the queue if missing and returns its URL and whether it was created. Attributes of
/// an existing queue are brought to the spec.
pub async fn ensure_queue(ctx: &AwsContext, spec: &QueueSpec<'_>) -> Result<(String, bool)> {
    let mut attrs: HashMap<QueueAttributeName, String> = HashMap::new();
    attrs.insert(
        QueueAttributeName::VisibilityTimeout,
        spec.visibility_secs.to_string(),
    );
    attrs.insert(
        QueueAttributeName::MessageRetentionPeriod,
        spec.retention_secs.to_string(),
    );
    attrs.insert(QueueAttributeName::SqsManagedSseEnabled, "true".into());
    if spec.fifo {
        attrs.insert(QueueAttributeName::FifoQueue, "true".into());
        attrs.insert(
            QueueAttributeName::ContentBasedDeduplication,
            "false".into(),
        );
    }
    if let Some(dlq) = spec.dead_letter {
        let dlq_url = queue_url(ctx, dlq).await?.ok_or_else(|| {
            Error::unexpected(format!(
                "dead-letter queue {dlq} of {} is missing",
                spec.name
            ))
        })?;
        let arn = queue_arn(ctx, &dlq_url).await?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": ctx.settings.max_receives,
        });
        attrs.insert(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    if let Some(url) = queue_url(ctx, spec.name).await? {
        // FifoQueue cannot be changed after creation; everything else can.
        attrs.remove(&QueueAttributeName::FifoQueue);
        attrs.remove(&QueueAttributeName::ContentBasedDeduplication);
        ctx.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .set_attributes(Some(attrs))
            .send()
            .await
            .map_err(|e| sdk_error("SetQueueAttributes", e))?;
        return Ok((url, false));
    }
    let out = ctx
        .sqs
        .create_queue()
        .queue_name(spec.name)
        .set_attributes(Some(attrs))
        .send()
        .await
        .map_err(|e| sdk_error("CreateQueue", e))?;
    let url = out
        .queue_url()
        .ok_or_else(|| Error::unexpected("CreateQueue returned no URL"))?;
    Ok((url.to_string(), true))
}

/// The URL of queue `name`, or `None` if it does not exist.
pub async fn queue_url(ctx: &AwsContext, name: &str) -> Result<Option<String>> {
    match ctx.sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url().map(str::to_owned)),
        Err(e) if is_missing_queue(error_code(&e)) => Ok(None),
        Err(e) => Err(sdk_error("GetQueueUrl", e)),
    }
}

/// Whether an SQS error code says the queue does not exist (the JSON and query protocols
/// spell it differently).
pub fn is_missing_queue(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" | "NonExistentQueue")
    )
}

async fn queue_arn(ctx: &AwsContext, url: &str) -> Result<String> {
    let out = ctx
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_error("GetQueueAttributes", e))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| Error::unexpected("GetQueueAttributes returned no QueueArn"))
}

async fn ensure_bucket(ctx: &AwsContext, report: &mut BootstrapReport) -> Result<()> {
    use aws_sdk_s3::types::{
        BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration,
        ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule,
    };
    let bucket = &ctx.settings.bucket;
    // Asked first: in us-east-1, CreateBucket on a bucket you own answers 200, not an error.
    let exists = match ctx.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => true,
        Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => false,
        Err(e) => return Err(sdk_error("HeadBucket", e)),
    };
    let mut create = ctx.s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region that refuses an explicit location constraint.
    let region = ctx.s3.config().region().map(|r| r.to_string());
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    let created = if exists {
        false
    } else {
        match create.send().await {
            Ok(_) => true,
            // Created by a concurrent bootstrap.
            Err(e) if error_code(&e) == Some("BucketAlreadyOwnedByYou") => false,
            Err(e) => return Err(sdk_error("CreateBucket", e)),
        }
    };
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::Aes256)
                .build()
                .expect("sse default has all fields"),
        )
        .build();
    ctx.s3
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()
                .expect("sse config has all fields"),
        )
        .send()
        .await
        .map_err(|e| sdk_error("PutBucketEncryption", e))?;
    ctx.s3
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_error("PutPublicAccessBlock", e))?;
    record(report, created, format!("s3 bucket {bucket}"));
    Ok(())
}
