//! The Session aggregate: what the user asked for (`desired`, config) and what the runner that
//! holds the lease reports (`status`, QR, `me`, errors).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;
use crate::id::SessionId;
use crate::jid::ChatId;
use chrono::{DateTime, Utc};

/// Where the WhatsApp connection is, as last reported by a runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Stopped,
    Starting,
    Qr,
    Pairing,
    Connected,
    Disconnected,
    LoggedOut,
    Failed,
}

impl SessionStatus {
    pub const ALL: [SessionStatus; 8] = [
        Self::Stopped,
        Self::Starting,
        Self::Qr,
        Self::Pairing,
        Self::Connected,
        Self::Disconnected,
        Self::LoggedOut,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Starting => "starting",
            Self::Qr => "qr",
            Self::Pairing => "pairing",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::LoggedOut => "logged_out",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| Error::invalid("status", format!("unknown session status {raw:?}")))
    }
}

/// What the user wants: a runner keeps `running` sessions alive and lets `stopped` ones go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DesiredState {
    Running,
    Stopped,
}

impl DesiredState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Error> {
        match raw {
            "running" => Ok(Self::Running),
            "stopped" => Ok(Self::Stopped),
            _ => Err(Error::invalid("desired", "expected running or stopped")),
        }
    }
}

/// The logged-in account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub jid: ChatId,
    pub push_name: Option<String>,
}

/// A QR code waiting to be scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Qr {
    /// The raw payload to encode in a QR image.
    pub payload: String,
    pub expires_at: DateTime<Utc>,
}

/// A pairing code to type on the phone (linking by phone number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PairingCode {
    pub code: String,
    pub phone: ChatId,
    pub expires_at: DateTime<Utc>,
}

/// The runner lease. `epoch` grows with every claim and fences stale runners; it survives
/// release so the next claim still moves it forward.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Lease {
    /// Runner id holding the session, if any.
    pub owner: Option<String>,
    pub epoch: u64,
    /// Lease expiry; after it another runner may claim.
    pub until: Option<DateTime<Utc>>,
}

impl Lease {
    /// Whether someone holds the lease at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.owner.is_some() && self.until.is_some_and(|until| until > now)
    }
}

/// Send pacing, to keep an account's behaviour human-like. Off by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Pacing {
    pub enabled: bool,
    /// Sustained sends per minute (token bucket refill).
    pub per_minute: u32,
    /// Bucket size: sends allowed back to back.
    pub burst: u32,
    /// Random extra delay added before each send, in milliseconds (0 to this value).
    pub jitter_ms: u32,
    /// Minimum gap between two sends to the same recipient, in milliseconds.
    pub min_recipient_gap_ms: u32,
    /// Most sends per UTC day; absent means no cap.
    pub daily_cap: Option<u32>,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            enabled: false,
            per_minute: 30,
            burst: 5,
            jitter_ms: 1500,
            min_recipient_gap_ms: 3000,
            daily_cap: None,
        }
    }
}

impl Pacing {
    pub fn validate(&self) -> Result<(), Error> {
        if self.enabled && (self.per_minute == 0 || self.burst == 0) {
            return Err(Error::invalid(
                "config.pacing",
                "per_minute and burst must be at least 1 when pacing is enabled",
            ));
        }
        if self.per_minute > 6000
            || self.burst > 1000
            || self.jitter_ms > 60_000
            || self.min_recipient_gap_ms > 3_600_000
        {
            return Err(Error::invalid("config.pacing", "a value is out of range"));
        }
        Ok(())
    }
}

/// Per-session behaviour, set by the user.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub pacing: Pacing,
    /// Outbound proxy for the browser, e.g. `http://proxy:3128` or `socks5://…`.
    pub proxy: Option<String>,
    /// Reject incoming calls automatically.
    pub auto_reject_calls: bool,
    /// Mark inbound messages read when they arrive.
    pub mark_read: bool,
    /// Free-form key/values echoed in every event of the session.
    pub metadata: BTreeMap<String, String>,
}

impl SessionConfig {
    pub const MAX_METADATA_ENTRIES: usize = 32;

    pub fn validate(&self) -> Result<(), Error> {
        self.pacing.validate()?;
        if let Some(proxy) = &self.proxy {
            let scheme_ok = ["http://", "https://", "socks5://", "socks4://"]
                .iter()
                .any(|s| proxy.starts_with(s));
            if !scheme_ok || proxy.len() > 512 || proxy.contains(char::is_whitespace) {
                return Err(Error::invalid(
                    "config.proxy",
                    "expected an http(s):// or socks4/5:// URL",
                ));
            }
        }
        if self.metadata.len() > Self::MAX_METADATA_ENTRIES {
            return Err(Error::invalid("config.metadata", "at most 32 entries"));
        }
        for (k, v) in &self.metadata {
            if k.is_empty() || k.len() > 64 || v.len() > 512 {
                return Err(Error::invalid(
                    "config.metadata",
                    "keys are 1 to 64 characters, values at most 512",
                ));
            }
        }
        Ok(())
    }
}

/// A WhatsApp session (one linked device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub id: SessionId,
    /// Display name chosen by the user.
    pub name: Option<String>,
    pub status: SessionStatus,
    pub desired: DesiredState,
    pub me: Option<Me>,
    pub qr: Option<Qr>,
    pub pairing_code: Option<PairingCode>,
    pub lease: Lease,
    pub config: SessionConfig,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version; every stored update increments it.
    pub version: u64,
}

impl Session {
    pub const MAX_NAME_LEN: usize = 128;

    pub fn new(
        id: SessionId,
        name: Option<String>,
        config: SessionConfig,
        now: DateTime<Utc>,
    ) -> Result<Self, Error> {
        validate_name(name.as_deref())?;
        config.validate()?;
        Ok(Self {
            id,
            name,
            status: SessionStatus::Stopped,
            desired: DesiredState::Stopped,
            me: None,
            qr: None,
            pairing_code: None,
            lease: Lease::default(),
            config,
            last_error: None,
            created_at: now,
            updated_at: now,
            version: 0,
        })
    }
}

pub fn validate_name(name: Option<&str>) -> Result<(), Error> {
    match name {
        Some(n)
            if n.trim().is_empty()
                || n.chars().count() > Session::MAX_NAME_LEN
                || n.chars().any(char::is_control) =>
        {
            Err(Error::invalid(
                "name",
                "must be 1 to 128 printable characters",
            ))
        }
        _ => Ok(()),
    }
}

/// A command for the runner that holds the session, sent through the session's control queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum SessionCommand {
    /// Link by phone number: ask WhatsApp for a pairing code for this phone.
    RequestPairingCode { phone: ChatId },
    /// Log the linked device out; the login and its snapshot are deleted.
    Logout,
    /// Re-read the session now rather than at the next lease renewal: its desired state
    /// changed (a stop). Only a hint; the stored session decides what the runner does.
    Recheck,
}

/// What a runner reports about a session it holds; written only with a current lease epoch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuntimeUpdate {
    pub status: Option<SessionStatus>,
    /// `Some(None)` clears.
    pub me: Option<Option<Me>>,
    pub qr: Option<Option<Qr>>,
    pub pairing_code: Option<Option<PairingCode>>,
    pub last_error: Option<Option<String>>,
}

impl RuntimeUpdate {
    /// Applies the update to a session in memory (adapters that read-modify-write use this).
    pub fn apply(&self, s: &mut Session) {
        if let Some(status) = self.status {
            s.status = status;
        }
        if let Some(me) = &self.me {
            s.me.clone_from(me);
        }
        if let Some(qr) = &self.qr {
            s.qr.clone_from(qr);
        }
        if let Some(code) = &self.pairing_code {
            s.pairing_code.clone_from(code);
        }
        if let Some(err) = &self.last_error {
            s.last_error.clone_from(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_live_only_with_an_owner_and_a_future_expiry() {
        let now = chrono::Utc::now();
        let mut lease = Lease {
            owner: Some("r1".into()),
            epoch: 3,
            until: Some(now + chrono::Duration::seconds(5)),
        };
        assert!(lease.is_live(now));
        lease.until = Some(now);
        assert!(!lease.is_live(now));
        lease = Lease {
            owner: None,
            epoch: 3,
            until: Some(now + chrono::Duration::seconds(5)),
        };
        assert!(!lease.is_live(now));
    }

    #[test]
    fn config_with_a_bad_proxy_or_pacing_is_refused() {
        let mut c = SessionConfig {
            proxy: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(c.validate().is_err());
        c.proxy = Some("socks5://127.0.0.1:1080".into());
        assert!(c.validate().is_ok());
        c.pacing = Pacing {
            enabled: true,
            per_minute: 0,
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in SessionStatus::ALL {
            assert_eq!(SessionStatus::parse(s.as_str()).unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
