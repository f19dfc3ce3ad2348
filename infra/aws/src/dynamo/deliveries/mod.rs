//! [`DeliveryStore`] and [`EventStore`](openwa_core::ports::EventStore) on DynamoDB. Fan-out
//! is idempotent on event id: a delivery is unique per `(webhook, event)` and an event is
//! stored once.
//!
//! A delivery is one item, `pk = DLV#<id>, sk = DLV` (its JSON `body`), created in one
//! transaction with the guard `DLVKEY#<webhook>#<event>`. Its attempts are items in the same
//! partition (`ATTEMPT#<attempt>#<ulid>`), read in order with one query. `gsi1`
//! (`DLVS#<webhook>`) lists a webhook's deliveries newest first; `gsi2`
//! (`DLVS#<webhook>#<status>`) does the same per status and answers time-range queries with
//! its sort key.
//!
//! An event is one item, `pk = EVENT#<id>`, kept for [`EVENT_RETENTION`] (DynamoDB's TTL
//! deletes it later; reads treat it as gone as soon as it expires).
//!
//! Calls: fan-out writes a batch of events with all their deliveries and guards in one
//! `TransactWriteItems` per 100 items ([`create_expansions`](DeliveryStore::create_expansions),
//! in `expansions`). The deliver worker reads a batch's deliveries with one `BatchGetItem` and
//! writes each attempt with the delivery's new state in one `TransactWriteItems`
//! ([`record_outcome`](DeliveryStore::record_outcome)), or a whole batch of them in one per 50
//! attempts ([`record_outcomes`](DeliveryStore::record_outcomes)).
//!
//! Layout:
//! - this file: deliveries and their attempts
//! - `expansions`: fan-out's batch write of events, deliveries and guards
//! - `events`: [`DynamoEventStore`]

mod events;
mod expansions;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::id::{DeliveryId, WebhookId};
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::DeliveryStore;
use openwa_core::ports::store::{Expansion, ExpansionStored};
use openwa_core::webhook::{Delivery, DeliveryAttempt, DeliveryStatus};

use super::codec::{Expr, Item, Listing, get_json, json, key, query_all, s, sort_key, time_key};
use super::{Table, Written};
use crate::context::AwsContext;
use crate::resources::table::{GSI1, GSI2, PK, SK};

pub use events::{DynamoEventStore, EVENT_RETENTION};

const BODY: &str = "body";
/// On a guard item: the delivery of its (webhook, event).
const DELIVERY_ID: &str = "delivery_id";
const ATTEMPT_PREFIX: &str = "ATTEMPT#";

const NOT_FOUND: Error = Error::NotFound {
    resource: "delivery",
};

pub struct DynamoDeliveryStore {
    table: Table,
}

impl DynamoDeliveryStore {
    pub fn new(ctx: Arc<AwsContext>) -> Self {
        Self {
            table: Table::new(ctx),
        }
    }
}

fn delivery_partition(id: &str) -> String {
    format!("DLV#{id}")
}

fn delivery_key(id: &str) -> Item {
    key(delivery_partition(id), "DLV")
}

fn by_webhook(webhook: &WebhookId) -> String {
    format!("DLVS#{webhook}")
}

fn by_status(webhook: &WebhookId, status: DeliveryStatus) -> String {
    format!("DLVS#{webhook}#{}", status.as_str())
}

fn encode(d: &Delivery) -> Result<Item> {
    let mut item = delivery_key(d.id.as_str());
    let listed = sort_key(d.created_at, d.id.as_str())?;
    let mut put = |name: &str, v| {
        item.insert(name.to_owned(), v);
    };
    put(BODY, s(json(d)?));
    put(GSI1.pk, s(by_webhook(&d.webhook_id)));
    put(GSI1.sk, s(listed.clone()));
    put(GSI2.pk, s(by_status(&d.webhook_id, d.status)));
    put(GSI2.sk, s(listed));
    Ok(item)
}

fn decode(item: &Item) -> Result<Delivery> {
    get_json(item, BODY)
}

/// The guard item that makes a delivery unique per (webhook, event).
fn guard_item(d: &Delivery) -> Item {
    let mut guard = key(format!("DLVKEY#{}#{}", d.webhook_id, d.event_id), "DLVKEY");
    guard.insert(DELIVERY_ID.to_owned(), s(d.id.as_str()));
    guard
}

/// An attempt's item: in its delivery's partition, sorted by attempt number.
fn attempt_item(attempt: &DeliveryAttempt) -> Result<Item> {
    // The ULID keeps two records of one attempt number apart, in the order they came.
    let sk = format!(
        "{ATTEMPT_PREFIX}{:010}#{}",
        attempt.attempt,
        ulid::Ulid::new()
    );
    let mut item = key(delivery_partition(attempt.delivery_id.as_str()), sk);
    item.insert(BODY.to_owned(), s(json(attempt)?));
    Ok(item)
}
/// Most actions DynamoDB takes in one `TransactWriteItems`.
const MAX_TRANSACTION_ITEMS: usize = 100;

#[async_trait]
impl DeliveryStore for DynamoDeliveryStore {
    #[tracing::instrument(skip_all, fields(webhook_id = %delivery.webhook_id, event_id = %delivery.event_id))]
    async fn create_if_absent(&self, delivery: &Delivery) -> Result<bool> {
        let actions = vec![
            self.table.put_new(encode(delivery)?)?,
            self.table.put_new(guard_item(delivery))?,
        ];
        match self.table.transact(actions).await? {
            None => Ok(true),
            Some(reasons) => match reasons.as_slice() {
                [_, guard] if guard.condition_failed() => Ok(false),
                // Same id for another (webhook, event): a caller bug, not a replay.
                _ => Err(Error::conflict(format!("delivery {} exists", delivery.id))),
            },
        }
    }
    #[tracing::instrument(skip_all, fields(events = batch.len()))]
    async fn create_expansions(&self, batch: &[Expansion]) -> Result<Vec<ExpansionStored>> {
        self.expand(batch).await
    }

    async fn get(&self, id: &DeliveryId) -> Result<Delivery> {
        match self.table.get(delivery_key(id.as_str())).await? {
            Some(item) => decode(&item),
            None => Err(NOT_FOUND),
        }
    }

    #[tracing::instrument(skip_all, fields(deliveries = ids.len()))]
    async fn get_many(&self, ids: &[DeliveryId]) -> Result<Vec<Delivery>> {
        // BatchGetItem refuses a key asked for twice.
        let unique: std::collections::BTreeSet<&str> = ids.iter().map(DeliveryId::as_str).collect();
        let keys = unique.into_iter().map(delivery_key).collect();
        self.table
            .get_many(keys)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    #[tracing::instrument(skip_all, fields(delivery_id = %delivery.id, status = delivery.status.as_str()))]
    async fn record_outcome(&self, attempt: &DeliveryAttempt, delivery: &Delivery) -> Result<()> {
        match self
            .table
            .transact(self.outcome_actions(attempt, delivery)?.to_vec())
            .await?
        {
            None => Ok(()),
            Some(_) => Err(NOT_FOUND),
        }
    }

    /// One transaction per 50 outcomes (100 items). If one delivery of a transaction is gone,
    /// the transaction is cancelled as a whole and its outcomes are written one by one.
    #[tracing::instrument(skip_all, fields(outcomes = outcomes.len()))]
    async fn record_outcomes(&self, outcomes: &[(DeliveryAttempt, Delivery)]) -> Vec<Result<()>> {
        let mut results: Vec<Result<()>> = outcomes.iter().map(|_| Ok(())).collect();
        for chunk in outcome_chunks(outcomes) {
            let actions = chunk
                .iter()
                .map(|i| self.outcome_actions(&outcomes[*i].0, &outcomes[*i].1))
                .collect::<Result<Vec<_>>>()
                .map(|a| a.into_iter().flatten().collect());
            let written = match actions {
                Ok(actions) => self.table.transact(actions).await,
                Err(e) => Err(e),
            };
            match written {
                Ok(None) => {}
                Ok(Some(_)) => {
                    for &i in &chunk {
                        let (attempt, delivery) = &outcomes[i];
                        results[i] = self.record_outcome(attempt, delivery).await;
                    }
                }
                Err(e) => {
                    for &i in &chunk {
                        results[i] = Err(e.clone());
                    }
                }
            }
        }
        results
    }

    #[tracing::instrument(skip_all, fields(delivery_id = %delivery.id, status = delivery.status.as_str()))]
    async fn update(&self, delivery: &Delivery) -> Result<()> {
        let put = self
            .table
            .put_item()
            .set_item(Some(encode(delivery)?))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        match self.table.put(put).await? {
            Written::Done(_) => Ok(()),
            Written::Refused(_) => Err(NOT_FOUND),
        }
    }

    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<()> {
        let item = attempt_item(attempt)?;
        self.table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| crate::error::sdk_error("PutItem", e))?;
        Ok(())
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<DeliveryAttempt>> {
        let mut e = Expr::new();
        let condition = format!(
            "{} = {} AND begins_with({}, {})",
            e.name(PK),
            e.value(s(delivery_partition(id.as_str()))),
            e.name(SK),
            e.value(s(ATTEMPT_PREFIX))
        );
        let query = self
            .table
            .query()
            .key_condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .consistent_read(true);
        query_all(query, usize::MAX)
            .await?
            .iter()
            .map(|item| get_json(item, BODY))
            .collect()
    }

    async fn list(
        &self,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> Result<Page<Delivery>> {
        let (index, partition) = match status {
            Some(status) => (GSI2, by_status(webhook, status)),
            None => (GSI1, by_webhook(webhook)),
        };
        let mut e = Expr::new();
        let condition = format!("{} = {}", e.name(index.pk), e.value(s(&partition)));
        let key_attrs: &'static [&'static str] = if index == GSI1 {
            &[PK, SK, GSI1.pk, GSI1.sk]
        } else {
            &[PK, SK, GSI2.pk, GSI2.sk]
        };
        let listing = Listing {
            query: self
                .table
                .query()
                .index_name(index.name)
                .key_condition_expression(condition)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .scan_index_forward(false),
            key_attrs,
            partition: (index.pk, partition),
            filtered: false,
        };
        listing.fetch(page, |item| decode(item).map(Some)).await
    }

    async fn in_range(
        &self,
        webhook: &WebhookId,
        status: DeliveryStatus,
        since: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        if since >= until || limit == 0 {
            return Ok(Vec::new());
        }
        let mut e = Expr::new();
        // Sort keys are `<time>#<id>`: BETWEEN `<since>` AND `<until>` is `[since, until)`.
        let condition = format!(
            "{} = {} AND {} BETWEEN {} AND {}",
            e.name(GSI2.pk),
            e.value(s(by_status(webhook, status))),
            e.name(GSI2.sk),
            e.value(s(time_key(since)?)),
            e.value(s(time_key(until)?))
        );
        let query = self
            .table
            .query()
            .index_name(GSI2.name)
            .key_condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .limit(limit.min(1000) as i32);
        query_all(query, limit as usize)
            .await?
            .iter()
            .map(decode)
            .collect()
    }
}
/// Outcomes (indexes) grouped into transactions: at most 50 each (two items per outcome), and
/// never one delivery twice in one transaction (DynamoDB refuses that).
fn outcome_chunks(outcomes: &[(DeliveryAttempt, Delivery)]) -> Vec<Vec<usize>> {
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let mut current = Vec::new();
    for (i, (_, d)) in outcomes.iter().enumerate() {
        if 2 * (current.len() + 1) > MAX_TRANSACTION_ITEMS || ids.contains(&d.id) {
            chunks.push(std::mem::take(&mut current));
            ids.clear();
        }
        ids.insert(d.id.clone());
        current.push(i);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}
impl DynamoDeliveryStore {
    /// The two actions of an outcome: replace the delivery (it must exist), log the attempt.
    fn outcome_actions(
        &self,
        attempt: &DeliveryAttempt,
        delivery: &Delivery,
    ) -> Result<[TransactWriteItem; 2]> {
        let log = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.table.name())
            .set_item(Some(attempt_item(attempt)?))
            .build()
            .map_err(|e| Error::unexpected(format!("TransactWriteItems: {e}")))?;
        let replace = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.table.name())
            .set_item(Some(encode(delivery)?))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
            .build()
            .map_err(|e| Error::unexpected(format!("TransactWriteItems: {e}")))?;
        Ok([
            TransactWriteItem::builder().put(replace).build(),
            TransactWriteItem::builder().put(log).build(),
        ])
    }
}
