//! Where the AWS backend keeps its data: resource names, read from the environment by every
//! binary (Lambda functions, runner, `openwa up --backend aws`), so one stack's functions agree.
//!
//! The endpoint is never configured here: the SDK reads `AWS_ENDPOINT_URL` (and the per-service
//! variants) itself, so LocalStack, moto server and AWS differ only in environment.

use openwa_core::error::{Error, Result};

/// Environment variable names, one place (Terraform sets them; `tests/terraform.rs` checks).
pub mod env {
    pub const TABLE: &str = "OPENWA_TABLE";
    pub const BUCKET: &str = "OPENWA_BUCKET";
    pub const QUEUE_PREFIX: &str = "OPENWA_QUEUE_PREFIX";
    pub const SECRET_PREFIX: &str = "OPENWA_SECRET_PREFIX";
    pub const MAX_RECEIVES: &str = "OPENWA_MAX_RECEIVES";
    pub const MESSAGE_RETENTION_DAYS: &str = "OPENWA_MESSAGE_RETENTION_DAYS";
    pub const AUDIT_RETENTION_DAYS: &str = "OPENWA_AUDIT_RETENTION_DAYS";
}

/// Names of the resources one deployment uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// The DynamoDB table (single-table design, see `docs/aws-dynamodb.md`).
    pub table: String,
    /// The S3 bucket for media and auth snapshots.
    pub bucket: String,
    /// Prefix of every SQS queue name (`<prefix>-events`, `<prefix>-send-<session>.fifo`, …).
    pub queue_prefix: String,
    /// Prefix of every Secrets Manager secret name (`<prefix>/<name>`).
    pub secret_prefix: String,
    /// Receives before SQS moves a job to the queue's dead-letter queue (redrive policy).
    pub max_receives: u32,
    /// Days a message (and its idempotency key) is kept after creation, through DynamoDB's TTL;
    /// 0 keeps messages for good (the default, like the embedded backend).
    pub message_retention_days: u32,
    /// Days an audit entry is kept; 0 keeps them for good. Default 400 (a year and a margin).
    pub audit_retention_days: u32,
}

/// Longest queue prefix: per-session queue names must stay within SQS's 80 characters.
pub const MAX_QUEUE_PREFIX: usize = 12;

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            table: "openwa".into(),
            bucket: "openwa".into(),
            queue_prefix: "openwa".into(),
            secret_prefix: "openwa".into(),
            max_receives: 5,
            message_retention_days: 0,
            audit_retention_days: 400,
        }
    }
}

impl AwsSettings {
    /// Reads the settings from `OPENWA_*` variables; unset ones keep their defaults.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), with an injectable lookup (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut s = Self::default();
        if let Some(v) = lookup(env::TABLE) {
            s.table = v;
        }
        if let Some(v) = lookup(env::BUCKET) {
            s.bucket = v;
        }
        if let Some(v) = lookup(env::QUEUE_PREFIX) {
            s.queue_prefix = v;
        }
        if let Some(v) = lookup(env::SECRET_PREFIX) {
            s.secret_prefix = v;
        }
        if let Some(v) = lookup(env::MAX_RECEIVES) {
            s.max_receives = v
                .parse()
                .map_err(|_| Error::invalid(env::MAX_RECEIVES, "must be a whole number"))?;
        }
        let days = |name: &str, value: String| {
            value
                .parse::<u32>()
                .ok()
                .filter(|d| *d <= 36_500)
                .ok_or_else(|| Error::invalid(name, "must be a whole number of days (0-36500)"))
        };
        if let Some(v) = lookup(env::MESSAGE_RETENTION_DAYS) {
            s.message_retention_days = days(env::MESSAGE_RETENTION_DAYS, v)?;
        }
        if let Some(v) = lookup(env::AUDIT_RETENTION_DAYS) {
            s.audit_retention_days = days(env::AUDIT_RETENTION_DAYS, v)?;
        }
        s.validate()?;
        Ok(s)
    }

    /// Checks the names against the services' rules.
    pub fn validate(&self) -> Result<()> {
        let simple = |v: &str| {
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if self.table.len() < 3 || self.table.len() > 255 || !simple(&self.table) {
            return Err(Error::invalid(env::TABLE, "must be 3-255 of [A-Za-z0-9_-]"));
        }
        let bucket_ok = (3..=63).contains(&self.bucket.len())
            && self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(Error::invalid(env::BUCKET, "must be 3-63 of [a-z0-9.-]"));
        }
        if self.queue_prefix.is_empty()
            || self.queue_prefix.len() > MAX_QUEUE_PREFIX
            || !simple(&self.queue_prefix)
        {
            return Err(Error::invalid(
                env::QUEUE_PREFIX,
                format!("must be 1-{MAX_QUEUE_PREFIX} of [A-Za-z0-9_-]"),
            ));
        }
        if self.secret_prefix.is_empty() || !simple(&self.secret_prefix) {
            return Err(Error::invalid(env::SECRET_PREFIX, "must be [A-Za-z0-9_-]+"));
        }
        if !(1..=1000).contains(&self.max_receives) {
            return Err(Error::invalid(env::MAX_RECEIVES, "must be 1-1000"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_keep_the_defaults_and_set_ones_win() {
        let s = AwsSettings::from_lookup(|_| None).unwrap();
        assert_eq!(s, AwsSettings::default());
        let s =
            AwsSettings::from_lookup(|n| (n == env::TABLE).then(|| "prod-openwa".into())).unwrap();
        assert_eq!(s.table, "prod-openwa");
    }

    #[test]
    fn names_the_services_would_refuse_are_invalid() {
        for (var, value) in [
            (env::TABLE, "a b"),
            (env::BUCKET, "Upper"),
            (env::QUEUE_PREFIX, "much-too-long-prefix"),
            (env::SECRET_PREFIX, "a/b"),
            (env::MAX_RECEIVES, "0"),
            (env::MAX_RECEIVES, "five"),
            (env::MESSAGE_RETENTION_DAYS, "-1"),
            (env::AUDIT_RETENTION_DAYS, "forever"),
        ] {
            let r = AwsSettings::from_lookup(|n| (n == var).then(|| value.to_string()));
            assert!(
                matches!(r, Err(Error::Invalid { ref field, .. }) if field == var),
                "{var}={value}: {r:?}"
            );
        }
    }
}
