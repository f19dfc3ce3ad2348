//! [`DeliveryStore`] and [`EventStore`] on DynamoDB. Fan-out is idempotent on event id: a
//! delivery is unique per `(webhook, event)` and an event is stored once.
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

use std::sync::Arc;

use async_trait::async_trait;
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::event::Event;
use openwa_core::id::{DeliveryId, EventId, WebhookId};
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::{DeliveryStore, EventStore};
use openwa_core::webhook::{Delivery, DeliveryAttempt, DeliveryStatus};

use super::codec::{
    Expr, Item, Listing, get_json, json, key, opt_n, query_all, s, sort_key, time_key, ttl_at,
};
use super::{Table, Written};
use crate::context::AwsContext;
use crate::resources::table::{GSI1, GSI2, PK, SK, TTL};

/// How long events are kept: the retry schedule spans about 28 hours, and dead deliveries stay
/// redeliverable (which needs the event) for the rest of this time.
pub const EVENT_RETENTION: chrono::Duration = chrono::Duration::days(30);

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

#[async_trait]
impl DeliveryStore for DynamoDeliveryStore {
    #[tracing::instrument(skip_all, fields(webhook_id = %delivery.webhook_id, event_id = %delivery.event_id))]
    async fn create_if_absent(&self, delivery: &Delivery) -> Result<bool> {
        let mut guard = key(
            format!("DLVKEY#{}#{}", delivery.webhook_id, delivery.event_id),
            "DLVKEY",
        );
        guard.insert(DELIVERY_ID.to_owned(), s(delivery.id.as_str()));
        let actions = vec![
            self.table.put_new(encode(delivery)?)?,
            self.table.put_new(guard)?,
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

    async fn get(&self, id: &DeliveryId) -> Result<Delivery> {
        match self.table.get(delivery_key(id.as_str())).await? {
            Some(item) => decode(&item),
            None => Err(NOT_FOUND),
        }
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
        // The ULID keeps two records of one attempt number apart, in the order they came.
        let sk = format!(
            "{ATTEMPT_PREFIX}{:010}#{}",
            attempt.attempt,
            ulid::Ulid::new()
        );
        let mut item = key(delivery_partition(attempt.delivery_id.as_str()), sk);
        item.insert(BODY.to_owned(), s(json(attempt)?));
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

pub struct DynamoEventStore {
    table: Table,
}

impl DynamoEventStore {
    pub fn new(ctx: Arc<AwsContext>) -> Self {
        Self {
            table: Table::new(ctx),
        }
    }
}

fn event_key(id: &str) -> Item {
    key(format!("EVENT#{id}"), "EVENT")
}

#[async_trait]
impl EventStore for DynamoEventStore {
    #[tracing::instrument(skip_all, fields(event_id = %event.id, kind = event.kind.as_str()))]
    async fn put_if_absent(&self, event: &Event) -> Result<bool> {
        let now = self.table.now();
        let mut item = event_key(event.id.as_str());
        item.insert(BODY.to_owned(), s(json(event)?));
        item.insert(TTL.to_owned(), ttl_at(now + EVENT_RETENTION));
        let mut e = Expr::new();
        // An expired event DynamoDB has not deleted yet counts as absent.
        let condition = format!(
            "attribute_not_exists({}) OR {} < {}",
            e.name(PK),
            e.name(TTL),
            e.value(ttl_at(now))
        );
        let put = self
            .table
            .put_item()
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        match self.table.put(put).await? {
            Written::Done(_) => Ok(true),
            Written::Refused(_) => Ok(false),
        }
    }

    async fn get(&self, id: &EventId) -> Result<Event> {
        let gone = Error::NotFound { resource: "event" };
        let item = self
            .table
            .get(event_key(id.as_str()))
            .await?
            .ok_or(gone.clone())?;
        let expired = opt_n::<i64>(&item, TTL)?.is_some_and(|t| t < self.table.now().timestamp());
        if expired {
            return Err(gone);
        }
        get_json(&item, BODY)
    }
}
