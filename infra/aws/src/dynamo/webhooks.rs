//! [`WebhookStore`] on DynamoDB.
//!
//! A webhook is one item, `pk = WEBHOOK#<id>, sk = WEBHOOK`: its JSON `body` plus the signing
//! secrets (the entity does not serialise them; the table is encrypted at rest, as the
//! embedded database file is private). `gsi1` (`WEBHOOKS`) lists all newest first; `gsi2` is
//! sparse and holds only active ones under `ACTIVEHOOKS#<session>` or `ACTIVEHOOKS#*` for
//! all-session subscriptions, so fan-out's `active_for` is at most two small queries however
//! many subscriptions exist. For a batch of events, `active_for_sessions` asks the all-session
//! partition once and each session's once, concurrently; the deliver worker reads a batch's
//! webhooks with one `BatchGetItem` (`get_many`), fresh for every batch.

use std::sync::Arc;

use async_trait::async_trait;
use openwa_core::error::{Error, Result};
use openwa_core::id::{SessionId, WebhookId};
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::WebhookStore;
use openwa_core::webhook::{Webhook, WebhookSecret};

use super::codec::{
    Expr, Item, Listing, get_json, get_s, json, key, opt_s, query_all, s, sort_key,
};
use super::{Table, Written};
use crate::context::AwsContext;
use crate::resources::table::{GSI1, GSI2, PK, SK};

// Attribute names.
const BODY: &str = "body";
const SECRET: &str = "secret";
const PREVIOUS_SECRET: &str = "previous_secret";
const SESSION_ID: &str = "session_id";

/// Partition value of `gsi1`: every webhook.
const LISTED: &str = "WEBHOOKS";

const NOT_FOUND: Error = Error::NotFound {
    resource: "webhook",
};

pub struct DynamoWebhookStore {
    table: Table,
}

impl DynamoWebhookStore {
    pub fn new(ctx: Arc<AwsContext>) -> Self {
        Self {
            table: Table::new(ctx),
        }
    }
}

fn webhook_key(id: &str) -> Item {
    key(format!("WEBHOOK#{id}"), "WEBHOOK")
}

/// `gsi2`'s partition of active subscriptions to `session` (`None`: to every session).
fn active_partition(session: Option<&SessionId>) -> String {
    format!("ACTIVEHOOKS#{}", session.map_or("*", SessionId::as_str))
}

fn encode(w: &Webhook) -> Result<Item> {
    let mut item = webhook_key(w.id.as_str());
    let listed = sort_key(w.created_at, w.id.as_str())?;
    let mut put = |name: &str, v| {
        item.insert(name.to_owned(), v);
    };
    put(BODY, s(json(w)?));
    put(GSI1.pk, s(LISTED));
    put(GSI1.sk, s(listed.clone()));
    if w.active {
        put(GSI2.pk, s(active_partition(w.session_id.as_ref())));
        put(GSI2.sk, s(listed));
    }
    if let Some(session) = &w.session_id {
        put(SESSION_ID, s(session.as_str()));
    }
    if let Some(secret) = &w.secret {
        put(SECRET, s(secret.expose()));
    }
    if let Some(secret) = &w.previous_secret {
        put(PREVIOUS_SECRET, s(secret.expose()));
    }
    Ok(item)
}

fn secret(item: &Item, name: &str) -> Result<Option<WebhookSecret>> {
    opt_s(item, name)?
        .map(|raw| {
            WebhookSecret::parse(raw)
                .map_err(|_| Error::unexpected("a stored webhook secret does not parse"))
        })
        .transpose()
}

fn decode(item: &Item) -> Result<Webhook> {
    let mut w: Webhook = get_json(item, BODY)?;
    w.secret = secret(item, SECRET)?;
    w.previous_secret = secret(item, PREVIOUS_SECRET)?;
    Ok(w)
}

impl DynamoWebhookStore {
    /// Every item of one `gsi2` partition, oldest first.
    async fn active_in(&self, partition: String) -> Result<Vec<Item>> {
        active_in(&self.table, partition).await
    }
}

/// Every item of one `gsi2` partition of `table`, oldest first.
async fn active_in(table: &Table, partition: String) -> Result<Vec<Item>> {
    let mut e = Expr::new();
    let condition = format!("{} = {}", e.name(GSI2.pk), e.value(s(partition)));
    let query = table
        .query()
        .index_name(GSI2.name)
        .key_condition_expression(condition)
        .set_expression_attribute_names(e.names())
        .set_expression_attribute_values(e.values());
    query_all(query, usize::MAX).await
}

#[async_trait]
impl WebhookStore for DynamoWebhookStore {
    #[tracing::instrument(skip_all, fields(webhook_id = %webhook.id))]
    async fn create(&self, webhook: &Webhook) -> Result<()> {
        let put = self
            .table
            .put_item()
            .set_item(Some(encode(webhook)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        match self.table.put(put).await? {
            Written::Done(_) => Ok(()),
            Written::Refused(_) => Err(Error::conflict(format!("webhook {} exists", webhook.id))),
        }
    }

    async fn get(&self, id: &WebhookId) -> Result<Webhook> {
        match self.table.get(webhook_key(id.as_str())).await? {
            Some(item) => decode(&item),
            None => Err(NOT_FOUND),
        }
    }

    async fn list(&self, session: Option<&SessionId>, page: &PageRequest) -> Result<Page<Webhook>> {
        let mut e = Expr::new();
        let condition = format!("{} = {}", e.name(GSI1.pk), e.value(s(LISTED)));
        let mut query = self
            .table
            .query()
            .index_name(GSI1.name)
            .key_condition_expression(condition)
            .scan_index_forward(false);
        if let Some(session) = session {
            let attr = e.name(SESSION_ID);
            let v = e.value(s(session.as_str()));
            query =
                query.filter_expression(format!("attribute_not_exists({attr}) OR {attr} = {v}"));
        }
        let listing = Listing {
            query: query
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values()),
            key_attrs: &[PK, SK, GSI1.pk, GSI1.sk],
            partition: (GSI1.pk, LISTED.to_owned()),
            filtered: session.is_some(),
        };
        listing.fetch(page, |item| decode(item).map(Some)).await
    }

    async fn active_for(&self, session: Option<&SessionId>) -> Result<Vec<Webhook>> {
        let everywhere = self.active_in(active_partition(None));
        let mut items = match session {
            Some(s) => {
                let (all, own) =
                    tokio::try_join!(everywhere, self.active_in(active_partition(Some(s))))?;
                all.into_iter().chain(own).collect()
            }
            None => everywhere.await?,
        };
        // Oldest first, like the embedded store.
        items.sort_by(|a, b| get_s(a, GSI2.sk).ok().cmp(&get_s(b, GSI2.sk).ok()));
        items.iter().map(decode).collect()
    }

    #[tracing::instrument(skip_all, fields(sessions = sessions.len()))]
    async fn active_for_sessions(&self, sessions: &[SessionId]) -> Result<Vec<Webhook>> {
        let partitions: std::collections::BTreeSet<String> = std::iter::once(None)
            .chain(sessions.iter().map(Some))
            .map(active_partition)
            .collect();
        let mut queries = tokio::task::JoinSet::new();
        for partition in partitions {
            let table = self.table.clone();
            queries.spawn(async move { active_in(&table, partition).await });
        }
        let mut items = Vec::new();
        while let Some(done) = queries.join_next().await {
            items.extend(done.map_err(|e| Error::unexpected(format!("a webhook query: {e}")))??);
        }
        // Oldest first, like the embedded store.
        items.sort_by(|a, b| get_s(a, GSI2.sk).ok().cmp(&get_s(b, GSI2.sk).ok()));
        items.iter().map(decode).collect()
    }

    #[tracing::instrument(skip_all, fields(webhooks = ids.len()))]
    async fn get_many(&self, ids: &[WebhookId]) -> Result<Vec<Webhook>> {
        // BatchGetItem refuses a key asked for twice.
        let unique: std::collections::BTreeSet<&str> = ids.iter().map(WebhookId::as_str).collect();
        let keys = unique.into_iter().map(webhook_key).collect();
        self.table
            .get_many(keys)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    #[tracing::instrument(skip_all, fields(webhook_id = %webhook.id))]
    async fn update(&self, webhook: &Webhook) -> Result<()> {
        let put = self
            .table
            .put_item()
            .set_item(Some(encode(webhook)?))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        match self.table.put(put).await? {
            Written::Done(_) => Ok(()),
            Written::Refused(_) => Err(NOT_FOUND),
        }
    }

    #[tracing::instrument(skip_all, fields(webhook_id = %id))]
    async fn delete(&self, id: &WebhookId) -> Result<()> {
        let delete = self
            .table
            .delete_item()
            .set_key(Some(webhook_key(id.as_str())))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        match self.table.delete(delete).await? {
            Written::Done(_) => Ok(()),
            Written::Refused(_) => Err(NOT_FOUND),
        }
    }
}
