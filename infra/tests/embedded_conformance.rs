//! The port conformance suite against the embedded backend: every check gets its own data
//! directory.

use std::sync::Arc;

use openwa_core::clock::SystemClock;
use openwa_infra::conformance::Fixture;
use openwa_infra::embedded::{self, EmbeddedConfig};

async fn fresh() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EmbeddedConfig::default();
    let max_receives = config.max_receives;
    let backend = embedded::open_with(dir.path(), Arc::new(SystemClock), config)
        .expect("embedded backend opens");
    Fixture::new(backend, max_receives, dir)
}

openwa_infra::conformance_tests!(fresh);
