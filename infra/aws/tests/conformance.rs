//! The port conformance suite (`openwa_infra::conformance`) against the AWS adapters, on the
//! endpoint the test command started: each check gets its own freshly bootstrapped stack. The
//! outbox reaches the events queue through one pass of the polling stream relay.

use std::sync::Arc;

use openwa_aws::outbox::{OutboxRelay, StreamRelay};
use openwa_infra::conformance::{Fixture, OutboxDrain};
use tokio::sync::Mutex;

async fn fresh() -> Fixture {
    let ctx = Arc::new(openwa_aws::testing::fresh_stack("c").await);
    let max_receives = ctx.settings.max_receives;
    let backend = openwa_aws::open(&ctx);
    let relay = OutboxRelay::new(backend.sessions.clone(), backend.queue.clone());
    let stream = Arc::new(Mutex::new(StreamRelay::new(ctx.clone(), relay)));
    let drain: OutboxDrain = Arc::new(move || {
        let stream = stream.clone();
        Box::pin(async move {
            let mut stream = stream.lock().await;
            // Until a pass reads nothing: the stream is drained.
            while stream.pass().await.expect("outbox relay pass") > 0 {}
        })
    });
    Fixture::new(backend, max_receives, ()).with_outbox_drain(drain)
}

openwa_infra::conformance_tests!(fresh);
