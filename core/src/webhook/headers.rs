//! Custom delivery headers: which names a subscription may set.
//!
//! Refused: everything the gateway sets or that changes how the request is framed or routed
//! (`webhook-*`, `x-hub-signature*`, `content-type`, `content-length`, `host`,
//! `transfer-encoding`, `connection`, `keep-alive`, `te`, `trailer`, `upgrade`, `expect`,
//! `proxy-*`, `user-agent`). Allowed: anything else, including `authorization`, since many
//! receivers authenticate callers by a static bearer token. Header values are stored with the
//! subscription and shown to whoever may read it, so a token placed here is as visible as the
//! webhook itself.

use std::collections::BTreeMap;

use crate::error::Error;

pub const MAX_HEADERS: usize = 20;
const MAX_NAME_LEN: usize = 64;
const MAX_VALUE_LEN: usize = 1024;

const RESERVED_EXACT: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "user-agent",
];
const RESERVED_PREFIXES: &[&str] = &["webhook-", "x-hub-signature", "proxy-"];

/// Whether the gateway keeps `name` for itself.
pub fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED_EXACT.contains(&lower.as_str())
        || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
}

/// Checks custom headers and returns them with lower-cased names (so two spellings of one name
/// cannot both be set).
pub fn validate(headers: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Error> {
    if headers.len() > MAX_HEADERS {
        return Err(Error::invalid(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || name.len() > MAX_NAME_LEN || !name.bytes().all(token) {
            return Err(Error::invalid(
                "headers",
                format!("{name:?} is not a valid header name"),
            ));
        }
        if is_reserved(name) {
            return Err(Error::invalid(
                "headers",
                format!("{name:?} is set by the gateway and cannot be overridden"),
            ));
        }
        if value.len() > MAX_VALUE_LEN
            || !value
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(Error::invalid(
                format!("headers.{name}"),
                "must be at most 1024 printable ASCII characters without line breaks",
            ));
        }
        if out
            .insert(name.to_ascii_lowercase(), value.clone())
            .is_some()
        {
            return Err(Error::invalid("headers", format!("{name:?} is set twice")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(name.to_owned(), value.to_owned())])
    }

    #[test]
    fn reserved_and_malformed_headers_are_refused() {
        for name in [
            "Webhook-Signature",
            "webhook-id",
            "X-Hub-Signature-256",
            "Content-Type",
            "Host",
            "Proxy-Authorization",
            "bad name",
            "",
        ] {
            assert!(validate(&one(name, "x")).is_err(), "{name}");
        }
        assert!(validate(&one("x-tenant", "a\r\nb: c")).is_err());
    }

    #[test]
    fn ordinary_headers_and_authorization_are_kept_lower_cased() {
        let mut h = one("Authorization", "Bearer abc");
        h.insert("X-Tenant".into(), "t1".into());
        let out = validate(&h).unwrap();
        assert_eq!(
            out.get("authorization").map(String::as_str),
            Some("Bearer abc")
        );
        assert!(out.contains_key("x-tenant"));
        let mut dup = one("X-A", "1");
        dup.insert("x-a".into(), "2".into());
        assert!(validate(&dup).is_err());
    }
}
