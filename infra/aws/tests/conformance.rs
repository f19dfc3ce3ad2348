//! The port conformance suite (`openwa_infra::conformance`) against the AWS adapters, on the
//! endpoint the test command started: each check gets its own freshly bootstrapped stack.

use openwa_infra::conformance::Fixture;

async fn fresh() -> Fixture {
    let ctx = openwa_aws::testing::fresh_stack("c").await;
    let max_receives = ctx.settings.max_receives;
    Fixture::new(openwa_aws::open(&ctx), max_receives, ())
}

openwa_infra::conformance_tests!(fresh);
