//! `bootstrap` against the test endpoint: creates every resource, and a second run changes
//! nothing.

use openwa_aws::resources::{self, table};

#[tokio::test]
async fn bootstrap_creates_everything_once_and_is_idempotent() {
    let ctx = openwa_aws::testing::context(
        openwa_aws::testing::unique_settings("boot"),
        std::sync::Arc::new(openwa_core::clock::SystemClock),
    )
    .await;
    let first = openwa_aws::bootstrap(&ctx).await.unwrap();
    let expected = 1 + resources::static_queues().len() + 1;
    assert_eq!(first.created.len(), expected, "{first:?}");
    assert!(first.existing.is_empty(), "{first:?}");

    let calls = ctx.calls.snapshot();
    assert_eq!(
        calls.get("DynamoDB.CreateTable"),
        Some(&1),
        "the call counter names each operation: {calls:?}"
    );

    let second = openwa_aws::bootstrap(&ctx).await.unwrap();
    assert!(second.created.is_empty(), "{second:?}");
    assert_eq!(second.existing.len(), expected);

    let described = ctx
        .dynamo
        .describe_table()
        .table_name(&ctx.settings.table)
        .send()
        .await
        .unwrap();
    let t = described.table().unwrap();
    let mut gsis: Vec<_> = t
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name())
        .collect();
    gsis.sort();
    assert_eq!(gsis, [table::GSI1.name, table::GSI2.name]);
    let ttl = ctx
        .dynamo
        .describe_time_to_live()
        .table_name(&ctx.settings.table)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some(table::TTL)
    );

    let events =
        openwa_aws::bootstrap::queue_url(&ctx, &format!("{}-events", ctx.settings.queue_prefix))
            .await
            .unwrap()
            .expect("events queue exists");
    let attrs = ctx
        .sqs
        .get_queue_attributes()
        .queue_url(events)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let policy = attrs
        .attributes()
        .unwrap()
        .get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .expect("redrive policy set")
        .clone();
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert!(
        policy["deadLetterTargetArn"]
            .as_str()
            .unwrap()
            .ends_with("-events-dlq")
    );
}
