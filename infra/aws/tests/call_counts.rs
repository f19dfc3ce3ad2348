//! AWS calls per operation on the hot paths, counted by the SDK interceptor
//! (`AwsContext::calls`): what the cost figures in the docs rest on.

use openwa_aws::testing::fresh_stack;
use openwa_core::clock::{Clock, SystemClock};

fn update_items(ctx: &openwa_aws::AwsContext) -> u64 {
    ctx.calls
        .snapshot()
        .get("DynamoDB.UpdateItem")
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_rate_limit_check_costs_one_call_whether_the_key_is_idle_or_busy() {
    let ctx = fresh_stack("calls").await;
    let backend = openwa_aws::open(&ctx);
    let clock = SystemClock;

    // A generous budget: the key is idle at every request (the common case).
    backend
        .rate_limiter
        .check("idle", 1_000_000, clock.now())
        .await
        .unwrap();
    let before = update_items(&ctx);
    for _ in 0..10 {
        let d = backend
            .rate_limiter
            .check("idle", 1_000_000, clock.now())
            .await
            .unwrap();
        assert!(d.allowed);
    }
    assert_eq!(update_items(&ctx) - before, 10, "one UpdateItem per check");

    // A tight budget: the key is busy from the second request on.
    backend
        .rate_limiter
        .check("busy", 10, clock.now())
        .await
        .unwrap();
    let before = update_items(&ctx);
    for _ in 0..5 {
        let d = backend
            .rate_limiter
            .check("busy", 10, clock.now())
            .await
            .unwrap();
        assert!(d.allowed);
    }
    assert_eq!(update_items(&ctx) - before, 5, "one UpdateItem per check");
}
