//! Every AWS resource the stack needs, defined once: `bootstrap` creates them from here and
//! the Terraform under `terraform/` mirrors them (a test parses the HCL and compares).
//!
//! - one DynamoDB table, single-table design: `pk`/`sk`, two generic GSIs, TTL on `ttl`
//!   (access patterns in `docs/aws-dynamodb.md`)
//! - SQS: `events`, `deliveries`, `ingress` (standard, each with a DLQ and redrive), and per
//!   session a FIFO send queue and a standard control queue, created and deleted with the
//!   session, redriving into shared per-kind DLQs
//! - one S3 bucket (SSE, public access blocked) for media and auth snapshots
//! - Secrets Manager secrets under `<secret_prefix>/`

use openwa_core::ports::QueueName;
use sha2::{Digest, Sha256};

use crate::settings::AwsSettings;

/// The table's key schema.
pub mod table {
    /// Partition key attribute (string).
    pub const PK: &str = "pk";
    /// Sort key attribute (string).
    pub const SK: &str = "sk";
    /// Epoch-seconds attribute DynamoDB's TTL deletes items by. Readers must still filter
    /// expired items: deletion is lazy (and never happens on moto).
    pub const TTL: &str = "ttl";

    /// A global secondary index: name, partition and sort key attributes (strings), projecting
    /// every attribute.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Gsi {
        pub name: &'static str,
        pub pk: &'static str,
        pub sk: &'static str,
    }

    /// Listings (sessions, keys, webhooks, deliveries by webhook) and lookups by secondary ids.
    pub const GSI1: Gsi = Gsi {
        name: "gsi1",
        pk: "gsi1pk",
        sk: "gsi1sk",
    };
    /// Second listing per item (claimable sessions by lease expiry, deliveries by status).
    pub const GSI2: Gsi = Gsi {
        name: "gsi2",
        pk: "gsi2pk",
        sk: "gsi2sk",
    };
    pub const GSIS: [Gsi; 2] = [GSI1, GSI2];

    /// The table's stream carries new item images: the outbox relay reads the outbox items
    /// from it (`dynamo::outbox`).
    pub const STREAM_VIEW: &str = "NEW_IMAGE";
}

/// A queue the stack creates up front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticQueue {
    /// Name suffix after `<prefix>-` (FIFO names end in `.fifo`).
    pub suffix: &'static str,
    pub fifo: bool,
    /// Suffix of the queue it redrives into, if any.
    pub dead_letter: Option<&'static str>,
    /// Default visibility timeout (seconds); consumers' Lambda timeouts must fit inside.
    pub visibility_secs: u32,
    /// Message retention (seconds).
    pub retention_secs: u32,
}

/// Two weeks, SQS's maximum: dead letters wait for an operator.
pub const DLQ_RETENTION_SECS: u32 = 14 * 24 * 3600;
/// Four days, SQS's default.
pub const RETENTION_SECS: u32 = 4 * 24 * 3600;

/// The queues `bootstrap` creates, DLQs first.
pub fn static_queues() -> Vec<StaticQueue> {
    let dlq = |suffix, fifo| StaticQueue {
        suffix,
        fifo,
        dead_letter: None,
        visibility_secs: 30,
        retention_secs: DLQ_RETENTION_SECS,
    };
    let main = |suffix, dead_letter, visibility_secs| StaticQueue {
        suffix,
        fifo: false,
        dead_letter: Some(dead_letter),
        visibility_secs,
        retention_secs: RETENTION_SECS,
    };
    vec![
        dlq("events-dlq", false),
        dlq("deliveries-dlq", false),
        dlq("ingress-dlq", false),
        dlq(SEND_DLQ, true),
        dlq(CONTROL_DLQ, false),
        main("events", "events-dlq", 60),
        main("deliveries", "deliveries-dlq", 60),
        main("ingress", "ingress-dlq", 60),
    ]
}

/// Shared dead-letter queue of every session's send queue. Named outside the `send-<session>`
/// pattern so that no session id (`dlq`, say) can name its own queue after it.
pub const SEND_DLQ: &str = "dlq-send.fifo";
/// Shared dead-letter queue of every session's control queue (outside `control-<session>`).
pub const CONTROL_DLQ: &str = "dlq-control";
/// Visibility timeout of per-session queues (the runner extends it for long sends).
pub const SESSION_QUEUE_VISIBILITY_SECS: u32 = 30;

/// SQS's limit on queue names.
pub const MAX_QUEUE_NAME: usize = 80;

/// The SQS queue name for `queue` under `settings.queue_prefix`. Session ids too long to fit
/// SQS's 80 characters are shortened with a hash, so every session still gets its own queue.
pub fn queue_name(settings: &AwsSettings, queue: &QueueName) -> String {
    let prefix = &settings.queue_prefix;
    let per_session = |kind: &str, session: &str, tail: &str| {
        let full = format!("{prefix}-{kind}-{session}{tail}");
        if full.len() <= MAX_QUEUE_NAME {
            return full;
        }
        let digest = Sha256::digest(session.as_bytes());
        let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let room = MAX_QUEUE_NAME - (prefix.len() + kind.len() + tail.len() + 2 + 1 + hash.len());
        format!(
            "{prefix}-{kind}-{}-{hash}{tail}",
            &session[..room.min(session.len())]
        )
    };
    match queue {
        QueueName::Send(s) => per_session("send", s.as_str(), ".fifo"),
        QueueName::Control(s) => per_session("control", s.as_str(), ""),
        QueueName::Events => format!("{prefix}-events"),
        QueueName::Deliveries => format!("{prefix}-deliveries"),
        QueueName::Ingress => format!("{prefix}-ingress"),
    }
}

/// The name of the dead-letter queue `queue` redrives into.
pub fn dead_letter_queue_name(settings: &AwsSettings, queue: &QueueName) -> String {
    let prefix = &settings.queue_prefix;
    match queue {
        QueueName::Send(_) => format!("{prefix}-{SEND_DLQ}"),
        QueueName::Control(_) => format!("{prefix}-{CONTROL_DLQ}"),
        QueueName::Events => format!("{prefix}-events-dlq"),
        QueueName::Deliveries => format!("{prefix}-deliveries-dlq"),
        QueueName::Ingress => format!("{prefix}-ingress-dlq"),
    }
}

/// Key prefixes inside the bucket (lifecycle rules in Terraform apply per prefix).
pub mod bucket {
    /// Uploaded and received media, content-addressed.
    pub const MEDIA_PREFIX: &str = "media/";
    /// Encrypted auth snapshots (`snapshots/<session>/latest`); versioned.
    pub const SNAPSHOT_PREFIX: &str = "snapshots/";
    /// Job payloads too large for SQS.
    pub const OVERSIZE_PREFIX: &str = "queue-payloads/";
}

/// Secret names the stack uses (under `<secret_prefix>/`).
pub mod secrets {
    /// The bootstrap admin API key.
    pub const ADMIN_KEY: &str = "admin-key";
    /// The AES-256-GCM key of auth snapshots.
    pub const SNAPSHOT_KEY: &str = "runner-snapshot-key";
    pub const ALL: [&str; 2] = [ADMIN_KEY, SNAPSHOT_KEY];
}

/// The Secrets Manager name of secret `name`.
pub fn secret_name(settings: &AwsSettings, name: &str) -> String {
    format!("{}/{name}", settings.secret_prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openwa_core::id::SessionId;

    #[test]
    fn every_queue_name_fits_sqs_limits() {
        let mut settings = AwsSettings::default();
        settings.queue_prefix = "x".repeat(crate::settings::MAX_QUEUE_PREFIX);
        let long = SessionId::parse(&"s".repeat(SessionId::MAX_LEN)).unwrap();
        let short = SessionId::parse("sales").unwrap();
        for q in [
            QueueName::Send(long.clone()),
            QueueName::Control(long.clone()),
            QueueName::Send(short.clone()),
            QueueName::Events,
        ] {
            let name = queue_name(&settings, &q);
            assert!(name.len() <= MAX_QUEUE_NAME, "{name}");
            assert_eq!(name.ends_with(".fifo"), q.is_fifo(), "{name}");
        }
        assert_eq!(
            queue_name(&AwsSettings::default(), &QueueName::Send(short)),
            "openwa-send-sales.fifo"
        );
    }

    #[test]
    fn no_session_id_names_a_shared_dead_letter_queue() {
        let settings = AwsSettings::default();
        let shared = [
            dead_letter_queue_name(&settings, &QueueName::Events),
            dead_letter_queue_name(&settings, &QueueName::Send(SessionId::parse("x").unwrap())),
            dead_letter_queue_name(
                &settings,
                &QueueName::Control(SessionId::parse("x").unwrap()),
            ),
        ];
        for id in ["dlq", "send-dlq", "dlq-send", "events", "control-dlq"] {
            let Ok(id) = SessionId::parse(id) else {
                continue;
            };
            for q in [QueueName::Send(id.clone()), QueueName::Control(id)] {
                let name = queue_name(&settings, &q);
                assert!(!shared.contains(&name), "{name} is a shared queue");
            }
        }
    }

    #[test]
    fn long_session_ids_still_get_distinct_queues() {
        let settings = AwsSettings::default();
        let a = SessionId::parse(&format!("{}a", "s".repeat(SessionId::MAX_LEN - 1))).unwrap();
        let b = SessionId::parse(&format!("{}b", "s".repeat(SessionId::MAX_LEN - 1))).unwrap();
        assert_ne!(
            queue_name(&settings, &QueueName::Send(a)),
            queue_name(&settings, &QueueName::Send(b))
        );
    }
}
