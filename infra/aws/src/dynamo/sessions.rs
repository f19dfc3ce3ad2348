//! [`SessionStore`] on DynamoDB, including the runner lease (claim, renew, release) and the
//! epoch-fenced runtime writes.
//!
//! A session is one item, `pk = SESSION#<id>, sk = META`, with one attribute per field (JSON
//! strings for the nested ones), so every write is a single conditional `UpdateItem` that
//! touches only its fields and returns the new item: no read-modify-write, no lost updates.
//! A failed condition returns the old item (`ALL_OLD`), which tells `NotFound` (no item) from
//! `Conflict`/`StaleEpoch` without a second read. Every stored change increments `version`.
//!
//! Indexes: `gsi1` lists sessions newest first (`SESSIONS`, `<created>#<id>`); `gsi2` is sparse
//! and holds only sessions desired running (`CLAIMABLE`, `<lease expiry or 0>#<id>`), so
//! `claimable` is one range query for keys before "now".

use async_trait::async_trait;
use openwa_core::clock::Timestamp;
use openwa_core::error::{Error, Result};
use openwa_core::id::SessionId;
use openwa_core::page::{Page, PageRequest};
use openwa_core::ports::{SessionFilter, SessionStore};
use openwa_core::session::{DesiredState, Lease, RuntimeUpdate, Session, SessionStatus};
use std::collections::BTreeSet;
use std::sync::Arc;

use super::codec::{
    Expr, Item, Listing, decode_cursor, encode_cursor, get_json, get_n, get_s, get_time, json, key,
    n, opt_json, opt_s, opt_time, query_all, s, sort_key, time, time_key,
};
use super::{Table, Written};
use crate::context::AwsContext;
use crate::resources::table::{GSI1, GSI2, PK, SK};

/// Partition value of `gsi1`: every session.
const LISTED: &str = "SESSIONS";
/// Allowlists up to this long are listed by reading their sessions directly.
const BATCH_LISTING: usize = 100;
/// Partition value of `gsi2`: sessions desired running.
const CLAIMABLE: &str = "CLAIMABLE";

// Attribute names.
const ID: &str = "id";
const NAME: &str = "name";
const STATUS: &str = "status";
const DESIRED: &str = "desired";
const ME: &str = "me";
const QR: &str = "qr";
const PAIRING_CODE: &str = "pairing_code";
const CONFIG: &str = "config";
const LAST_ERROR: &str = "last_error";
const OWNER: &str = "owner";
const EPOCH: &str = "epoch";
const LEASE_UNTIL: &str = "lease_until";
const CREATED_AT: &str = "created_at";
const UPDATED_AT: &str = "updated_at";
const VERSION: &str = "version";

const NOT_FOUND: Error = Error::NotFound {
    resource: "session",
};

pub struct DynamoSessionStore {
    table: Table,
}

impl DynamoSessionStore {
    pub fn new(ctx: Arc<AwsContext>) -> Self {
        Self {
            table: Table::new(ctx),
        }
    }
}

pub(crate) fn session_key(id: &str) -> Item {
    key(format!("SESSION#{id}"), "META")
}

/// `gsi2`'s sort key: the lease expiry while someone holds the lease, else 0, so "no live
/// lease at `now`" is "key before `<now>$`".
fn claim_key(id: &str, lease: &Lease) -> Result<String> {
    match (&lease.owner, lease.until) {
        (Some(_), Some(until)) => Ok(format!("{}#{id}", time_key(until)?)),
        _ => Ok(format!("{:019}#{id}", 0)),
    }
}

fn encode(se: &Session) -> Result<Item> {
    let id = se.id.as_str();
    let mut item = session_key(id);
    let mut put = |k: &str, v| {
        item.insert(k.to_owned(), v);
    };
    put(ID, s(id));
    put(STATUS, s(se.status.as_str()));
    put(DESIRED, s(se.desired.as_str()));
    put(CONFIG, s(json(&se.config)?));
    put(EPOCH, n(se.lease.epoch));
    put(CREATED_AT, time(se.created_at)?);
    put(UPDATED_AT, time(se.updated_at)?);
    put(VERSION, n(se.version));
    put(GSI1.pk, s(LISTED));
    put(GSI1.sk, s(sort_key(se.created_at, id)?));
    put(GSI2.sk, s(claim_key(id, &se.lease)?));
    if se.desired == DesiredState::Running {
        put(GSI2.pk, s(CLAIMABLE));
    }
    if let Some(v) = &se.name {
        put(NAME, s(v));
    }
    if let Some(v) = &se.me {
        put(ME, s(json(v)?));
    }
    if let Some(v) = &se.qr {
        put(QR, s(json(v)?));
    }
    if let Some(v) = &se.pairing_code {
        put(PAIRING_CODE, s(json(v)?));
    }
    if let Some(v) = &se.last_error {
        put(LAST_ERROR, s(v));
    }
    if let Some(v) = &se.lease.owner {
        put(OWNER, s(v));
    }
    if let Some(v) = se.lease.until {
        put(LEASE_UNTIL, time(v)?);
    }
    Ok(item)
}

fn decode(item: &Item) -> Result<Session> {
    Ok(Session {
        id: SessionId::parse(get_s(item, ID)?)?,
        name: opt_s(item, NAME)?.map(str::to_owned),
        status: SessionStatus::parse(get_s(item, STATUS)?)?,
        desired: DesiredState::parse(get_s(item, DESIRED)?)?,
        me: opt_json(item, ME)?,
        qr: opt_json(item, QR)?,
        pairing_code: opt_json(item, PAIRING_CODE)?,
        lease: Lease {
            owner: opt_s(item, OWNER)?.map(str::to_owned),
            epoch: get_n(item, EPOCH)?,
            until: opt_time(item, LEASE_UNTIL)?,
        },
        config: get_json(item, CONFIG)?,
        last_error: opt_s(item, LAST_ERROR)?.map(str::to_owned),
        created_at: get_time(item, CREATED_AT)?,
        updated_at: get_time(item, UPDATED_AT)?,
        version: get_n(item, VERSION)?,
    })
}

impl DynamoSessionStore {
    /// A listing restricted to a short allowlist: one `BatchGetItem` of the listed sessions
    /// instead of a walk over every session, paged in memory with the same cursor as the index
    /// listing (whose sort key it compares against).
    async fn list_only(
        &self,
        only: &BTreeSet<SessionId>,
        status: Option<SessionStatus>,
        page: &PageRequest,
    ) -> Result<Page<Session>> {
        const KEY_ATTRS: &[&str] = &[PK, SK, GSI1.pk, GSI1.sk];
        let after = page
            .cursor()
            .map(|c| decode_cursor(c, KEY_ATTRS, GSI1.pk, LISTED))
            .transpose()?
            .map(|k| get_s(&k, GSI1.sk).map(str::to_owned))
            .transpose()?;
        let keys = only.iter().map(|id| session_key(id.as_str())).collect();
        let mut items = self.table.get_many(keys).await?;
        items.retain(|item| {
            let listed = get_s(item, GSI1.sk).unwrap_or_default();
            let in_status =
                status.is_none_or(|st| opt_s(item, STATUS).ok().flatten() == Some(st.as_str()));
            in_status && after.as_deref().is_none_or(|a| listed < a)
        });
        // Newest first.
        items.sort_by(|a, b| get_s(b, GSI1.sk).ok().cmp(&get_s(a, GSI1.sk).ok()));
        let limit = page.limit() as usize;
        let next_cursor = if items.len() > limit {
            Some(encode_cursor(&items[limit - 1], KEY_ATTRS, GSI1.pk)?)
        } else {
            None
        };
        let items = items
            .iter()
            .take(limit)
            .map(decode)
            .collect::<Result<_>>()?;
        Ok(Page { items, next_cursor })
    }
}

/// The session an update returned (`ReturnValues = ALL_NEW`).
fn returned(item: Option<Item>) -> Result<Session> {
    decode(&item.ok_or_else(|| Error::unexpected("UpdateItem returned no attributes"))?)
}

/// The condition every lease-holder write shares: the item exists and has `epoch`.
fn holder_condition(e: &mut Expr, epoch: u64, owner: Option<&str>) -> String {
    let mut cond = format!(
        "attribute_exists({}) AND {} = {}",
        e.name(PK),
        e.name(EPOCH),
        e.value(n(epoch))
    );
    if let Some(owner) = owner {
        cond.push_str(&format!(" AND {} = {}", e.name(OWNER), e.value(s(owner))));
    }
    cond
}

impl DynamoSessionStore {
    /// Runs a lease-holder write: `NotFound` without an item, `StaleEpoch` when the epoch (or
    /// owner) no longer matches.
    async fn fenced(
        &self,
        id: &SessionId,
        epoch: u64,
        e: &Expr,
        condition: &str,
    ) -> Result<Session> {
        let update = self
            .table
            .update_with(session_key(id.as_str()), e, condition)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        match self.table.update(update).await? {
            Written::Done(item) => returned(item),
            Written::Refused(None) => Err(NOT_FOUND),
            Written::Refused(Some(_)) => Err(Error::StaleEpoch { epoch }),
        }
    }
}

#[async_trait]
impl SessionStore for DynamoSessionStore {
    #[tracing::instrument(skip_all, fields(session_id = %session.id))]
    async fn create(&self, session: &Session) -> Result<()> {
        let put = self
            .table
            .put_item()
            .set_item(Some(encode(session)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        match self.table.put(put).await? {
            Written::Done(_) => Ok(()),
            Written::Refused(_) => Err(Error::conflict(format!("session {} exists", session.id))),
        }
    }

    async fn get(&self, id: &SessionId) -> Result<Session> {
        match self.table.get(session_key(id.as_str())).await? {
            Some(item) => decode(&item),
            None => Err(NOT_FOUND),
        }
    }

    async fn list(&self, filter: &SessionFilter, page: &PageRequest) -> Result<Page<Session>> {
        if filter.only.as_ref().is_some_and(|only| only.is_empty()) {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        if let Some(only) = filter.only.as_ref().filter(|o| o.len() <= BATCH_LISTING) {
            return self.list_only(only, filter.status, page).await;
        }
        let mut e = Expr::new();
        let key_condition = format!("{} = {}", e.name(GSI1.pk), e.value(s(LISTED)));
        let mut query = self
            .table
            .query()
            .index_name(GSI1.name)
            .scan_index_forward(false);
        if let Some(status) = filter.status {
            let cond = format!("{} = {}", e.name(STATUS), e.value(s(status.as_str())));
            query = query.filter_expression(cond);
        }
        let listing = Listing {
            query: query
                .key_condition_expression(key_condition)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values()),
            key_attrs: &[PK, SK, GSI1.pk, GSI1.sk],
            partition: (GSI1.pk, LISTED.to_owned()),
            filtered: filter.only.is_some() || filter.status.is_some(),
        };
        // The allowlist is applied here: it can be longer than a filter expression allows.
        listing
            .fetch(page, |item| {
                let session = decode(item)?;
                let allowed = filter.only.as_ref().is_none_or(|o| o.contains(&session.id));
                Ok(allowed.then_some(session))
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(session_id = %session.id))]
    async fn update(&self, session: &Session) -> Result<Session> {
        let mut e = Expr::new();
        e.set_or_remove(NAME, session.name.as_deref().map(s))
            .set(DESIRED, s(session.desired.as_str()))
            .set(CONFIG, s(json(&session.config)?))
            .set(UPDATED_AT, time(session.updated_at)?)
            .increment(VERSION, 1);
        // The session enters or leaves the claimable index with its desired state.
        let claimable = (session.desired == DesiredState::Running).then(|| s(CLAIMABLE));
        e.set_or_remove(GSI2.pk, claimable);
        let condition = format!(
            "attribute_exists({}) AND {} = {}",
            e.name(PK),
            e.name(VERSION),
            e.value(n(session.version))
        );
        let update = self
            .table
            .update_with(session_key(session.id.as_str()), &e, &condition)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        match self.table.update(update).await? {
            Written::Done(item) => returned(item),
            Written::Refused(None) => Err(NOT_FOUND),
            Written::Refused(Some(_)) => {
                Err(Error::conflict("the session was changed since it was read"))
            }
        }
    }

    #[tracing::instrument(skip_all, fields(session_id = %id))]
    async fn delete(&self, id: &SessionId) -> Result<()> {
        let delete = self
            .table
            .delete_item()
            .set_key(Some(session_key(id.as_str())))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        match self.table.delete(delete).await? {
            Written::Done(_) => Ok(()),
            Written::Refused(_) => Err(NOT_FOUND),
        }
    }

    async fn claimable(&self, now: Timestamp, limit: u32) -> Result<Vec<SessionId>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut e = Expr::new();
        // `$` sorts right after `#`: every key of a lease that expired at or before `now`.
        let bound = format!("{}$", time_key(now)?);
        let condition = format!(
            "{} = {} AND {} < {}",
            e.name(GSI2.pk),
            e.value(s(CLAIMABLE)),
            e.name(GSI2.sk),
            e.value(s(bound))
        );
        let projection = e.name(ID);
        let query = self
            .table
            .query()
            .index_name(GSI2.name)
            .key_condition_expression(condition)
            .projection_expression(projection)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .limit(limit.min(1000) as i32);
        query_all(query, limit as usize)
            .await?
            .iter()
            .map(|item| SessionId::parse(get_s(item, ID)?))
            .collect()
    }

    #[tracing::instrument(skip_all, fields(session_id = %id, owner = %owner))]
    async fn claim(
        &self,
        id: &SessionId,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Session> {
        let lease = Lease {
            owner: Some(owner.to_owned()),
            epoch: 0,
            until: Some(until),
        };
        let mut e = Expr::new();
        e.set(OWNER, s(owner))
            .set(LEASE_UNTIL, time(until)?)
            .set(UPDATED_AT, time(now)?)
            .set(GSI2.sk, s(claim_key(id.as_str(), &lease)?))
            .increment(EPOCH, 1)
            .increment(VERSION, 1);
        let (o, u, me) = (e.name(OWNER), e.name(LEASE_UNTIL), e.value(s(owner)));
        let condition = format!(
            "attribute_exists({pk}) AND {desired} = {running} \
             AND (attribute_not_exists({o}) OR attribute_not_exists({u}) OR {u} <= {now} OR {o} = {me})",
            pk = e.name(PK),
            desired = e.name(DESIRED),
            running = e.value(s(DesiredState::Running.as_str())),
            now = e.value(time(now)?),
        );
        let update = self
            .table
            .update_with(session_key(id.as_str()), &e, &condition)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        match self.table.update(update).await? {
            Written::Done(item) => returned(item),
            Written::Refused(None) => Err(NOT_FOUND),
            Written::Refused(Some(old)) => {
                if decode(&old)?.desired != DesiredState::Running {
                    Err(Error::conflict("the session is not meant to run"))
                } else {
                    Err(Error::conflict("another runner holds the lease"))
                }
            }
        }
    }

    #[tracing::instrument(skip_all, fields(session_id = %id, epoch = epoch))]
    async fn renew(&self, id: &SessionId, owner: &str, epoch: u64, until: Timestamp) -> Result<()> {
        let lease = Lease {
            owner: Some(owner.to_owned()),
            epoch,
            until: Some(until),
        };
        let mut e = Expr::new();
        e.set(LEASE_UNTIL, time(until)?)
            .set(GSI2.sk, s(claim_key(id.as_str(), &lease)?))
            .increment(VERSION, 1);
        let condition = holder_condition(&mut e, epoch, Some(owner));
        self.fenced(id, epoch, &e, &condition).await.map(|_| ())
    }

    #[tracing::instrument(skip_all, fields(session_id = %id, epoch = epoch))]
    async fn release(&self, id: &SessionId, owner: &str, epoch: u64) -> Result<()> {
        let mut e = Expr::new();
        e.remove(OWNER)
            .remove(LEASE_UNTIL)
            .set(GSI2.sk, s(claim_key(id.as_str(), &Lease::default())?))
            .increment(VERSION, 1);
        let condition = holder_condition(&mut e, epoch, Some(owner));
        self.fenced(id, epoch, &e, &condition).await.map(|_| ())
    }

    #[tracing::instrument(skip_all, fields(session_id = %id, epoch = epoch))]
    async fn update_runtime(
        &self,
        id: &SessionId,
        epoch: u64,
        update: &RuntimeUpdate,
    ) -> Result<Session> {
        let mut e = Expr::new();
        if let Some(status) = update.status {
            e.set(STATUS, s(status.as_str()));
        }
        if let Some(me) = &update.me {
            e.set_or_remove(ME, me.as_ref().map(json).transpose()?.map(s));
        }
        if let Some(qr) = &update.qr {
            e.set_or_remove(QR, qr.as_ref().map(json).transpose()?.map(s));
        }
        if let Some(code) = &update.pairing_code {
            e.set_or_remove(PAIRING_CODE, code.as_ref().map(json).transpose()?.map(s));
        }
        if let Some(err) = &update.last_error {
            e.set_or_remove(LAST_ERROR, err.as_deref().map(s));
        }
        e.set(UPDATED_AT, time(self.table.now())?)
            .increment(VERSION, 1);
        let condition = holder_condition(&mut e, epoch, None);
        self.fenced(id, epoch, &e, &condition).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn a_session_survives_its_item_encoding() {
        let now = Utc::now();
        let mut session = Session::new(
            SessionId::parse("sales").unwrap(),
            Some("Sales".into()),
            Default::default(),
            now,
        )
        .unwrap();
        session.desired = DesiredState::Running;
        session.lease = Lease {
            owner: Some("r1".into()),
            epoch: 7,
            until: Some(now + chrono::Duration::seconds(30)),
        };
        session.last_error = Some("flaky".into());

        let item = encode(&session).unwrap();

        assert_eq!(decode(&item).unwrap(), session);
        assert_eq!(get_s(&item, GSI2.pk).unwrap(), CLAIMABLE);
    }

    #[test]
    fn only_a_held_lease_moves_the_claim_key_off_zero() {
        let now = Utc::now();
        let mut lease = Lease {
            owner: None,
            epoch: 3,
            until: Some(now),
        };
        assert!(
            claim_key("a", &lease)
                .unwrap()
                .starts_with("0000000000000000000#")
        );
        lease.owner = Some("r1".into());
        assert_eq!(
            claim_key("a", &lease).unwrap(),
            format!("{}#a", time_key(now).unwrap())
        );
    }
}
