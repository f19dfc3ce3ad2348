//! Writes and reads the audit log.

use std::sync::Arc;

use crate::apikey::Role;
use crate::audit::{AuditEntry, AuditFilter};
use crate::auth::Principal;
use crate::clock::Clock;
use crate::error::Result;
use crate::id::SessionId;
use crate::page::{Page, PageRequest};
use crate::ports::AuditStore;

#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
}

impl AuditLog {
    pub fn new(store: Arc<dyn AuditStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Records an action. The action has already happened, so a failed write is logged, not
    /// returned: the caller's result must not depend on the audit store's health.
    pub async fn record(
        &self,
        who: Option<&Principal>,
        action: &str,
        resource: String,
        session: Option<SessionId>,
        result: &str,
    ) {
        let entry = AuditEntry::new(who, action, resource, session, result, self.clock.now());
        if let Err(error) = self.store.append(&entry).await {
            tracing::error!(%error, action, "audit entry could not be written");
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn list(
        &self,
        who: &Principal,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>> {
        who.require(Role::Admin)?;
        self.store.list(filter, page).await
    }
}
