//! API keys: the secret format, its hash, and the stored key record.
//!
//! A secret looks like `owa_<22 base62 random chars><6 base62 checksum chars>`: 22 base62
//! characters carry 131 bits of randomness; the checksum (CRC-32 of the random part) lets the
//! edge refuse typos and scanners without a store lookup. Only the SHA-256 of the whole secret is
//! stored; the secret is shown once, at creation.

use std::collections::BTreeSet;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::Error;
use crate::id::{ApiKeyId, SessionId};
use chrono::{DateTime, Utc};

const PREFIX: &str = "owa_";
const RANDOM_LEN: usize = 22;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A well-formed API key secret. Debug output is redacted.
#[derive(Clone)]
pub struct ApiKeySecret(SecretString);

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeySecret({}…)", self.display_prefix())
    }
}

impl ApiKeySecret {
    pub const LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;

    /// A fresh random secret from the OS RNG.
    pub fn generate() -> Self {
        use rand::Rng;
        let mut rng = rand::rng();
        let random: String = (0..RANDOM_LEN)
            .map(|_| BASE62[rng.random_range(0..62)] as char)
            .collect();
        let checksum = checksum(&random);
        Self(SecretString::from(format!("{PREFIX}{random}{checksum}")))
    }

    /// Checks the shape and checksum. The error never repeats the input.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let malformed = || Error::Unauthenticated;
        let rest = raw.strip_prefix(PREFIX).ok_or_else(malformed)?;
        if rest.len() != RANDOM_LEN + CHECKSUM_LEN
            || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(malformed());
        }
        let (random, sum) = rest.split_at(RANDOM_LEN);
        if checksum(random) != sum {
            return Err(malformed());
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// Hex SHA-256 of the secret: what the store keeps and looks keys up by.
    pub fn hash(&self) -> String {
        hash_hex(self.0.expose_secret().as_bytes())
    }

    /// The first characters, safe to show and log (`owa_AbCd1234`).
    pub fn display_prefix(&self) -> String {
        self.0
            .expose_secret()
            .chars()
            .take(PREFIX.len() + 8)
            .collect()
    }

    /// The full secret, for the one response that shows it and for clients.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

fn checksum(random: &str) -> String {
    let mut n = crc32fast::hash(random.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn hash_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Compares two hashes in constant time.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// What a key may do. Each role includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read sessions, messages and chats.
    Viewer,
    /// Also manage sessions, send messages, manage webhooks.
    Operator,
    /// Also manage API keys and read the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Error> {
        match raw {
            "viewer" => Ok(Self::Viewer),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            _ => Err(Error::invalid("role", "expected admin, operator or viewer")),
        }
    }
}

/// A stored API key. The secret itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    /// First characters of the secret, to recognise it (`owa_AbCd1234`).
    pub prefix: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub role: Role,
    /// Sessions this key may see; absent means all.
    pub allowed_sessions: Option<BTreeSet<SessionId>>,
    /// Source networks allowed to use the key; empty means any.
    #[schema(value_type = Vec<String>)]
    pub allowed_cidrs: Vec<ipnet::IpNet>,
    /// Requests per minute; absent means the server default.
    pub rate_limit_per_minute: Option<u32>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl ApiKey {
    pub const MAX_NAME_LEN: usize = 128;

    /// Whether the key may authenticate at `now`.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| t > now)
    }

    pub fn allows_ip(&self, ip: std::net::IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.allowed_cidrs.is_empty() || self.allowed_cidrs.iter().any(|net| net.contains(&ip))
    }
}

/// Unwraps IPv4-mapped IPv6 addresses so `::ffff:10.0.0.1` matches `10.0.0.0/8`.
pub fn canonical_ip(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_parses_and_has_the_documented_shape() {
        let s = ApiKeySecret::generate();
        assert_eq!(s.expose().len(), ApiKeySecret::LEN);
        assert!(s.expose().starts_with("owa_"));
        let back = ApiKeySecret::parse(s.expose()).unwrap();
        assert_eq!(back.hash(), s.hash());
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let s = ApiKeySecret::generate();
        let raw = s.expose().to_owned();
        let i = 10;
        let c = raw.as_bytes()[i];
        let swapped = if c == b'a' { 'b' } else { 'a' };
        let typo = format!("{}{}{}", &raw[..i], swapped, &raw[i + 1..]);
        assert!(ApiKeySecret::parse(&typo).is_err());
    }

    #[test]
    fn malformed_secrets_are_unauthenticated() {
        for raw in [
            "",
            "owa_",
            "Bearer owa_x",
            "sk_live_abc",
            &"owa_".repeat(8),
            "owa_ääääääääääääääääääääääääääää",
        ] {
            assert_eq!(
                ApiKeySecret::parse(raw).unwrap_err(),
                Error::Unauthenticated,
                "{raw}"
            );
        }
    }

    #[test]
    fn debug_output_does_not_reveal_the_secret() {
        let s = ApiKeySecret::generate();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(s.expose()));
        assert!(dbg.contains(&s.display_prefix()));
    }

    #[test]
    fn hashes_compare_in_constant_time_and_correctly() {
        assert!(hashes_equal("abc", "abc"));
        assert!(!hashes_equal("abc", "abd"));
        assert!(!hashes_equal("abc", "abcd"));
    }

    #[test]
    fn ipv4_mapped_addresses_match_v4_networks() {
        let key_net: ipnet::IpNet = "10.0.0.0/8".parse().unwrap();
        let mapped: std::net::IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(key_net.contains(&canonical_ip(mapped)));
    }
}
