//! Shared encodings of the embedded stores: timestamps as integer nanoseconds, the opaque page
//! cursor, and the newest-first page query every `list` uses.
//!
//! Lists sort by `(<time column> DESC, id DESC)`. The cursor is base64url of
//! `<time ns>:<id>` of the last item returned, and the next page starts strictly after it, so a
//! walk sees every item exactly once even when many share a timestamp.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use openwa_core::Error;
use openwa_core::page::{Page, PageRequest};
use rusqlite::types::Value;
use rusqlite::{Connection, Row};

use super::db::DbResult;

/// Nanoseconds since the epoch. Times outside 1677–2262 cannot be stored.
pub(crate) fn to_ns(t: DateTime<Utc>) -> Result<i64, Error> {
    t.timestamp_nanos_opt()
        .ok_or_else(|| Error::invalid("timestamp", "must be between the years 1677 and 2262"))
}

pub(crate) fn from_ns(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

/// Adds a std duration to a nanosecond timestamp, saturating.
pub(crate) fn add_ns(ns: i64, d: std::time::Duration) -> i64 {
    ns.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

pub(crate) fn encode_cursor(ns: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{ns}:{id}"))
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<(i64, String), Error> {
    let bad = || Error::invalid("cursor", "is not a cursor this API returned");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (ns, id) = text.split_once(':').ok_or_else(bad)?;
    let ns = ns.parse::<i64>().map_err(|_| bad())?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok((ns, id.to_owned()))
}

/// A newest-first page query under construction: `WHERE` conditions with their parameters.
pub(crate) struct PageQuery {
    table: &'static str,
    time_col: &'static str,
    conditions: Vec<String>,
    params: Vec<Value>,
}

impl PageQuery {
    pub(crate) fn new(table: &'static str, time_col: &'static str) -> Self {
        Self {
            table,
            time_col,
            conditions: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Adds a condition; each `?` in `sql` takes the next of `params`.
    pub(crate) fn and(&mut self, sql: &str, params: impl IntoIterator<Item = Value>) -> &mut Self {
        self.conditions.push(sql.to_owned());
        self.params.extend(params);
        self
    }

    /// Runs the query and decodes each row with `decode`, which sees the columns
    /// `<time>, id, body` followed by `extra` (a comma-separated column list or empty).
    pub(crate) fn fetch<T>(
        mut self,
        conn: &Connection,
        page: &PageRequest,
        extra: &str,
        decode: impl Fn(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<Page<T>> {
        if let Some(cursor) = page.cursor() {
            let (ns, id) = decode_cursor(cursor)?;
            let t = self.time_col;
            // A row value, so SQLite seeks the index to the cursor instead of scanning to it.
            self.and(
                &format!("({t}, id) < (?, ?)"),
                [Value::Integer(ns), Value::Text(id)],
            );
        }
        let where_sql = if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        };
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(", {extra}")
        };
        let sql = format!(
            "SELECT {t}, id, body{extra} FROM {table} {where_sql} ORDER BY {t} DESC, id DESC LIMIT ?",
            t = self.time_col,
            table = self.table,
        );
        let limit = page.limit() as usize;
        self.params.push(Value::Integer(limit as i64 + 1));
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(self.params.iter()))?;
        let mut items = Vec::with_capacity(limit.min(64));
        let mut last: Option<(i64, String)> = None;
        let mut more = false;
        while let Some(row) = rows.next()? {
            if items.len() == limit {
                more = true;
                break;
            }
            last = Some((row.get(0)?, row.get(1)?));
            items.push(decode(row)?);
        }
        let next_cursor = if more {
            last.map(|(ns, id)| encode_cursor(ns, &id))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

/// Text of an optional value, for nullable columns.
pub(crate) fn opt_text<T: ToString>(v: Option<&T>) -> Option<String> {
    v.map(ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        let c = encode_cursor(1_700_000_000_123_456_789, "msg_01ABC");
        assert_eq!(
            decode_cursor(&c).unwrap(),
            (1_700_000_000_123_456_789, "msg_01ABC".to_owned())
        );
    }

    #[test]
    fn garbage_cursors_are_invalid() {
        for bad in ["!!", "bm9jb2xvbg", "YWJjOmRlZg", "MTIzOg"] {
            assert!(
                matches!(decode_cursor(bad), Err(Error::Invalid { ref field, .. }) if field == "cursor"),
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamps_survive_the_nanosecond_encoding() {
        let t = Utc::now();
        assert_eq!(from_ns(to_ns(t).unwrap()), t);
    }
}
