//! Cursor pagination, newest first. The cursor's content belongs to the adapter that made it;
//! callers treat it as an opaque string and hand it back unchanged.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A page request: how many items and where to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    limit: u32,
    cursor: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;

    pub fn parse(limit: Option<u32>, cursor: Option<String>) -> Result<Self, Error> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        if let Some(c) = &cursor
            && (c.is_empty() || c.len() > 512 || !c.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(Error::invalid(
                "cursor",
                "is not a cursor this API returned",
            ));
        }
        Ok(Self { limit, cursor })
    }

    /// The first page with the given size (clamped into range).
    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            cursor: None,
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(Self::DEFAULT_LIMIT)
    }
}

/// One page of results; `next_cursor` is absent on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_one_to_a_hundred_are_refused() {
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(101), None).is_err());
        assert_eq!(PageRequest::parse(None, None).unwrap().limit(), 20);
    }

    #[test]
    fn cursors_with_control_characters_are_refused() {
        assert!(PageRequest::parse(None, Some("a\nb".into())).is_err());
        assert!(PageRequest::parse(None, Some(String::new())).is_err());
        assert!(PageRequest::parse(None, Some("abc".into())).is_ok());
    }
}
