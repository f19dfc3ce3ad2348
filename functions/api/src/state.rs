//! What every handler can reach: the backend's ports, the services built on them, and the
//! API's own settings.

use std::sync::Arc;

use openwa_core::ports::Backend;
use openwa_core::services::{
    ApiKeyService, AuditLog, MessageService, SessionService, WebhookService,
};
use openwa_ssrf::{AllowList, SsrfGuard};

/// Settings of the HTTP layer (the services have their own rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Requests per minute for keys that do not set their own limit.
    pub default_rate_limit_per_minute: u32,
    /// Largest accepted request body. Inline base64 media of 16 MiB needs about 22 MiB.
    pub body_limit_bytes: usize,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Take the caller from the API Gateway Lambda authorizer's context (the
    /// [`GatewayIdentity`](crate::auth::GatewayIdentity) request extension) instead of checking
    /// the presented key again. Only for the API Lambda behind API Gateway, where every `/v1`
    /// route has the authorizer attached; off by default, and then that extension is ignored.
    pub trust_gateway_authorizer: bool,
    /// Where clients reach the API, for links in the OpenAPI document.
    pub public_base_url: Option<String>,
    /// Private networks and host names webhook targets may reach anyway (local development);
    /// empty by default, so loopback and private targets are refused.
    pub webhook_allowlist: AllowList,
}

impl ApiConfig {
    pub const DEFAULT_BODY_LIMIT: usize = 24 * 1024 * 1024;
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            default_rate_limit_per_minute: 600,
            body_limit_bytes: Self::DEFAULT_BODY_LIMIT,
            trust_forwarded_for: false,
            trust_gateway_authorizer: false,
            public_base_url: None,
            webhook_allowlist: AllowList::default(),
        }
    }
}

/// Shared by all handlers; cheap to clone (every field is a handle).
#[derive(Clone)]
pub struct AppState {
    /// The ports, for what no service covers (rate limiting, health).
    pub backend: Backend,
    pub sessions: SessionService,
    pub messages: MessageService,
    pub keys: ApiKeyService,
    /// Checks webhook targets with the same SSRF guard the deliver worker uses.
    pub webhooks: WebhookService,
    pub audit: AuditLog,
    pub config: ApiConfig,
}

impl AppState {
    /// Builds every service from one backend.
    pub fn new(backend: Backend, config: ApiConfig) -> Self {
        let clock = backend.clock.clone();
        let audit = AuditLog::new(backend.audit.clone(), clock.clone());
        let sessions = SessionService::new(
            backend.sessions.clone(),
            backend.messages.clone(),
            backend.queue.clone(),
            audit.clone(),
            clock.clone(),
        );
        let messages = MessageService::new(
            backend.sessions.clone(),
            backend.messages.clone(),
            backend.queue.clone(),
            backend.blobs.clone(),
            clock.clone(),
        );
        let keys = ApiKeyService::new(backend.keys.clone(), audit.clone(), clock);
        let guard = SsrfGuard::system(config.webhook_allowlist.clone());
        let webhooks = WebhookService::new(&backend, Arc::new(guard));
        Self {
            backend,
            sessions,
            messages,
            keys,
            webhooks,
            audit,
            config,
        }
    }
}
