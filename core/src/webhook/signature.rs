//! Standard Webhooks signing and verification, plus the Meta-style `X-Hub-Signature-256`.
//!
//! A delivery carries three headers:
//! - `webhook-id`: the event id, the same on every retry (receivers deduplicate on it);
//! - `webhook-timestamp`: Unix seconds when this attempt was signed;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the
//!   bytes after `whsec_`. During a secret rotation both secrets sign and the header holds both
//!   signatures separated by a space; a receiver accepts the body if any one matches.
//!
//! The signature covers the exact bytes sent. Receivers must verify the raw body before parsing
//! it: re-serialised JSON (other whitespace or key order) does not verify.
//!
//! [`verify`] is the receiver-side helper; it is plain Rust with no I/O so a receiver written in
//! Rust can depend on `openwa-core` for it alone.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::WebhookSecret;

type HmacSha256 = Hmac<Sha256>;

/// Header names, lower-case as HTTP/2 sends them (HTTP/1 receivers match case-insensitively).
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";
pub const HEADER_HUB_SIGNATURE: &str = "x-hub-signature-256";

/// How far a receiver should let `webhook-timestamp` drift from its clock by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a delivery did not verify. The variants are for the receiver's logs; answer all of them
/// with the same 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a Unix timestamp")]
    BadTimestamp,
    #[error("webhook-timestamp is outside the tolerance")]
    OutsideTolerance,
    #[error("no signature matches")]
    NoMatch,
}

/// The three signed-delivery headers as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHeaders<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

impl<'a> SignedHeaders<'a> {
    /// Reads the headers through any lookup (an `http::HeaderMap`, a `HashMap`, a closure over
    /// a framework's request); the lookup should be case-insensitive.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<&'a str>) -> Result<Self, VerifyError> {
        Ok(Self {
            id: lookup(HEADER_ID).ok_or(VerifyError::MissingHeader(HEADER_ID))?,
            timestamp: lookup(HEADER_TIMESTAMP)
                .ok_or(VerifyError::MissingHeader(HEADER_TIMESTAMP))?,
            signature: lookup(HEADER_SIGNATURE)
                .ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE))?,
        })
    }
}

impl<'a> From<(&'a str, &'a str, &'a str)> for SignedHeaders<'a> {
    fn from((id, timestamp, signature): (&'a str, &'a str, &'a str)) -> Self {
        Self {
            id,
            timestamp,
            signature,
        }
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

/// The raw HMAC-SHA256 of `{id}.{timestamp}.{body}` under `secret`.
fn digest(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut m = mac(&secret.key_bytes());
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// One `v1,<base64>` signature.
pub fn sign_one(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest(secret, id, timestamp, body))
    )
}

/// The `webhook-signature` value: one `v1,…` per secret, space-separated.
pub fn sign(secrets: &[&WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| sign_one(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `X-Hub-Signature-256` value, `sha256=<hex HMAC-SHA256 of the body>`. The key is the
/// whole secret string as shown (`whsec_…`), because receivers built for Meta's format configure
/// an "app secret" string and use its bytes as the key.
pub fn hub_signature(secret: &WebhookSecret, body: &[u8]) -> String {
    let mut m = mac(secret.expose().as_bytes());
    m.update(body);
    let bytes = m.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + bytes.len() * 2);
    hex.push_str("sha256=");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Checks a delivery against `secret` with the wall clock. `tolerance` bounds how old (or how
/// far in the future) `webhook-timestamp` may be; [`DEFAULT_TOLERANCE`] is five minutes.
pub fn verify<'a>(
    secret: &WebhookSecret,
    headers: impl Into<SignedHeaders<'a>>,
    body: &[u8],
    tolerance: Duration,
) -> Result<(), VerifyError> {
    verify_at(secret, headers, body, tolerance, Utc::now())
}

/// [`verify`] against a given clock reading.
pub fn verify_at<'a>(
    secret: &WebhookSecret,
    headers: impl Into<SignedHeaders<'a>>,
    body: &[u8],
    tolerance: Duration,
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let headers = headers.into();
    let timestamp: i64 = headers
        .timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let drift = now.timestamp().abs_diff(timestamp);
    if drift > tolerance.as_secs() {
        return Err(VerifyError::OutsideTolerance);
    }
    let expected = digest(secret, headers.id, timestamp, body);
    let matched = headers
        .signature
        .split(' ')
        .filter_map(|part| part.strip_prefix("v1,"))
        .any(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .is_ok_and(|given| {
                    subtle::ConstantTimeEq::ct_eq(given.as_slice(), expected.as_slice()).into()
                })
        });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

/// Checks an `X-Hub-Signature-256` value (no timestamp: that format has none).
pub fn verify_hub(secret: &WebhookSecret, header: &str, body: &[u8]) -> Result<(), VerifyError> {
    let expected = hub_signature(secret, body);
    if subtle::ConstantTimeEq::ct_eq(header.trim().as_bytes(), expected.as_bytes()).into() {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1_649_367_553;
    const BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;

    fn at(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(ts, 0).unwrap()
    }

    #[test]
    fn the_published_standard_webhooks_vector_signs_as_published() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(
            sign(&[&secret], ID, TS, BODY.as_bytes()),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        let sig = sign(&[&secret], ID, TS, BODY.as_bytes());
        assert_eq!(
            verify_at(
                &secret,
                (ID, "1649367553", sig.as_str()),
                BODY.as_bytes(),
                DEFAULT_TOLERANCE,
                at(TS)
            ),
            Ok(())
        );
    }

    #[test]
    fn during_rotation_both_secrets_sign_and_either_verifies() {
        let old = WebhookSecret::parse(SECRET).unwrap();
        let new = WebhookSecret::generate();
        let header = sign(&[&new, &old], ID, TS, BODY.as_bytes());
        assert_eq!(header.split(' ').count(), 2);
        for secret in [&old, &new] {
            assert_eq!(
                verify_at(
                    secret,
                    (ID, "1649367553", header.as_str()),
                    BODY.as_bytes(),
                    DEFAULT_TOLERANCE,
                    at(TS)
                ),
                Ok(())
            );
        }
        let stranger = WebhookSecret::generate();
        assert_eq!(
            verify_at(
                &stranger,
                (ID, "1649367553", header.as_str()),
                BODY.as_bytes(),
                DEFAULT_TOLERANCE,
                at(TS)
            ),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn a_reserialised_body_does_not_verify() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let sig = sign(&[&secret], ID, TS, BODY.as_bytes());
        let same_json = r#"{ "username": "test_user", "email": "test@example.com" }"#;
        let parsed: serde_json::Value = serde_json::from_str(same_json).unwrap();
        assert_eq!(
            parsed,
            serde_json::from_str::<serde_json::Value>(BODY).unwrap()
        );
        assert_eq!(
            verify_at(
                &secret,
                (ID, "1649367553", sig.as_str()),
                same_json.as_bytes(),
                DEFAULT_TOLERANCE,
                at(TS)
            ),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_fail_on_either_side() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let sig = sign(&[&secret], ID, TS, BODY.as_bytes());
        let check = |now| {
            verify_at(
                &secret,
                (ID, "1649367553", sig.as_str()),
                BODY.as_bytes(),
                DEFAULT_TOLERANCE,
                at(now),
            )
        };
        assert_eq!(check(TS + 300), Ok(()));
        assert_eq!(check(TS + 301), Err(VerifyError::OutsideTolerance));
        assert_eq!(check(TS - 301), Err(VerifyError::OutsideTolerance));
        assert_eq!(
            verify_at(
                &secret,
                (ID, "soon", sig.as_str()),
                BODY.as_bytes(),
                DEFAULT_TOLERANCE,
                at(TS)
            ),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn headers_can_be_read_through_any_lookup() {
        let map = std::collections::HashMap::from([
            (HEADER_ID, "a"),
            (HEADER_TIMESTAMP, "1"),
            (HEADER_SIGNATURE, "v1,x"),
        ]);
        let h = SignedHeaders::from_lookup(|n| map.get(n).copied()).unwrap();
        assert_eq!(
            h,
            SignedHeaders {
                id: "a",
                timestamp: "1",
                signature: "v1,x"
            }
        );
        assert_eq!(
            SignedHeaders::from_lookup(|_| None),
            Err(VerifyError::MissingHeader(HEADER_ID))
        );
    }

    #[test]
    fn hub_signatures_are_hex_hmacs_of_the_body() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let header = hub_signature(&secret, BODY.as_bytes());
        assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
        assert_eq!(verify_hub(&secret, &header, BODY.as_bytes()), Ok(()));
        assert_eq!(
            verify_hub(&secret, &header, b"{}"),
            Err(VerifyError::NoMatch)
        );
    }
}
