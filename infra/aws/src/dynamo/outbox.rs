//! The table's outbox: events written in the same transaction as the change they report, and
//! forwarded to the events queue from the table's stream (`crate::outbox`).
//!
//! An outbox item is `pk = OUTBOX#<event id>, sk = OUTBOX` with the event's JSON in `event`. It
//! is written once and never read by key: the stream's `INSERT` record of it is what the relay
//! acts on (a Lambda event source filtered on the `OUTBOX#` prefix on AWS, the polling
//! [`StreamRelay`](crate::outbox::StreamRelay) elsewhere). The item expires a day later, well
//! after the stream (24 h retention) has handed it on; its `REMOVE` record is ignored.

use aws_sdk_dynamodb::types::TransactWriteItem;
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::event::Event;

use super::Table;
use super::codec::{Item, json, key, s, ttl_at};
use crate::resources::table::TTL;

/// Partition-key prefix of outbox items (what the stream filter matches).
pub const OUTBOX_PREFIX: &str = "OUTBOX#";
/// Sort key of outbox items.
const OUTBOX_SK: &str = "OUTBOX";
/// The attribute holding the event JSON.
pub const EVENT_ATTR: &str = "event";
/// How long an outbox item stays in the table.
const KEEP: chrono::Duration = chrono::Duration::days(1);

/// The outbox item of `event`, written at `now`.
pub(crate) fn item(event: &Event, now: Timestamp) -> Result<Item> {
    let mut item = key(format!("{OUTBOX_PREFIX}{}", event.id), OUTBOX_SK);
    item.insert(EVENT_ATTR.to_owned(), s(json(event)?));
    item.insert(TTL.to_owned(), ttl_at(now + KEEP));
    Ok(item)
}

/// The transaction action that writes `event` into the outbox.
pub(crate) fn put(table: &Table, event: &Event) -> Result<TransactWriteItem> {
    table.put_new(item(event, table.now())?)
}

/// The event of a stream record, given its partition key and `event` attribute: `Ok(None)` for
/// items that are not outbox items, an error for an outbox item that does not decode.
pub fn event_of(pk: &str, event_json: Option<&str>) -> Result<Option<Event>> {
    if !pk.starts_with(OUTBOX_PREFIX) {
        return Ok(None);
    }
    let json = event_json.ok_or_else(|| {
        Error::unexpected(format!("outbox item {pk} has no `{EVENT_ATTR}` attribute"))
    })?;
    serde_json::from_str(json)
        .map(Some)
        .map_err(|e| Error::unexpected(format!("outbox item {pk} does not decode: {e}")))
}

#[cfg(test)]
mod tests {
    use openwa_core::event::EventType;

    use super::*;

    #[test]
    fn an_outbox_item_gives_its_event_back_and_other_items_give_none() {
        let at = chrono::Utc::now();
        let event = Event::new(
            EventType::MessageQueued,
            None,
            at,
            serde_json::json!({"x": 1}),
        );
        let item = item(&event, at).unwrap();
        let pk = item["pk"].as_s().unwrap();
        let json = item[EVENT_ATTR].as_s().unwrap();
        assert_eq!(event_of(pk, Some(json)).unwrap(), Some(event));
        assert_eq!(event_of("SESSION#s", None).unwrap(), None);
        assert!(event_of(pk, None).is_err());
        assert!(event_of(pk, Some("{")).is_err());
    }
}
