//! API key lifecycle (create with the secret shown once, list, get, revoke) and authentication.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use crate::apikey::{ApiKey, ApiKeySecret, Role, hashes_equal};
use crate::auth::Principal;
use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::id::{ApiKeyId, SessionId};
use crate::page::{Page, PageRequest};
use crate::ports::ApiKeyStore;
use crate::services::AuditLog;

/// What a new key should be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    pub allowed_sessions: Option<BTreeSet<SessionId>>,
    pub allowed_cidrs: Vec<ipnet::IpNet>,
    pub rate_limit_per_minute: Option<u32>,
    pub expires_at: Option<Timestamp>,
}

/// `last_used_at` is written at most this often per key, so authentication stays a read.
const TOUCH_INTERVAL_SECS: i64 = 60;

#[derive(Clone)]
pub struct ApiKeyService {
    store: Arc<dyn ApiKeyStore>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
}

impl ApiKeyService {
    pub fn new(store: Arc<dyn ApiKeyStore>, audit: AuditLog, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            audit,
            clock,
        }
    }

    /// Creates a key. `who` is `None` only for the bootstrap admin key the server makes itself.
    /// The returned secret is the only copy.
    #[tracing::instrument(skip_all, fields(name = %new.name, role = new.role.as_str()))]
    pub async fn create(
        &self,
        who: Option<&Principal>,
        new: NewApiKey,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        if let Some(p) = who {
            p.require(Role::Admin)?;
        }
        self.create_with_secret(who, new, ApiKeySecret::generate())
            .await
    }

    /// Creates a key with a given secret (the operator-supplied `OPENWA_ADMIN_KEY`).
    pub async fn create_with_secret(
        &self,
        who: Option<&Principal>,
        new: NewApiKey,
        secret: ApiKeySecret,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        let now = self.clock.now();
        let name = new.name.trim();
        if name.is_empty()
            || name.chars().count() > ApiKey::MAX_NAME_LEN
            || name.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "name",
                "must be 1 to 128 printable characters",
            ));
        }
        if new.expires_at.is_some_and(|t| t <= now) {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        if new
            .rate_limit_per_minute
            .is_some_and(|r| r == 0 || r > 1_000_000)
        {
            return Err(Error::invalid(
                "rate_limit_per_minute",
                "must be between 1 and 1000000",
            ));
        }
        if new.allowed_cidrs.len() > 64 {
            return Err(Error::invalid("allowed_cidrs", "at most 64 networks"));
        }
        if new
            .allowed_sessions
            .as_ref()
            .is_some_and(|s| s.len() > 1000)
        {
            return Err(Error::invalid("allowed_sessions", "at most 1000 sessions"));
        }
        let key = ApiKey {
            id: ApiKeyId::generate(),
            name: name.to_owned(),
            prefix: secret.display_prefix(),
            secret_hash: secret.hash(),
            role: new.role,
            allowed_sessions: new.allowed_sessions,
            allowed_cidrs: new.allowed_cidrs,
            rate_limit_per_minute: new.rate_limit_per_minute,
            expires_at: new.expires_at,
            revoked_at: None,
            last_used_at: None,
            created_at: now,
        };
        self.store.create(&key).await?;
        self.audit
            .record(
                who,
                "api_key.create",
                format!("api_key:{}", key.id),
                None,
                "ok",
            )
            .await;
        Ok((key, secret))
    }

    pub async fn list(&self, who: &Principal, page: &PageRequest) -> Result<Page<ApiKey>> {
        who.require(Role::Admin)?;
        self.store.list(page).await
    }

    pub async fn get(&self, who: &Principal, id: &ApiKeyId) -> Result<ApiKey> {
        who.require(Role::Admin)?;
        self.store.get(id).await
    }

    #[tracing::instrument(skip_all, fields(key_id = %id))]
    pub async fn revoke(&self, who: Option<&Principal>, id: &ApiKeyId) -> Result<ApiKey> {
        if let Some(p) = who {
            p.require(Role::Admin)?;
        }
        let key = self.store.revoke(id, self.clock.now()).await?;
        self.audit
            .record(who, "api_key.revoke", format!("api_key:{id}"), None, "ok")
            .await;
        Ok(key)
    }

    /// Turns a presented secret into a principal. Unknown, malformed, revoked and expired keys
    /// are all `Unauthenticated` (the caller cannot tell which); a source address outside the
    /// key's networks is `Forbidden`.
    pub async fn authenticate(
        &self,
        presented: &str,
        source_ip: Option<IpAddr>,
    ) -> Result<Principal> {
        let secret = ApiKeySecret::parse(presented)?;
        let hash = secret.hash();
        let key = self
            .store
            .find_by_hash(&hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        if !hashes_equal(&key.secret_hash, &hash) || !key.is_usable(now) {
            return Err(Error::Unauthenticated);
        }
        if !key.allowed_cidrs.is_empty() && !source_ip.is_some_and(|ip| key.allows_ip(ip)) {
            return Err(Error::forbidden(
                "requests from this address are not allowed for this key",
            ));
        }
        let stale = key
            .last_used_at
            .is_none_or(|t| (now - t).num_seconds() >= TOUCH_INTERVAL_SECS);
        if stale && let Err(error) = self.store.touch(&key.id, now).await {
            tracing::warn!(%error, key_id = %key.id, "could not record key use");
        }
        Ok(Principal::from_key(&key, source_ip))
    }
}
