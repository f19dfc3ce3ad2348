//! Shared encodings of the DynamoDB stores: attribute values, timestamps, expression
//! placeholders, the opaque page cursor and the paged query every `list` uses.
//!
//! Times are stored as integer nanoseconds since the epoch (`N`), exact for every time between
//! 1970 and 2262. Sort keys embed them as 19 zero-padded digits, so string order is time order;
//! `<time key>#<id>` breaks ties between items of the same instant by id, like the embedded
//! stores' `(time, id)` order.
//!
//! A cursor is base64url of a JSON object holding the key attributes of the last item returned
//! (minus the partition key of the listing, which the listing itself knows): exactly what the
//! next query needs as `ExclusiveStartKey`.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use openwa_core::error::{Error, Result};
use openwa_core::page::{Page, PageRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::sdk_error;

/// One stored item (or key), as the SDK hands it over.
pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A `pk`/`sk` key.
pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        (crate::resources::table::PK.to_owned(), s(pk)),
        (crate::resources::table::SK.to_owned(), s(sk)),
    ])
}

fn malformed(name: &str) -> Error {
    Error::unexpected(format!(
        "a stored item has a malformed or missing `{name}` attribute"
    ))
}

/// A string attribute, if present.
pub(crate) fn opt_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        Some(_) => Err(malformed(name)),
    }
}

/// A string attribute that must be present.
pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    opt_s(item, name)?.ok_or_else(|| malformed(name))
}

/// A number attribute, if present.
pub(crate) fn opt_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| malformed(name)),
        Some(_) => Err(malformed(name)),
    }
}

/// A number attribute that must be present.
pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T> {
    opt_n(item, name)?.ok_or_else(|| malformed(name))
}

/// A JSON document stored as a string attribute.
pub(crate) fn get_json<T: DeserializeOwned>(item: &Item, name: &str) -> Result<T> {
    serde_json::from_str(get_s(item, name)?).map_err(|_| malformed(name))
}

pub(crate) fn opt_json<T: DeserializeOwned>(item: &Item, name: &str) -> Result<Option<T>> {
    opt_s(item, name)?
        .map(|raw| serde_json::from_str(raw).map_err(|_| malformed(name)))
        .transpose()
}

pub(crate) fn json<T: Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::unexpected(format!("encoding an item: {e}")))
}

/// Nanoseconds since the epoch; times outside 1970–2262 cannot be stored.
pub(crate) fn to_ns(t: DateTime<Utc>) -> Result<i64> {
    t.timestamp_nanos_opt()
        .filter(|ns| *ns >= 0)
        .ok_or_else(|| Error::invalid("timestamp", "must be between the years 1970 and 2262"))
}

pub(crate) fn from_ns(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

/// A timestamp attribute.
pub(crate) fn time(t: DateTime<Utc>) -> Result<AttributeValue> {
    Ok(n(to_ns(t)?))
}

pub(crate) fn get_time(item: &Item, name: &str) -> Result<DateTime<Utc>> {
    get_n(item, name).map(from_ns)
}

pub(crate) fn opt_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(opt_n(item, name)?.map(from_ns))
}

/// The 19-digit, zero-padded nanosecond form of `t` that sort keys embed.
pub(crate) fn time_key(t: DateTime<Utc>) -> Result<String> {
    Ok(format!("{:019}", to_ns(t)?))
}

/// `<time key>#<id>`: newest-first listings sort on it.
pub(crate) fn sort_key(t: DateTime<Utc>, id: &str) -> Result<String> {
    Ok(format!("{}#{id}", time_key(t)?))
}

/// Epoch seconds for the `ttl` attribute.
pub(crate) fn ttl_at(t: DateTime<Utc>) -> AttributeValue {
    n(t.timestamp())
}

/// Expression placeholders: `#name` for attribute names (many, like `status` or `owner`, are
/// reserved words) and `:vN` for values.
///
/// It also collects the clauses of an update expression (`SET …` and `REMOVE …`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    sets: Vec<String>,
    removes: Vec<String>,
}

impl Expr {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The placeholder of attribute `attr` (a plain identifier).
    pub(crate) fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    /// A fresh placeholder bound to `v`.
    pub(crate) fn value(&mut self, v: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), v);
        placeholder
    }

    /// Adds `SET attr = v`.
    pub(crate) fn set(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let clause = format!("{} = {}", self.name(attr), self.value(v));
        self.sets.push(clause);
        self
    }

    /// Adds `SET attr = v`, or `REMOVE attr` for `None`.
    pub(crate) fn set_or_remove(&mut self, attr: &str, v: Option<AttributeValue>) -> &mut Self {
        match v {
            Some(v) => self.set(attr, v),
            None => self.remove(attr),
        }
    }

    /// Adds `SET attr = attr + by`.
    pub(crate) fn increment(&mut self, attr: &str, by: i64) -> &mut Self {
        let name = self.name(attr);
        let clause = format!("{name} = {name} + {}", self.value(n(by)));
        self.sets.push(clause);
        self
    }

    /// Adds `SET attr = if_not_exists(attr, v)`: only the first write sets it.
    pub(crate) fn set_once(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let name = self.name(attr);
        let clause = format!("{name} = if_not_exists({name}, {})", self.value(v));
        self.sets.push(clause);
        self
    }

    /// Adds `SET attr = from`: copies another attribute of the same item.
    pub(crate) fn copy(&mut self, attr: &str, from: &str) -> &mut Self {
        let clause = format!("{} = {}", self.name(attr), self.name(from));
        self.sets.push(clause);
        self
    }

    pub(crate) fn remove(&mut self, attr: &str) -> &mut Self {
        let name = self.name(attr);
        self.removes.push(name);
        self
    }

    /// The update expression of the collected clauses.
    pub(crate) fn update_expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.sets.is_empty() {
            parts.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.removes.is_empty() {
            parts.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        parts.join(" ")
    }

    /// The name map, or `None` when empty (DynamoDB refuses empty maps).
    pub(crate) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub(crate) fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn bad_cursor() -> Error {
    Error::invalid("cursor", "is not a cursor this API returned")
}

/// The cursor after `item`: its `attrs`, minus the listing's partition key `skip`.
pub(crate) fn encode_cursor(item: &Item, attrs: &[&str], skip: &str) -> Result<String> {
    let mut map = serde_json::Map::new();
    for attr in attrs.iter().filter(|a| **a != skip) {
        let v = get_s(item, attr)?;
        map.insert((*attr).to_owned(), serde_json::Value::String(v.to_owned()));
    }
    Ok(URL_SAFE_NO_PAD.encode(serde_json::Value::Object(map).to_string()))
}

/// The `ExclusiveStartKey` a cursor stands for. It must name exactly `attrs` minus `skip`,
/// which is then added with the value `partition`.
pub(crate) fn decode_cursor(
    cursor: &str,
    attrs: &[&str],
    skip: &str,
    partition: &str,
) -> Result<Item> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad_cursor())?;
    let map: HashMap<String, String> = serde_json::from_slice(&raw).map_err(|_| bad_cursor())?;
    let expected = attrs.iter().filter(|a| **a != skip).count();
    if map.len() != expected || attrs.iter().any(|a| *a != skip && !map.contains_key(*a)) {
        return Err(bad_cursor());
    }
    let mut key: Item = map.into_iter().map(|(k, v)| (k, s(v))).collect();
    key.insert(skip.to_owned(), s(partition));
    Ok(key)
}

/// A paged listing over one partition of the table or of an index.
pub(crate) struct Listing {
    /// Table, index, key condition, filter, placeholders and direction already set.
    pub(crate) query: QueryFluentBuilder,
    /// The key attributes of an item as the query sees it: the table's key, plus the index's
    /// key when querying an index.
    pub(crate) key_attrs: &'static [&'static str],
    /// The partition key attribute the query selects on, and its value.
    pub(crate) partition: (&'static str, String),
    /// Whether a filter (expression or client-side) may drop items, so a query page should
    /// read more items than the page still needs.
    pub(crate) filtered: bool,
}

/// Items read per query call when filters drop some: enough to fill most pages in one call
/// without reading far past them.
const FILTERED_READ: usize = 200;

impl Listing {
    /// One page of `page.limit()` items that `decode` keeps (it returns `None` to drop one).
    /// Keeps querying until the page is full or the partition ends; the cursor points after
    /// the last item returned, so no item is seen twice.
    pub(crate) async fn fetch<T>(
        self,
        page: &PageRequest,
        decode: impl Fn(&Item) -> Result<Option<T>>,
    ) -> Result<Page<T>> {
        let (attr, value) = &self.partition;
        let limit = page.limit() as usize;
        let mut start = page
            .cursor()
            .map(|c| decode_cursor(c, self.key_attrs, attr, value))
            .transpose()?;
        let mut items: Vec<T> = Vec::with_capacity(limit.min(64));
        let mut last_key: Option<Item> = None;
        loop {
            // One more than the page, to know whether a next page exists.
            let want = limit + 1 - items.len();
            let read = if self.filtered {
                want.max(FILTERED_READ)
            } else {
                want
            };
            let out = self
                .query
                .clone()
                .limit(read as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items() {
                let Some(t) = decode(item)? else { continue };
                if items.len() == limit {
                    let cursor = match &last_key {
                        Some(k) => Some(encode_cursor(k, self.key_attrs, attr)?),
                        None => None,
                    };
                    return Ok(Page {
                        items,
                        next_cursor: cursor,
                    });
                }
                items.push(t);
                last_key = Some(item.clone());
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => {
                    return Ok(Page {
                        items,
                        next_cursor: None,
                    });
                }
            }
        }
    }
}

/// Every item a query selects, following `LastEvaluatedKey`, up to `max` items.
pub(crate) async fn query_all(query: QueryFluentBuilder, max: usize) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = query
            .clone()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        out.extend(page.items().iter().cloned());
        if out.len() >= max {
            out.truncate(max);
            return Ok(out);
        }
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ATTRS: &[&str] = &["pk", "sk", "gsi1pk", "gsi1sk"];

    fn item() -> Item {
        HashMap::from([
            ("pk".to_owned(), s("MSGS#sales")),
            ("sk".to_owned(), s("msg_01ABC")),
            ("gsi1pk".to_owned(), s("MSGS#sales")),
            ("gsi1sk".to_owned(), s("0001700000000000000#msg_01ABC")),
            ("body".to_owned(), s("{}")),
        ])
    }

    #[test]
    fn a_cursor_round_trips_to_the_items_key() {
        let c = encode_cursor(&item(), ATTRS, "gsi1pk").unwrap();
        let key = decode_cursor(&c, ATTRS, "gsi1pk", "MSGS#sales").unwrap();
        let mut expected = item();
        expected.remove("body");
        assert_eq!(key, expected);
        assert!(c.len() < 512, "fits PageRequest's cursor limit");
    }

    #[test]
    fn garbage_or_foreign_cursors_are_invalid() {
        let other = encode_cursor(&item(), &["pk", "sk"], "pk").unwrap();
        for bad in ["not-a-cursor", "!!", "e30", other.as_str()] {
            assert!(
                matches!(decode_cursor(bad, ATTRS, "gsi1pk", "x"), Err(Error::Invalid { ref field, .. }) if field == "cursor"),
                "{bad}"
            );
        }
    }

    #[test]
    fn time_keys_sort_like_times_and_keep_nanoseconds() {
        let t = Utc::now();
        let later = t + chrono::Duration::nanoseconds(1);
        assert!(time_key(t).unwrap() < time_key(later).unwrap());
        assert_eq!(time_key(t).unwrap().len(), 19);
        assert_eq!(from_ns(to_ns(t).unwrap()), t);
        assert!(to_ns(DateTime::from_timestamp(-1, 0).unwrap()).is_err());
    }

    #[test]
    fn empty_placeholder_maps_are_left_out() {
        let mut e = Expr::new();
        assert!(e.names().is_none() && e.values().is_none());
        assert_eq!(e.name("status"), "#status");
        assert_eq!(e.value(s("x")), ":v0");
        assert_eq!(e.value(s("y")), ":v1");
        assert_eq!(e.names().unwrap().len(), 1);
    }
}
