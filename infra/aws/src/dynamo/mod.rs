//! The store ports and the rate limiter on one DynamoDB table (single-table design; every key
//! and access pattern is listed in `docs/aws-dynamodb.md`).
//!
//! Each entity is one item under its own partition (`SESSION#<id>`, `KEY#<id>`, …) or, for
//! messages, one partition per session. Fields that change after creation are attributes of
//! their own, so lease operations, status changes and revocations are single conditional
//! `UpdateItem`s; uniqueness beyond the primary key (idempotency keys, key hashes, one delivery
//! per webhook and event) is a guard item written in the same `TransactWriteItems`. Listings go
//! through the two generic indexes and share one cursor format ([`codec`]).
//!
//! Layout:
//! - `codec`: attribute encodings, expression placeholders, cursors, paged queries
//! - [`sessions`]: sessions and the runner lease
//! - [`messages`]: messages, idempotent inserts, status changes
//! - [`keys`]: API keys and the audit log
//! - [`outbox`]: events written in a transaction, for the stream relay
//! - [`webhooks`]: webhook subscriptions
//! - [`deliveries`]: deliveries, their attempts, and events
//! - [`rate_limit`]: the rate limiter (GCRA, one item per key)
//! - `tests` (on the test endpoint): checks beyond the conformance suite

pub(crate) mod codec;
pub mod deliveries;
pub mod keys;
pub mod messages;
pub mod outbox;
pub mod rate_limit;
pub mod sessions;
pub mod webhooks;

#[cfg(all(test, feature = "testing"))]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};

pub use deliveries::{DynamoDeliveryStore, DynamoEventStore};
pub use keys::{DynamoApiKeyStore, DynamoAuditStore};
pub use messages::DynamoMessageStore;
pub use rate_limit::DynamoRateLimiter;
pub use sessions::DynamoSessionStore;
pub use webhooks::DynamoWebhookStore;

use crate::context::AwsContext;
use crate::error::sdk_error;
use codec::{Expr, Item};

/// The outcome of a conditional write.
#[derive(Debug)]
pub(crate) enum Written {
    /// Written; the attributes `ReturnValues` asked for (if any).
    Done(Option<Item>),
    /// The condition failed; the item as it was (`None` if there was none).
    Refused(Option<Item>),
}

/// Why one action of a cancelled transaction failed: DynamoDB's code (`ConditionalCheckFailed`,
/// `None` for actions that were fine) and, where asked for, the item as it was.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cancelled {
    pub(crate) code: Option<String>,
    pub(crate) old: Option<Item>,
}

impl Cancelled {
    pub(crate) fn condition_failed(&self) -> bool {
        self.code.as_deref() == Some("ConditionalCheckFailed")
    }
}

/// Attempts of a transaction that lost to a concurrent one before giving up as `Unavailable`.
const TRANSACTION_ATTEMPTS: u32 = 6;

/// The table every store shares, with the clients and clock of the context.
#[derive(Clone)]
pub(crate) struct Table {
    ctx: Arc<AwsContext>,
}

impl Table {
    pub(crate) fn new(ctx: Arc<AwsContext>) -> Self {
        Self { ctx }
    }

    pub(crate) fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.ctx.dynamo
    }

    pub(crate) fn name(&self) -> &str {
        &self.ctx.settings.table
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.ctx.clock.now()
    }

    pub(crate) fn settings(&self) -> &crate::settings::AwsSettings {
        &self.ctx.settings
    }

    /// Whether `item` carries a TTL that has passed: DynamoDB deletes such items lazily (moto
    /// never), so reads treat them as absent themselves.
    pub(crate) fn expired(&self, item: &Item) -> bool {
        codec::opt_n::<i64>(item, crate::resources::table::TTL)
            .ok()
            .flatten()
            .is_some_and(|t| t <= self.now().timestamp())
    }

    /// A transactional put of a new item, or over an expired one (its TTL has passed).
    pub(crate) fn put_new_or_expired(&self, item: Item) -> Result<TransactWriteItem> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.name())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #ttl <= :now")
            .expression_attribute_names("#pk", crate::resources::table::PK)
            .expression_attribute_names("#ttl", crate::resources::table::TTL)
            .expression_attribute_values(":now", codec::n(self.now().timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| Error::unexpected(format!("TransactWriteItems: {e}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A strongly consistent read of one item.
    pub(crate) async fn get(&self, key: Item) -> Result<Option<Item>> {
        let out = self
            .client()
            .get_item()
            .table_name(self.name())
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
    }

    /// Strongly consistent reads of up to 100 items in one `BatchGetItem` (repeated for keys
    /// DynamoDB leaves unprocessed). Absent items are simply missing from the result.
    pub(crate) async fn get_many(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::unexpected(format!("BatchGetItem: {e}")))?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                let mut out = self
                    .client()
                    .batch_get_item()
                    .request_items(self.name(), request)
                    .send()
                    .await
                    .map_err(|e| sdk_error("BatchGetItem", e))?;
                if let Some(items) = out.responses.as_mut().and_then(|r| r.remove(self.name())) {
                    found.extend(items);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(self.name()))
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    if attempt >= TRANSACTION_ATTEMPTS {
                        return Err(Error::unavailable("BatchGetItem: keys left unprocessed"));
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
        Ok(found)
    }

    /// A query on this table, to be completed by the caller.
    pub(crate) fn query(&self) -> QueryFluentBuilder {
        self.client().query().table_name(self.name())
    }

    pub(crate) fn put_item(&self) -> PutItemFluentBuilder {
        self.client().put_item().table_name(self.name())
    }

    pub(crate) fn update_item(&self) -> UpdateItemFluentBuilder {
        self.client().update_item().table_name(self.name())
    }

    pub(crate) fn delete_item(&self) -> DeleteItemFluentBuilder {
        self.client().delete_item().table_name(self.name())
    }

    /// An update of `key` with the clauses, placeholders and `condition` of `e`.
    pub(crate) fn update_with(
        &self,
        key: Item,
        e: &Expr,
        condition: &str,
    ) -> UpdateItemFluentBuilder {
        self.update_item()
            .set_key(Some(key))
            .update_expression(e.update_expression())
            .condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
    }

    /// Sends a conditional put; a failed condition comes back with the item as it was.
    pub(crate) async fn put(&self, put: PutItemFluentBuilder) -> Result<Written> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        match put
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
        {
            Ok(out) => Ok(Written::Done(out.attributes)),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Written::Refused(c.item().cloned()))
                }
                _ => Err(sdk_error("PutItem", e)),
            },
        }
    }

    /// Sends a conditional update; a failed condition comes back with the item as it was.
    pub(crate) async fn update(&self, update: UpdateItemFluentBuilder) -> Result<Written> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        match update
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
        {
            Ok(out) => Ok(Written::Done(out.attributes)),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Written::Refused(c.item().cloned()))
                }
                _ => Err(sdk_error("UpdateItem", e)),
            },
        }
    }

    /// Sends a conditional delete; a failed condition comes back with the item as it was.
    pub(crate) async fn delete(&self, delete: DeleteItemFluentBuilder) -> Result<Written> {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
        match delete
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
        {
            Ok(out) => Ok(Written::Done(out.attributes)),
            Err(e) => match e.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Written::Refused(c.item().cloned()))
                }
                _ => Err(sdk_error("DeleteItem", e)),
            },
        }
    }

    /// A transaction action that creates `item` unless an item with its key exists (the old
    /// item comes back in the cancellation reason).
    pub(crate) fn put_new(&self, item: Item) -> Result<TransactWriteItem> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.name())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", crate::resources::table::PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| Error::unexpected(format!("TransactWriteItems: {e}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction action that only checks that the item with `key` exists (reason code
    /// `ConditionalCheckFailed` when it does not).
    pub(crate) fn must_exist(&self, key: Item) -> Result<TransactWriteItem> {
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(self.name())
            .set_key(Some(key))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", crate::resources::table::PK)
            .build()
            .map_err(|e| Error::unexpected(format!("TransactWriteItems: {e}")))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Deletes every item of `keys`, 25 per `BatchWriteItem`, resubmitting what DynamoDB
    /// leaves unprocessed.
    pub(crate) async fn delete_all(&self, keys: Vec<Item>) -> Result<()> {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        for chunk in keys.chunks(25) {
            let mut requests = chunk
                .iter()
                .map(|k| {
                    DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(|e| Error::unexpected(format!("BatchWriteItem: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut attempt = 0;
            while !requests.is_empty() {
                let out = self
                    .client()
                    .batch_write_item()
                    .request_items(self.name(), requests)
                    .send()
                    .await
                    .map_err(|e| sdk_error("BatchWriteItem", e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(self.name()))
                    .unwrap_or_default();
                if !requests.is_empty() {
                    if attempt >= TRANSACTION_ATTEMPTS {
                        return Err(Error::unavailable("BatchWriteItem: items left unprocessed"));
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
        Ok(())
    }

    /// Runs a transaction. `Ok(None)` when it committed; `Ok(Some(reasons))`, one per action,
    /// when a condition cancelled it. Cancellations by a concurrent transaction on the same
    /// items (`TransactionConflict`) are retried after a short random pause.
    pub(crate) async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<Cancelled>>> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        for attempt in 0..TRANSACTION_ATTEMPTS {
            let sent = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                .send()
                .await;
            let err = match sent {
                Ok(_) => return Ok(None),
                Err(e) => e,
            };
            let reasons: Vec<Cancelled> = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                    .cancellation_reasons()
                    .iter()
                    .map(|r| Cancelled {
                        code: r.code().filter(|c| *c != "None").map(str::to_owned),
                        old: r.item().cloned(),
                    })
                    .collect(),
                _ => return Err(sdk_error("TransactWriteItems", err)),
            };
            if reasons.iter().any(Cancelled::condition_failed) {
                return Ok(Some(reasons));
            }
            let conflicted = reasons
                .iter()
                .any(|r| r.code.as_deref() == Some("TransactionConflict"));
            if !conflicted {
                return Err(sdk_error("TransactWriteItems", err));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(Error::unavailable(
            "TransactWriteItems: kept conflicting with concurrent writes",
        ))
    }
}

/// 10, 20, 40, … ms plus up to 10 ms of jitter, so racing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let jitter = (ulid::Ulid::new().random() % 10) as u64;
    Duration::from_millis((10u64 << attempt.min(6)) + jitter)
}
