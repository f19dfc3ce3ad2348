//! [`EventStore`] on DynamoDB: an event is one item, `pk = EVENT#<id>`, kept for
//! [`EVENT_RETENTION`] (DynamoDB's TTL deletes it later; reads treat it as gone as soon as it
//! expires). Fan-out writes events together with their deliveries (`expansions`), with the
//! same condition as [`EventStore::put_if_absent`].

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use openwa_core::error::{Error, Result};
use openwa_core::event::Event;
use openwa_core::id::EventId;
use openwa_core::ports::EventStore;

use super::super::codec::{Expr, Item, get_json, json, key, opt_n, s, ttl_at};
use super::super::{Table, Written};
use crate::context::AwsContext;
use crate::resources::table::{PK, TTL};

/// How long events are kept: the retry schedule spans about 28 hours, and dead deliveries stay
/// redeliverable (which needs the event) for the rest of this time.
pub const EVENT_RETENTION: chrono::Duration = chrono::Duration::days(30);

const BODY: &str = "body";

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

/// An event's item, its condition (absent, or expired but not yet deleted: that counts as
/// absent) and the condition's placeholders.
fn event_write(table: &Table, event: &Event) -> Result<(Item, String, Expr)> {
    let now = table.now();
    let mut item = event_key(event.id.as_str());
    item.insert(BODY.to_owned(), s(json(event)?));
    item.insert(TTL.to_owned(), ttl_at(now + EVENT_RETENTION));
    let mut e = Expr::new();
    let condition = format!(
        "attribute_not_exists({}) OR {} < {}",
        e.name(PK),
        e.name(TTL),
        e.value(ttl_at(now))
    );
    Ok((item, condition, e))
}

/// Stores `event` unless it exists; whether it was new.
pub(super) async fn put_event_if_absent(table: &Table, event: &Event) -> Result<bool> {
    let (item, condition, e) = event_write(table, event)?;
    let put = table
        .put_item()
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_names(e.names())
        .set_expression_attribute_values(e.values());
    match table.put(put).await? {
        Written::Done(_) => Ok(true),
        Written::Refused(_) => Ok(false),
    }
}

/// [`put_event_if_absent`] as a transaction action.
pub(super) fn event_put(table: &Table, event: &Event) -> Result<TransactWriteItem> {
    let (item, condition, e) = event_write(table, event)?;
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(table.name())
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_names(e.names())
        .set_expression_attribute_values(e.values())
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
        .build()
        .map_err(|e| Error::unexpected(format!("TransactWriteItems: {e}")))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

#[async_trait]
impl EventStore for DynamoEventStore {
    #[tracing::instrument(skip_all, fields(event_id = %event.id, kind = event.kind.as_str()))]
    async fn put_if_absent(&self, event: &Event) -> Result<bool> {
        put_event_if_absent(&self.table, event).await
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
