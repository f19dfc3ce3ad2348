//! The bootstrap admin key: one key however many cold starts race, registered from the secret,
//! and a hand-replaced secret value is adopted. Runs on the embedded backend: the logic is
//! port-only, and the ports' contracts are the conformance suite's business.

use std::sync::Arc;

use openwa_aws::admin_key::{AdminKeyState, ensure_admin_key};
use openwa_aws::resources::secrets::ADMIN_KEY;
use openwa_core::apikey::ApiKeySecret;
use openwa_core::clock::SystemClock;
use openwa_core::page::PageRequest;
use secrecy::{ExposeSecret, SecretString};

fn backend(dir: &tempfile::TempDir) -> openwa_core::ports::Backend {
    openwa_infra::embedded::open(dir.path(), Arc::new(SystemClock)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_cold_starts_make_exactly_one_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(&dir);
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let b = backend.clone();
            tokio::spawn(async move { ensure_admin_key(&b).await.unwrap() })
        })
        .collect();
    let mut states = Vec::new();
    for r in runs {
        states.push(r.await.unwrap());
    }
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == AdminKeyState::Created)
            .count(),
        1,
        "{states:?}"
    );
    let value = backend.secrets.get(ADMIN_KEY).await.unwrap().unwrap();
    let secret = ApiKeySecret::parse(value.expose_secret()).unwrap();
    let key = backend
        .keys
        .find_by_hash(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        key.id.as_str(),
        openwa_aws::admin_key::BOOTSTRAP_ADMIN_KEY_ID
    );
    let all = backend.keys.list(&PageRequest::default()).await.unwrap();
    assert_eq!(all.items.len(), 1);

    assert_eq!(
        ensure_admin_key(&backend).await.unwrap(),
        AdminKeyState::Existing
    );
}

#[tokio::test]
async fn a_hand_written_secret_is_registered_once_and_garbage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(&dir);
    let mine = ApiKeySecret::generate();
    backend
        .secrets
        .put(ADMIN_KEY, SecretString::from(mine.expose().to_owned()))
        .await
        .unwrap();
    assert_eq!(
        ensure_admin_key(&backend).await.unwrap(),
        AdminKeyState::Registered
    );
    assert_eq!(
        ensure_admin_key(&backend).await.unwrap(),
        AdminKeyState::Existing
    );
    assert!(
        backend
            .keys
            .find_by_hash(&mine.hash())
            .await
            .unwrap()
            .is_some()
    );

    backend
        .secrets
        .put(ADMIN_KEY, SecretString::from("not-a-key".to_owned()))
        .await
        .unwrap();
    let err = ensure_admin_key(&backend).await.unwrap_err().to_string();
    assert!(err.contains(ADMIN_KEY), "{err}");
    assert!(
        !err.contains("not-a-key"),
        "the error must not echo the secret: {err}"
    );
}

#[tokio::test]
async fn a_revoked_key_in_the_secret_is_an_error_not_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(&dir);
    assert_eq!(
        ensure_admin_key(&backend).await.unwrap(),
        AdminKeyState::Created
    );
    let id =
        openwa_core::id::ApiKeyId::parse(openwa_aws::admin_key::BOOTSTRAP_ADMIN_KEY_ID).unwrap();
    backend.keys.revoke(&id, backend.clock.now()).await.unwrap();
    let err = ensure_admin_key(&backend).await.unwrap_err().to_string();
    assert!(err.contains("revoked"), "{err}");
}
