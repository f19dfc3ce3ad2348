//! [`ApiKeyStore`] and [`AuditStore`] on DynamoDB.
//!
//! An API key is one item, `pk = KEY#<id>, sk = KEY`: its JSON `body` plus `hash` (the entity
//! does not serialise it) and the fields that change later (`revoked_at`, `last_used_at`),
//! which override the body on read. A guard item `KEYHASH#<hash>` written in the same
//! transaction keeps hashes unique; lookups by hash use `gsi2` (one query on the hot path of
//! every request), listings `gsi1` (`KEYS`, newest first).
//!
//! An audit entry is one item, `pk = AUDIT#<id>`, listed newest first through `gsi1` (`AUDIT`)
//! or, when filtered by key, `gsi2` (`AUDITKEY#<key id>`); the time window is the key
//! condition, action and session are filter expressions.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use openwa_core::apikey::ApiKey;
use openwa_core::audit::{AuditEntry, AuditFilter};
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::id::ApiKeyId;
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::{ApiKeyStore, AuditStore};

use super::codec::{
    Expr, Item, Listing, get_json, get_s, json, key, opt_time, s, sort_key, time, time_key, ttl_at,
};
use super::{Table, Written};
use crate::context::AwsContext;
use crate::error::sdk_error;
use crate::resources::table::{GSI1, GSI2, PK, SK, TTL};

// Attribute names.
const BODY: &str = "body";
const HASH: &str = "hash";
const REVOKED_AT: &str = "revoked_at";
const LAST_USED_AT: &str = "last_used_at";
const KEY_ID: &str = "key_id";
const ACTION: &str = "action";
const SESSION_ID: &str = "session_id";

/// Partition value of `gsi1` for keys.
const KEYS: &str = "KEYS";
/// Partition value of `gsi1` for audit entries.
const AUDIT: &str = "AUDIT";

const KEY_NOT_FOUND: Error = Error::NotFound {
    resource: "api key",
};

pub struct DynamoApiKeyStore {
    table: Table,
}

impl DynamoApiKeyStore {
    pub fn new(ctx: Arc<AwsContext>) -> Self {
        Self {
            table: Table::new(ctx),
        }
    }
}

fn key_key(id: &str) -> Item {
    key(format!("KEY#{id}"), "KEY")
}

fn hash_partition(hash: &str) -> String {
    format!("KEYHASH#{hash}")
}

fn encode_key(k: &ApiKey) -> Result<Item> {
    let mut item = key_key(k.id.as_str());
    let mut put = |name: &str, v| {
        item.insert(name.to_owned(), v);
    };
    put(BODY, s(json(k)?));
    put(HASH, s(&k.secret_hash));
    put(GSI1.pk, s(KEYS));
    put(GSI1.sk, s(sort_key(k.created_at, k.id.as_str())?));
    put(GSI2.pk, s(hash_partition(&k.secret_hash)));
    put(GSI2.sk, s("KEY"));
    if let Some(t) = k.revoked_at {
        put(REVOKED_AT, time(t)?);
    }
    if let Some(t) = k.last_used_at {
        put(LAST_USED_AT, time(t)?);
    }
    Ok(item)
}

fn decode_key(item: &Item) -> Result<ApiKey> {
    let mut k: ApiKey = get_json(item, BODY)?;
    k.secret_hash = get_s(item, HASH)?.to_owned();
    k.revoked_at = opt_time(item, REVOKED_AT)?;
    k.last_used_at = opt_time(item, LAST_USED_AT)?;
    Ok(k)
}

#[async_trait]
impl ApiKeyStore for DynamoApiKeyStore {
    #[tracing::instrument(skip_all, fields(key_id = %key.id))]
    async fn create(&self, key: &ApiKey) -> Result<()> {
        let mut guard = super::codec::key(hash_partition(&key.secret_hash), "KEYHASH");
        guard.insert(KEY_ID.to_owned(), s(key.id.as_str()));
        let actions = vec![
            self.table.put_new(encode_key(key)?)?,
            self.table.put_new(guard)?,
        ];
        match self.table.transact(actions).await? {
            None => Ok(()),
            Some(_) => Err(Error::conflict("an api key with that id or secret exists")),
        }
    }

    async fn get(&self, id: &ApiKeyId) -> Result<ApiKey> {
        match self.table.get(key_key(id.as_str())).await? {
            Some(item) => decode_key(&item),
            None => Err(KEY_NOT_FOUND),
        }
    }

    async fn find_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let mut e = Expr::new();
        let condition = format!("{} = {}", e.name(GSI2.pk), e.value(s(hash_partition(hash))));
        let out = self
            .table
            .query()
            .index_name(GSI2.name)
            .key_condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .limit(1)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        out.items().first().map(decode_key).transpose()
    }

    async fn list(&self, page: &PageRequest) -> Result<Page<ApiKey>> {
        let mut e = Expr::new();
        let condition = format!("{} = {}", e.name(GSI1.pk), e.value(s(KEYS)));
        let listing = Listing {
            query: self
                .table
                .query()
                .index_name(GSI1.name)
                .key_condition_expression(condition)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .scan_index_forward(false),
            key_attrs: &[PK, SK, GSI1.pk, GSI1.sk],
            partition: (GSI1.pk, KEYS.to_owned()),
            filtered: false,
        };
        listing.fetch(page, |item| decode_key(item).map(Some)).await
    }

    #[tracing::instrument(skip_all, fields(key_id = %id))]
    async fn revoke(&self, id: &ApiKeyId, at: Timestamp) -> Result<ApiKey> {
        let mut e = Expr::new();
        e.set_once(REVOKED_AT, time(at)?);
        let condition = format!("attribute_exists({})", e.name(PK));
        let update = self
            .table
            .update_with(key_key(id.as_str()), &e, &condition)
            .return_values(ReturnValue::AllNew);
        match self.table.update(update).await? {
            Written::Done(Some(item)) => decode_key(&item),
            Written::Done(None) => Err(Error::unexpected("UpdateItem returned no attributes")),
            Written::Refused(_) => Err(KEY_NOT_FOUND),
        }
    }

    async fn touch(&self, id: &ApiKeyId, at: Timestamp) -> Result<()> {
        let mut e = Expr::new();
        e.set(LAST_USED_AT, time(at)?);
        // Concurrent touches may arrive out of order; keep the latest.
        let (last, at) = (e.name(LAST_USED_AT), e.value(time(at)?));
        let condition = format!(
            "attribute_exists({}) AND (attribute_not_exists({last}) OR {last} < {at})",
            e.name(PK)
        );
        let update = self.table.update_with(key_key(id.as_str()), &e, &condition);
        match self.table.update(update).await? {
            Written::Done(_) | Written::Refused(Some(_)) => Ok(()),
            Written::Refused(None) => Err(KEY_NOT_FOUND),
        }
    }
}

pub struct DynamoAuditStore {
    table: Table,
}

impl DynamoAuditStore {
    pub fn new(ctx: Arc<AwsContext>) -> Self {
        Self {
            table: Table::new(ctx),
        }
    }
}

fn key_partition(key: &ApiKeyId) -> String {
    format!("AUDITKEY#{key}")
}

fn encode_entry(entry: &AuditEntry) -> Result<Item> {
    let mut item = key(format!("AUDIT#{}", entry.id), "AUDIT");
    let listed = sort_key(entry.at, entry.id.as_str())?;
    let mut put = |name: &str, v| {
        item.insert(name.to_owned(), v);
    };
    put(BODY, s(json(entry)?));
    put(ACTION, s(&entry.action));
    put(GSI1.pk, s(AUDIT));
    put(GSI1.sk, s(listed.clone()));
    if let Some(session) = &entry.session_id {
        put(SESSION_ID, s(session.as_str()));
    }
    if let Some(key) = &entry.key_id {
        put(GSI2.pk, s(key_partition(key)));
        put(GSI2.sk, s(listed));
    }
    Ok(item)
}

/// The item of an audit entry, expiring after `retention_days` (0: kept).
pub(super) fn audit_item(entry: &AuditEntry, retention_days: u32) -> Result<Item> {
    let mut item = encode_entry(entry)?;
    if retention_days > 0 {
        let expires = entry.at + chrono::Duration::days(i64::from(retention_days));
        item.insert(TTL.to_owned(), ttl_at(expires));
    }
    Ok(item)
}

#[async_trait]
impl AuditStore for DynamoAuditStore {
    #[tracing::instrument(skip_all, fields(action = %entry.action))]
    async fn append(&self, entry: &AuditEntry) -> Result<()> {
        let item = audit_item(entry, self.table.settings().audit_retention_days)?;
        let put = self
            .table
            .put_item()
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        match self.table.put(put).await? {
            Written::Done(_) => Ok(()),
            Written::Refused(_) => Err(Error::conflict("an audit entry with that id exists")),
        }
    }

    async fn list(&self, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>> {
        if let (Some(since), Some(until)) = (filter.since, filter.until)
            && since >= until
        {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let (index, partition) = match &filter.key_id {
            Some(key) => (GSI2, key_partition(key)),
            None => (GSI1, AUDIT.to_owned()),
        };
        let mut e = Expr::new();
        let mut key_condition = format!("{} = {}", e.name(index.pk), e.value(s(&partition)));
        // Sort keys are `<time>#<id>`: `>= since` includes `since`, `< until` excludes `until`.
        match (filter.since, filter.until) {
            (Some(since), Some(until)) => {
                let lo = e.value(s(time_key(since)?));
                let hi = e.value(s(time_key(until)?));
                let sk = e.name(index.sk);
                key_condition.push_str(&format!(" AND {sk} BETWEEN {lo} AND {hi}"));
            }
            (Some(since), None) => {
                let lo = e.value(s(time_key(since)?));
                let sk = e.name(index.sk);
                key_condition.push_str(&format!(" AND {sk} >= {lo}"));
            }
            (None, Some(until)) => {
                let hi = e.value(s(time_key(until)?));
                let sk = e.name(index.sk);
                key_condition.push_str(&format!(" AND {sk} < {hi}"));
            }
            (None, None) => {}
        }
        let mut conditions = Vec::new();
        if let Some(action) = &filter.action {
            conditions.push(format!("{} = {}", e.name(ACTION), e.value(s(action))));
        }
        if let Some(session) = &filter.session_id {
            let v = e.value(s(session.as_str()));
            conditions.push(format!("{} = {v}", e.name(SESSION_ID)));
        }
        let mut query = self
            .table
            .query()
            .index_name(index.name)
            .key_condition_expression(key_condition)
            .scan_index_forward(false);
        if !conditions.is_empty() {
            query = query.filter_expression(conditions.join(" AND "));
        }
        let key_attrs: &'static [&'static str] = if index == GSI1 {
            &[PK, SK, GSI1.pk, GSI1.sk]
        } else {
            &[PK, SK, GSI2.pk, GSI2.sk]
        };
        let listing = Listing {
            query: query
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values()),
            key_attrs,
            partition: (index.pk, partition),
            // Expired entries are dropped below, before DynamoDB's lazy TTL deletes them.
            filtered: !conditions.is_empty() || self.table.settings().audit_retention_days > 0,
        };
        let table = &self.table;
        listing
            .fetch(page, |item| {
                if table.expired(item) {
                    Ok(None)
                } else {
                    get_json(item, BODY).map(Some)
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use openwa_core::apikey::{ApiKeySecret, Role};

    #[test]
    fn a_key_survives_its_item_encoding_with_its_hash() {
        let secret = ApiKeySecret::generate();
        let now = Utc::now();
        let key = ApiKey {
            id: ApiKeyId::generate(),
            name: "ci".into(),
            prefix: secret.display_prefix(),
            secret_hash: secret.hash(),
            role: Role::Admin,
            allowed_sessions: None,
            allowed_cidrs: Vec::new(),
            rate_limit_per_minute: Some(60),
            expires_at: None,
            revoked_at: Some(now),
            last_used_at: Some(now),
            created_at: now,
        };

        assert_eq!(decode_key(&encode_key(&key).unwrap()).unwrap(), key);
    }
}
