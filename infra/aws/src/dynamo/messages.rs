//! [`MessageStore`] on DynamoDB: idempotent inserts on `(session, idempotency key)`,
//! forward-only status changes, lookups by WhatsApp id and filtered newest-first listings.
//!
//! A session's messages share one partition, `MSGS#<session>`, with the message id as sort
//! key; the idempotency guard of a keyed message lives there too (`IDEM#<key>`), so deleting a
//! session's messages is one partition walk. The message is its JSON `body` plus attributes
//! for what changes later (`status`, `wa_id`, `failure`, `updated_at`), which override the body
//! on read, so a status change is one conditional `UpdateItem`.
//!
//! Listing is by `gsi1` (`MSGS#<session>`, `<created>#<id>`) rather than by id: inbound messages
//! carry WhatsApp's timestamp, which need not follow the order their ids were minted in.
//! `gsi2` (`WA#<session>#<wa id>`) finds a message by its WhatsApp id.
//!
//! An accepted send ([`MessageStore::accept`]) is one `TransactWriteItems`: a `ConditionCheck`
//! that the session exists, the message, its guard, the audit entry and the `message.queued`
//! event's outbox item (`outbox`).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem};
use openwa_core::error::{Error, Result};
use openwa_core::id::{MessageId, SessionId};
use openwa_core::jid::WaMessageId;
use openwa_core::message::{Message, MessageStatus, StatusUpdate};
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::{Acceptance, Inserted, MessageFilter, MessageStore};

use super::codec::{
    Expr, Item, Listing, get_json, get_s, get_time, json, key, opt_json, opt_s, query_all, s,
    sort_key, time, ttl_at,
};
use super::keys::audit_item;
use super::{Table, Written, outbox, sessions};
use crate::context::AwsContext;
use crate::resources::table::{GSI1, GSI2, PK, SK, TTL};

// Attribute names.
const BODY: &str = "body";
const FINGERPRINT: &str = "fingerprint";
const STATUS: &str = "status";
const WA_ID: &str = "wa_id";
const FAILURE: &str = "failure";
const UPDATED_AT: &str = "updated_at";
const CHAT: &str = "chat";
const DIRECTION: &str = "direction";
/// On a guard item: the message holding the idempotency key.
const MESSAGE_ID: &str = "message_id";

/// Sort-key prefix of idempotency guards (message ids start with `msg_`).
const GUARD_PREFIX: &str = "IDEM#";

const NOT_FOUND: Error = Error::NotFound {
    resource: "message",
};

pub struct DynamoMessageStore {
    table: Table,
}

impl DynamoMessageStore {
    pub fn new(ctx: Arc<AwsContext>) -> Self {
        Self {
            table: Table::new(ctx),
        }
    }
}

fn partition(session: &SessionId) -> String {
    format!("MSGS#{session}")
}

fn wa_partition(session: &SessionId, wa_id: &WaMessageId) -> String {
    format!("WA#{session}#{wa_id}")
}

fn message_key(session: &SessionId, id: &str) -> Item {
    key(partition(session), id)
}

fn encode(m: &Message) -> Result<Item> {
    let mut item = message_key(&m.session_id, m.id.as_str());
    let listed = sort_key(m.created_at, m.id.as_str())?;
    let mut put = |k: &str, v| {
        item.insert(k.to_owned(), v);
    };
    put(BODY, s(json(m)?));
    put(STATUS, s(m.status.as_str()));
    put(UPDATED_AT, time(m.updated_at)?);
    put(CHAT, s(m.chat_id.as_str()));
    put(DIRECTION, s(m.direction.as_str()));
    put(GSI1.pk, s(partition(&m.session_id)));
    put(GSI1.sk, s(listed.clone()));
    if let Some(fp) = &m.request_fingerprint {
        put(FINGERPRINT, s(fp));
    }
    if let Some(failure) = &m.failure {
        put(FAILURE, s(json(failure)?));
    }
    if let Some(wa) = &m.wa_id {
        put(WA_ID, s(wa.to_string()));
        put(GSI2.pk, s(wa_partition(&m.session_id, wa)));
        put(GSI2.sk, s(listed));
    }
    Ok(item)
}

fn decode(item: &Item) -> Result<Message> {
    let mut m: Message = get_json(item, BODY)?;
    m.status = MessageStatus::parse(get_s(item, STATUS)?)?;
    m.updated_at = get_time(item, UPDATED_AT)?;
    m.wa_id = opt_s(item, WA_ID)?.map(WaMessageId::parse).transpose()?;
    m.failure = opt_json(item, FAILURE)?;
    m.request_fingerprint = opt_s(item, FINGERPRINT)?.map(str::to_owned);
    Ok(m)
}

/// The statuses from which `next` is progress: the condition of a status change.
fn may_become(next: MessageStatus) -> Vec<MessageStatus> {
    MessageStatus::ALL
        .into_iter()
        .filter(|from| from.can_become(next))
        .collect()
}

impl DynamoMessageStore {
    /// The message holding an idempotency key, after an insert lost to it.
    async fn holder(&self, m: &Message, guard: Option<&Item>) -> Result<Inserted> {
        let key = m.idempotency_key.as_deref().unwrap_or_default();
        let guard = match guard {
            Some(g) => Some(g.clone()),
            None => {
                let guard_key = key_of_guard(&m.session_id, key);
                self.table.get(guard_key).await?
            }
        };
        let id = guard
            .as_ref()
            .map(|g| get_s(g, MESSAGE_ID).map(str::to_owned))
            .transpose()?;
        let existing = match id {
            Some(id) => self.table.get(message_key(&m.session_id, &id)).await?,
            None => None,
        };
        match existing {
            Some(item) => Ok(Inserted::Existing(decode(&item)?)),
            // The holder is being deleted with its session.
            None => Err(Error::conflict(
                "the idempotency key's message is being deleted",
            )),
        }
    }
}

impl DynamoMessageStore {
    /// The message's item and, under a retention setting, the TTL it and its guard carry
    /// (the message and its idempotency key expire together).
    fn item_with_ttl(&self, message: &Message) -> Result<(Item, Option<AttributeValue>)> {
        let mut item = encode(message)?;
        let retention = self.table.settings().message_retention_days;
        let ttl = (retention > 0)
            .then(|| ttl_at(message.created_at + chrono::Duration::days(i64::from(retention))));
        if let Some(ttl) = &ttl {
            item.insert(TTL.to_owned(), ttl.clone());
        }
        Ok((item, ttl))
    }

    /// The transactional put of the guard holding `idempotency_key` for `message`. An expired
    /// guard no longer holds its key: the key is free again.
    fn guard_put(
        &self,
        message: &Message,
        idempotency_key: &str,
        ttl: Option<AttributeValue>,
    ) -> Result<TransactWriteItem> {
        let mut guard = key_of_guard(&message.session_id, idempotency_key);
        guard.insert(MESSAGE_ID.to_owned(), s(message.id.as_str()));
        if let Some(ttl) = ttl {
            guard.insert(TTL.to_owned(), ttl);
        }
        self.table.put_new_or_expired(guard)
    }
}

fn key_of_guard(session: &SessionId, idempotency_key: &str) -> Item {
    key(
        partition(session),
        format!("{GUARD_PREFIX}{idempotency_key}"),
    )
}

#[async_trait]
impl MessageStore for DynamoMessageStore {
    #[tracing::instrument(skip_all, fields(session_id = %message.session_id, message_id = %message.id))]
    async fn insert(&self, message: &Message) -> Result<Inserted> {
        let (item, ttl) = self.item_with_ttl(message)?;
        let exists = || Error::conflict(format!("message {} exists", message.id));
        let Some(idempotency_key) = &message.idempotency_key else {
            let put = self
                .table
                .put_item()
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK);
            return match self.table.put(put).await? {
                Written::Done(_) => Ok(Inserted::Created),
                Written::Refused(_) => Err(exists()),
            };
        };
        // The message and its guard, in one transaction: one call in the common case.
        let actions = vec![
            self.table.put_new(item)?,
            self.guard_put(message, idempotency_key, ttl)?,
        ];
        let Some(reasons) = self.table.transact(actions).await? else {
            return Ok(Inserted::Created);
        };
        match reasons.as_slice() {
            [_, guard] if guard.condition_failed() => {
                self.holder(message, guard.old.as_ref()).await
            }
            _ => Err(exists()),
        }
    }

    /// One `TransactWriteItems`: the session must exist (a `ConditionCheck`), the message and
    /// its idempotency guard are created, the audit entry and the event's outbox item written.
    #[tracing::instrument(skip_all, fields(session_id = %acceptance.message.session_id, message_id = %acceptance.message.id))]
    async fn accept(&self, acceptance: &Acceptance) -> Result<Inserted> {
        let message = &acceptance.message;
        let (item, ttl) = self.item_with_ttl(message)?;
        let mut actions = vec![
            self.table
                .must_exist(sessions::session_key(message.session_id.as_str()))?,
            self.table.put_new(item)?,
            self.table.put_new(audit_item(
                &acceptance.audit,
                self.table.settings().audit_retention_days,
            )?)?,
            outbox::put(&self.table, &acceptance.event)?,
        ];
        if let Some(idempotency_key) = &message.idempotency_key {
            actions.push(self.guard_put(message, idempotency_key, ttl)?);
        }
        let Some(reasons) = self.table.transact(actions).await? else {
            return Ok(Inserted::Created);
        };
        let failed = |i: usize| reasons.get(i).is_some_and(|r| r.condition_failed());
        if failed(0) {
            return Err(Error::NotFound {
                resource: "session",
            });
        }
        if failed(4) {
            let guard = reasons.get(4).and_then(|r| r.old.as_ref());
            return self.holder(message, guard).await;
        }
        if failed(1) {
            return Err(Error::conflict(format!("message {} exists", message.id)));
        }
        Err(Error::conflict(
            "the audit entry or event of this send already exists",
        ))
    }

    async fn get(&self, session: &SessionId, id: &MessageId) -> Result<Message> {
        match self.table.get(message_key(session, id.as_str())).await? {
            Some(item) if !self.table.expired(&item) => decode(&item),
            _ => Err(NOT_FOUND),
        }
    }

    async fn get_by_wa_id(&self, session: &SessionId, wa_id: &WaMessageId) -> Result<Message> {
        let mut e = Expr::new();
        let condition = format!(
            "{} = {}",
            e.name(GSI2.pk),
            e.value(s(wa_partition(session, wa_id)))
        );
        let out = self
            .table
            .query()
            .index_name(GSI2.name)
            .key_condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| crate::error::sdk_error("Query", e))?;
        match out.items().first() {
            Some(item) if !self.table.expired(item) => decode(item),
            _ => Err(NOT_FOUND),
        }
    }

    async fn list(
        &self,
        session: &SessionId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Page<Message>> {
        let mut e = Expr::new();
        let key_condition = format!("{} = {}", e.name(GSI1.pk), e.value(s(partition(session))));
        let mut conditions = Vec::new();
        if let Some(chat) = &filter.chat_id {
            conditions.push(format!("{} = {}", e.name(CHAT), e.value(s(chat.as_str()))));
        }
        if let Some(direction) = filter.direction {
            let v = e.value(s(direction.as_str()));
            conditions.push(format!("{} = {v}", e.name(DIRECTION)));
        }
        if let Some(status) = filter.status {
            let v = e.value(s(status.as_str()));
            conditions.push(format!("{} = {v}", e.name(STATUS)));
        }
        let mut query = self
            .table
            .query()
            .index_name(GSI1.name)
            .key_condition_expression(key_condition)
            .scan_index_forward(false);
        if !conditions.is_empty() {
            query = query.filter_expression(conditions.join(" AND "));
        }
        let listing = Listing {
            query: query
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values()),
            key_attrs: &[PK, SK, GSI1.pk, GSI1.sk],
            partition: (GSI1.pk, partition(session)),
            filtered: !conditions.is_empty() || self.table.settings().message_retention_days > 0,
        };
        let table = &self.table;
        listing
            .fetch(page, |item| {
                if table.expired(item) {
                    Ok(None)
                } else {
                    decode(item).map(Some)
                }
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(session_id = %session, message_id = %id, status = update.status.as_str()))]
    async fn update_status(
        &self,
        session: &SessionId,
        id: &MessageId,
        update: &StatusUpdate,
    ) -> Result<Message> {
        let from = may_become(update.status);
        if from.is_empty() {
            // Nothing can become this status: the stored message stays as it is.
            return self.get(session, id).await;
        }
        let mut e = Expr::new();
        e.set(STATUS, s(update.status.as_str()))
            .set(UPDATED_AT, time(update.at)?);
        if let Some(wa) = &update.wa_id {
            e.set(WA_ID, s(wa.to_string()))
                .set(GSI2.pk, s(wa_partition(session, wa)))
                .copy(GSI2.sk, GSI1.sk);
        }
        if let Some(failure) = &update.failure {
            e.set(FAILURE, s(json(failure)?));
        }
        let allowed: Vec<String> = from.into_iter().map(|st| e.value(s(st.as_str()))).collect();
        let condition = format!(
            "attribute_exists({}) AND {} IN ({})",
            e.name(PK),
            e.name(STATUS),
            allowed.join(", ")
        );
        let write = self
            .table
            .update_with(message_key(session, id.as_str()), &e, &condition)
            .return_values(ReturnValue::AllNew);
        match self.table.update(write).await? {
            Written::Done(Some(item)) => decode(&item),
            Written::Done(None) => Err(Error::unexpected("UpdateItem returned no attributes")),
            Written::Refused(None) => Err(NOT_FOUND),
            // Not progress: the message as it is.
            Written::Refused(Some(old)) => decode(&old),
        }
    }

    #[tracing::instrument(skip_all, fields(session_id = %session))]
    async fn delete_session(&self, session: &SessionId) -> Result<u64> {
        let mut e = Expr::new();
        let condition = format!("{} = {}", e.name(PK), e.value(s(partition(session))));
        let projection = format!("{}, {}", e.name(PK), e.name(SK));
        let query = self
            .table
            .query()
            .key_condition_expression(condition)
            .projection_expression(projection)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .consistent_read(true);
        let keys = query_all(query, usize::MAX).await?;
        let messages = keys
            .iter()
            .filter(|k| get_s(k, SK).is_ok_and(|sk| !sk.starts_with(GUARD_PREFIX)))
            .count() as u64;
        self.table.delete_all(keys).await?;
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use openwa_core::content::{Content, MessageType};
    use openwa_core::jid::ChatId;
    use openwa_core::message::{Direction, Failure};

    fn message() -> Message {
        let chat = ChatId::parse("491510000001@c.us").unwrap();
        Message {
            id: MessageId::generate(),
            wa_id: Some(WaMessageId::outgoing(&chat, "3EB0AB").unwrap()),
            session_id: SessionId::parse("sales").unwrap(),
            chat_id: chat,
            direction: Direction::Outbound,
            author: None,
            kind: MessageType::Text,
            content: Content::Text {
                body: "hi".into(),
                link_preview: false,
            },
            reply_to: None,
            mentions: Vec::new(),
            status: MessageStatus::Failed,
            failure: Some(Failure {
                code: "engine_error".into(),
                message: "boom".into(),
            }),
            idempotency_key: Some("k".into()),
            request_fingerprint: Some("fp".into()),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_message_survives_its_item_encoding_with_its_fingerprint() {
        let m = message();
        assert_eq!(decode(&encode(&m).unwrap()).unwrap(), m);
    }

    #[test]
    fn status_changes_are_conditional_on_statuses_that_may_progress() {
        assert_eq!(
            may_become(MessageStatus::Sent),
            vec![MessageStatus::Queued, MessageStatus::Sending]
        );
        assert!(may_become(MessageStatus::Received).is_empty());
    }
}
