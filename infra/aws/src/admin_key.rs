//! The deployment's first admin key, kept in Secrets Manager (`<secret_prefix>/admin-key`)
//! instead of a file: the api Lambda ensures it on cold start and `openwa bootstrap` does the
//! same, so a fresh `terraform apply` needs no manual key step.
//!
//! Exactly one key is made even when several cold starts race: the key record is created under
//! a fixed, well-known id first ([`BOOTSTRAP_ADMIN_KEY_ID`]); the store's `Conflict` on a
//! duplicate id elects one creator, and the others wait for the secret it then writes. An
//! operator who replaces the secret's value by hand gets the new value registered on the next
//! cold start.

use std::time::Duration;

use openwa_core::apikey::{ApiKey, ApiKeySecret, Role};
use openwa_core::error::{Error, Result};
use openwa_core::id::ApiKeyId;
use openwa_core::ports::Backend;
use secrecy::{ExposeSecret, SecretString};

use crate::resources::secrets::ADMIN_KEY;

/// Id of the admin key bootstrap creates (the all-zero ULID: recognisable, never generated).
pub const BOOTSTRAP_ADMIN_KEY_ID: &str = "key_00000000000000000000000000";

/// What [`ensure_admin_key`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminKeyState {
    /// Generated now and stored in the secret.
    Created,
    /// The secret held a key the store did not know; it is registered now.
    Registered,
    /// The secret's key was already registered (or another process just made it).
    Existing,
}

/// Makes sure the admin secret holds a key the store accepts. Never returns or logs the key.
pub async fn ensure_admin_key(backend: &Backend) -> Result<AdminKeyState> {
    ensure_admin_key_waiting(backend, Duration::from_secs(15)).await
}

/// As [`ensure_admin_key`], waiting up to `wait` for a concurrent creator's secret.
pub async fn ensure_admin_key_waiting(backend: &Backend, wait: Duration) -> Result<AdminKeyState> {
    if let Some(value) = backend.secrets.get(ADMIN_KEY).await? {
        return register_existing(backend, &value).await;
    }
    let secret = ApiKeySecret::generate();
    let now = backend.clock.now();
    let key = ApiKey {
        id: ApiKeyId::parse(BOOTSTRAP_ADMIN_KEY_ID).expect("the fixed id is a valid key id"),
        name: "admin (bootstrap)".into(),
        prefix: secret.display_prefix(),
        secret_hash: secret.hash(),
        role: Role::Admin,
        allowed_sessions: None,
        allowed_cidrs: Vec::new(),
        rate_limit_per_minute: None,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        created_at: now,
    };
    match backend.keys.create(&key).await {
        Ok(()) => {
            backend
                .secrets
                .put(ADMIN_KEY, SecretString::from(secret.expose().to_owned()))
                .await?;
            Ok(AdminKeyState::Created)
        }
        Err(Error::Conflict { .. }) => {
            // Another process won the election; its secret follows its key record.
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                if let Some(value) = backend.secrets.get(ADMIN_KEY).await? {
                    register_existing(backend, &value).await?;
                    return Ok(AdminKeyState::Existing);
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(Error::unavailable(format!(
                        "the admin key record {BOOTSTRAP_ADMIN_KEY_ID} exists but the secret \
                         {ADMIN_KEY} was never written (a bootstrap died midway?): put an \
                         `openwa keys generate` value into the secret and restart"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Err(e) => Err(e),
    }
}

async fn register_existing(backend: &Backend, value: &SecretString) -> Result<AdminKeyState> {
    let secret = ApiKeySecret::parse(value.expose_secret().trim()).map_err(|_| {
        Error::unexpected(format!(
            "the secret {ADMIN_KEY} does not hold an openwa key (make one with `openwa keys generate`)"
        ))
    })?;
    match backend.keys.find_by_hash(&secret.hash()).await? {
        Some(key) if key.revoked_at.is_some() => {
            return Err(Error::unexpected(format!(
                "the key in the secret {ADMIN_KEY} ({}) has been revoked: put a fresh \
                 `openwa keys generate` value into the secret",
                key.id
            )));
        }
        Some(_) => return Ok(AdminKeyState::Existing),
        None => {}
    }
    let key = ApiKey {
        id: ApiKeyId::generate(),
        name: "admin (from the admin-key secret)".into(),
        prefix: secret.display_prefix(),
        secret_hash: secret.hash(),
        role: Role::Admin,
        allowed_sessions: None,
        allowed_cidrs: Vec::new(),
        rate_limit_per_minute: None,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        created_at: backend.clock.now(),
    };
    match backend.keys.create(&key).await {
        // A concurrent cold start registered the same value.
        Ok(()) | Err(Error::Conflict { .. }) => Ok(AdminKeyState::Registered),
        Err(e) => Err(e),
    }
}
