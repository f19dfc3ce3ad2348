//! Blob store, secrets and rate limiter checks.

use std::time::Duration;

use openwa_core::Error;
use secrecy::{ExposeSecret, SecretString};

use super::Fixture;
use super::fixtures::base_time;
use crate::assert_err;

fn unique_key(prefix: &str) -> String {
    format!("{prefix}/{}.bin", ulid::Ulid::new())
}

pub async fn blobs_round_trip_with_their_content_type(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let key = unique_key("media");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();

    let meta = fx
        .backend
        .blobs
        .put(&key, bytes.clone(), "image/jpeg")
        .await
        .unwrap();
    let (got, got_meta) = fx.backend.blobs.get(&key).await.unwrap();

    assert_eq!(got, bytes);
    assert_eq!(
        (meta.size, meta.content_type.as_str()),
        (100_000, "image/jpeg")
    );
    assert_eq!(got_meta, meta);

    fx.backend
        .blobs
        .put(&key, b"v2".to_vec(), "text/plain")
        .await
        .unwrap();
    let (replaced, replaced_meta) = fx.backend.blobs.get(&key).await.unwrap();
    assert_eq!(
        (
            replaced.as_slice(),
            replaced_meta.content_type.as_str(),
            replaced_meta.size
        ),
        (&b"v2"[..], "text/plain", 2)
    );
    // Either the backend offers a URL or it serves bytes itself; both are fine, errors are not.
    fx.backend
        .blobs
        .presigned_get(&key, Duration::from_secs(60))
        .await
        .unwrap();
}

pub async fn missing_blobs_are_not_found_and_delete_is_idempotent(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let key = unique_key("snapshots");
    fx.backend
        .blobs
        .put(&key, b"state".to_vec(), "application/octet-stream")
        .await
        .unwrap();

    fx.backend.blobs.delete(&key).await.unwrap();
    fx.backend.blobs.delete(&key).await.unwrap();

    assert_err!(fx.backend.blobs.get(&key).await, Error::NotFound { .. });
    assert_err!(
        fx.backend.blobs.get(&unique_key("never")).await,
        Error::NotFound { .. }
    );
}

pub async fn blob_keys_that_could_escape_the_root_are_refused(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let blobs = &fx.backend.blobs;

    for bad in ["../etc/passwd", "media/../../x", "/abs", "a//b", "", "a\\b"] {
        assert_err!(
            blobs.put(bad, b"x".to_vec(), "text/plain").await,
            Error::Invalid { .. }
        );
        assert_err!(blobs.get(bad).await, Error::Invalid { .. });
        assert_err!(blobs.delete(bad).await, Error::Invalid { .. });
    }
}

pub async fn secrets_round_trip_and_unknown_names_are_absent(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let name = format!(
        "conformance-{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    );

    assert!(fx.backend.secrets.get(&name).await.unwrap().is_none());
    fx.backend
        .secrets
        .put(&name, SecretString::from("s3cret"))
        .await
        .unwrap();
    fx.backend
        .secrets
        .put(&format!("{name}-other"), SecretString::from("other"))
        .await
        .unwrap();
    assert_eq!(
        fx.backend
            .secrets
            .get(&name)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "s3cret"
    );

    fx.backend
        .secrets
        .put(&name, SecretString::from("rotated"))
        .await
        .unwrap();
    assert_eq!(
        fx.backend
            .secrets
            .get(&name)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "rotated"
    );
    assert_eq!(
        fx.backend
            .secrets
            .get(&format!("{name}-other"))
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "other"
    );
}

pub async fn the_rate_limiter_allows_the_budget_then_advises_a_wait(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let limiter = &fx.backend.rate_limiter;
    let now = base_time();
    let key = format!("key-{}", ulid::Ulid::new());

    for remaining in (0..6).rev() {
        let d = limiter.check(&key, 6, now).await.unwrap();
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (6, remaining));
    }
    let refused = limiter.check(&key, 6, now).await.unwrap();

    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    // Six a minute: one every ten seconds.
    assert!(
        refused.retry_after > Duration::from_secs(9)
            && refused.retry_after <= Duration::from_secs(10) + Duration::from_millis(5)
    );
    let later = now + chrono::Duration::from_std(refused.retry_after).unwrap();
    assert!(limiter.check(&key, 6, later).await.unwrap().allowed);
    assert!(
        limiter
            .check(&format!("{key}-b"), 6, now)
            .await
            .unwrap()
            .allowed,
        "keys have their own budgets"
    );
}
