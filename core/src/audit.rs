//! Audit entries: who did what to which resource, from where, with what result.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::id::{ApiKeyId, AuditId, SessionId};
use chrono::{DateTime, Utc};

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: AuditId,
    /// Dotted action, e.g. `session.create`, `message.send`, `api_key.revoke`.
    pub action: String,
    /// The resource acted on (`session:sales`, `api_key:key_…`).
    pub resource: String,
    pub session_id: Option<SessionId>,
    pub key_id: Option<ApiKeyId>,
    pub key_name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub source_ip: Option<IpAddr>,
    /// `ok`, or the error code of a refused action.
    pub result: String,
    pub at: DateTime<Utc>,
}

impl AuditEntry {
    pub fn new(
        principal: Option<&Principal>,
        action: &str,
        resource: String,
        session_id: Option<SessionId>,
        result: &str,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: AuditId::generate(),
            action: action.to_owned(),
            resource,
            session_id,
            key_id: principal.map(|p| p.key_id.clone()),
            key_name: principal.map(|p| p.key_name.clone()),
            source_ip: principal.and_then(|p| p.source_ip),
            result: result.to_owned(),
            at,
        }
    }
}

/// Filters for listing the audit log; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub key_id: Option<ApiKeyId>,
    pub session_id: Option<SessionId>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl AuditFilter {
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.action.as_ref().is_none_or(|a| &e.action == a)
            && self
                .key_id
                .as_ref()
                .is_none_or(|k| e.key_id.as_ref() == Some(k))
            && self
                .session_id
                .as_ref()
                .is_none_or(|s| e.session_id.as_ref() == Some(s))
            && self.since.is_none_or(|t| e.at >= t)
            && self.until.is_none_or(|t| e.at < t)
    }
}
