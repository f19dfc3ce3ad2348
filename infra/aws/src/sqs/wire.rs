//! How a job looks on the wire: the SQS message body, the message attributes openwa adds, and
//! the receipt token handed to callers.
//!
//! SQS bodies are text (a restricted set of Unicode characters) while jobs are bytes, so a body
//! that is not such text travels base64-encoded and says so in [`attr::ENCODING`]. Every message
//! carries the key of the queue it was sent to ([`attr::QUEUE`]): per-session queues share one
//! dead-letter queue, and that tag is how a listing finds one session's dead letters.

use std::collections::HashMap;

use aws_sdk_sqs::types::MessageAttributeValue;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openwa_core::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// SQS's message size limit (body plus attributes), the one every SQS-compatible endpoint
/// accepts. Larger jobs go through S3.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Message attribute names (SQS allows ten per message; a message carries at most nine).
pub mod attr {
    /// Key of the queue the job was sent to (`send.<session>`, `events`, …).
    pub const QUEUE: &str = "openwa.queue";
    /// `base64` when the body is base64 of the job's bytes.
    pub const ENCODING: &str = "openwa.enc";
    /// S3 key of the job's bytes when they were too large for SQS.
    pub const PAYLOAD: &str = "openwa.s3";
    /// The job's group where `MessageGroupId` cannot carry it (standard queues, or a group SQS
    /// would refuse and that was hashed).
    pub const GROUP: &str = "openwa.group";
    /// The job id when the message is a re-send or a dead letter of an earlier message.
    pub const ID: &str = "openwa.id";
    /// Receives the job had before this message was sent (re-sends by `retry_later`).
    pub const PRIOR_RECEIVES: &str = "openwa.prior";
    /// First enqueue time of a re-sent job, epoch milliseconds.
    pub const SENT: &str = "openwa.sent";
    /// Why the job was dead-lettered.
    pub const REASON: &str = "openwa.reason";
    /// When it was dead-lettered, epoch milliseconds.
    pub const DEAD_AT: &str = "openwa.dead-at";
    /// Receives the job had when it was dead-lettered.
    pub const RECEIVES: &str = "openwa.receives";
}

const BASE64: &str = "base64";
/// SQS refuses empty bodies: an empty job travels as `.` with this encoding.
const EMPTY: &str = "empty";

/// The message attributes of one message, by name (string values only: openwa sets no others).
pub type Attributes = HashMap<String, MessageAttributeValue>;

pub fn string_attr(value: impl Into<String>) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("a string attribute has a data type")
}

/// The string value of attribute `name`, if set.
pub fn get<'a>(attrs: &'a Attributes, name: &str) -> Option<&'a str> {
    attrs.get(name).and_then(|v| v.string_value())
}

/// What SQS counts against the size limit for these attributes.
pub fn attributes_size(attrs: &Attributes) -> usize {
    attrs
        .iter()
        .map(|(k, v)| k.len() + v.data_type().len() + v.string_value().map_or(0, str::len))
        .sum()
}

/// Whether SQS accepts `c` in a message body.
fn sqs_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

/// The body SQS will carry for `bytes`: the text itself when SQS accepts it (JSON jobs, the
/// common case, cost nothing), else base64 with [`attr::ENCODING`] set.
pub fn encode_body(bytes: Vec<u8>, attrs: &mut Attributes) -> String {
    if bytes.is_empty() {
        attrs.insert(attr::ENCODING.into(), string_attr(EMPTY));
        return ".".into();
    }
    match String::from_utf8(bytes) {
        Ok(text) if text.chars().all(sqs_char) => text,
        Ok(text) => encode_base64(text.as_bytes(), attrs),
        Err(e) => encode_base64(e.as_bytes(), attrs),
    }
}

fn encode_base64(bytes: &[u8], attrs: &mut Attributes) -> String {
    attrs.insert(attr::ENCODING.into(), string_attr(BASE64));
    STANDARD.encode(bytes)
}

/// The job's bytes from a (non-oversize) message body.
pub fn decode_body(body: &str, attrs: &Attributes) -> Result<Vec<u8>> {
    decode_body_with(body, |name| get(attrs, name))
}

/// [`decode_body`] with the attributes behind a lookup (a Lambda SQS record carries them in
/// its own types).
pub fn decode_body_with<'a>(body: &str, attr: impl Fn(&str) -> Option<&'a str>) -> Result<Vec<u8>> {
    match attr(attr::ENCODING) {
        Some(BASE64) => STANDARD
            .decode(body)
            .map_err(|_| Error::unexpected("an SQS message body is not the base64 it claims")),
        Some(EMPTY) => Ok(Vec::new()),
        Some(other) => Err(Error::unexpected(format!(
            "an SQS message has an unknown body encoding {other:?}"
        ))),
        None => Ok(body.as_bytes().to_vec()),
    }
}

/// SQS's rule for group and deduplication ids: 1–128 of ASCII letters, digits and punctuation.
pub fn sqs_id_ok(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// `id` if SQS accepts it as a group or dedup id, else its SHA-256 (same input, same output).
pub fn sqs_id(id: &str) -> String {
    if sqs_id_ok(id) {
        id.to_owned()
    } else {
        Sha256::digest(id.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The receipt handed to callers: opaque to them, it names the SQS receive and when the
/// adapter knows the job's visibility ends. Carrying the end lets another process holding
/// the receipt judge it without this process's memory (see `lease`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Key of the queue it was received from.
    #[serde(rename = "q")]
    pub queue: String,
    /// The SQS message id (not the job id, which a re-send keeps).
    #[serde(rename = "m")]
    pub message_id: String,
    /// SQS's receipt handle.
    #[serde(rename = "h")]
    pub handle: String,
    /// The job stays hidden until this epoch millisecond, as of the receive.
    #[serde(rename = "u")]
    pub until_ms: i64,
    /// S3 key of the payload, deleted with the job on ack.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

impl Receipt {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a receipt serialises");
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Parses a receipt of queue `queue`; anything else is a `Conflict` (as an unknown receipt
    /// is for the embedded queue).
    pub fn decode(queue: &str, token: &str) -> Result<Self> {
        let stale = || Error::conflict("the receipt is not a current receipt of this queue");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| stale())?;
        let receipt: Self = serde_json::from_slice(&bytes).map_err(|_| stale())?;
        if receipt.queue != queue {
            return Err(stale());
        }
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_travel_as_text_and_binary_ones_as_base64() {
        let mut attrs = Attributes::new();
        assert_eq!(encode_body(b"{\"a\":1}".to_vec(), &mut attrs), "{\"a\":1}");
        assert!(attrs.is_empty());

        for bytes in [vec![0u8, 159, 146, 150], b"nul\0".to_vec(), Vec::new()] {
            let mut attrs = Attributes::new();
            let body = encode_body(bytes.clone(), &mut attrs);
            assert!(get(&attrs, attr::ENCODING).is_some());
            assert_eq!(decode_body(&body, &attrs).unwrap(), bytes);
        }
    }

    #[test]
    fn ids_sqs_would_refuse_are_hashed_stably() {
        assert_eq!(sqs_id("123@s.whatsapp.net"), "123@s.whatsapp.net");
        let long = "x".repeat(200);
        assert_eq!(sqs_id(&long).len(), 64);
        assert_eq!(sqs_id(&long), sqs_id(&long));
        assert_ne!(sqs_id("a b"), "a b");
    }

    #[test]
    fn a_receipt_only_decodes_for_its_own_queue() {
        let r = Receipt {
            queue: "events".into(),
            message_id: "m".into(),
            handle: "h.+/=".into(),
            until_ms: 42,
            payload: None,
        };
        let token = r.encode();
        assert_eq!(Receipt::decode("events", &token).unwrap(), r);
        assert!(Receipt::decode("ingress", &token).is_err());
        assert!(Receipt::decode("events", "garbage").is_err());
    }
}
