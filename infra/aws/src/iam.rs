//! Least privilege, declared once: for each deployable, the AWS actions its code calls (through
//! the adapters in this crate, plus what the Lambda runtime and ECS need) and the `OPENWA_*`
//! variables it reads. `terraform/` grants exactly these and sets exactly these;
//! `tests/terraform.rs` parses the HCL and checks both, so a new SDK call or a new variable that
//! is not added here and there fails CI instead of failing in production with `AccessDenied`.
//!
//! How the actions were derived: every `ctx.dynamo.<op>()`, `ctx.sqs.<op>()`, `ctx.s3.<op>()`
//! and `ctx.secrets.<op>()` call site in `src/` maps to one IAM action (`transact_write_items`
//! -> `dynamodb:TransactWriteItems`, plus `dynamodb:ConditionCheckItem` for its condition
//! checks; `send_message_batch` -> `sqs:SendMessage`; `delete_message_batch` ->
//! `sqs:DeleteMessage`; `batch_get_item` -> `dynamodb:BatchGetItem`; presigned S3 URLs are
//! signed with the function's own credentials, so they need `s3:GetObject`/`s3:PutObject`
//! too). Each component gets the ports it actually uses.

use crate::resources::{bucket, secrets};
use crate::settings::env as settings_env;

/// What a grant applies to. Each target is one set of resource-scoped ARNs in Terraform; the
/// test finds a statement granting the action whose `resources` mention every
/// [`hint`](Target::hints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The table and its indexes (`<table>` and `<table>/index/*`).
    Table,
    /// The table's stream (read by the outbox function's event source mapping).
    TableStream,
    /// One static queue, by suffix (`events`, `deliveries-dlq`, …).
    Queue(&'static str),
    /// Every session's queues: `<prefix>-send-*` and `<prefix>-control-*`, created and deleted
    /// at run time, plus the shared DLQs they redrive into.
    SessionQueues,
    /// Objects under one bucket prefix.
    Objects(&'static str),
    /// Listing the bucket, limited to one prefix by an `s3:prefix` condition.
    Listing(&'static str),
    /// One secret, by name under the secret prefix.
    Secret(&'static str),
    /// The runner's own ECS tasks (task scale-in protection).
    RunnerTasks,
    /// Customer SQS queues that webhooks may target (a deployment input).
    WebhookTargetQueues,
}

impl Target {
    /// Strings the Terraform `resources` of a statement for this target contain.
    pub fn hints(self) -> Vec<String> {
        match self {
            Target::Table => vec!["var.table_arn".into(), "/index/*".into()],
            Target::TableStream => vec!["var.table_stream_arn".into()],
            Target::Queue(suffix) => vec![format!("var.queue_arns[\"{suffix}\"]")],
            Target::SessionQueues => vec![
                "-send-*".into(),
                "-control-*".into(),
                "var.queue_arns[\"dlq-send.fifo\"]".into(),
                "var.queue_arns[\"dlq-control\"]".into(),
            ],
            Target::Objects(prefix) => vec![format!("/{prefix}*")],
            Target::Listing(_) => vec!["var.bucket_arn".into()],
            Target::Secret(name) => vec![format!("var.secret_arns[\"{name}\"]")],
            Target::RunnerTasks => vec![":task/".into()],
            Target::WebhookTargetQueues => vec!["var.webhook_target_queue_arns".into()],
        }
    }
}

/// Some actions on one target.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub target: Target,
    pub actions: &'static [&'static str],
}

/// One deployable: its IAM policy (the Terraform `aws_iam_policy_document` named `policy`) and
/// the environment variables it reads.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    /// The binary (`openwa-api`, …).
    pub binary: &'static str,
    /// Label of its `data "aws_iam_policy_document"` in `terraform/`.
    pub policy: &'static str,
    pub grants: &'static [Grant],
    /// Variables the binary reads that Terraform must set (optional tuning variables with
    /// good defaults are not listed).
    pub env: &'static [&'static str],
}

/// DynamoDB actions of the stores (every store shares the one table).
const DYNAMO_READ: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
];
const DYNAMO_WRITE: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:ConditionCheckItem",
    "dynamodb:BatchWriteItem",
];
/// Consuming a queue through a Lambda event source mapping (ESM polls with the role).
const SQS_CONSUME: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
];
/// Producing to a queue the adapter resolves by name.
const SQS_PRODUCE: &[&str] = &[
    "sqs:SendMessage",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
];
/// Session queues' lifecycle: the API creates them with the session (`ensure_queue`: look up,
/// create, read the shared DLQ's ARN, set the redrive) and deletes them with it. No tags are
/// set, so no `sqs:TagQueue`.
const SQS_SESSION_LIFECYCLE: &[&str] = &[
    "sqs:CreateQueue",
    "sqs:DeleteQueue",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sqs:SetQueueAttributes",
    "sqs:SendMessage",
];
/// Sending a job to a session queue, creating the queue when it is missing (the message
/// service heals sessions whose queue was lost).
const SQS_SESSION_SEND: &[&str] = &[
    "sqs:CreateQueue",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sqs:SetQueueAttributes",
    "sqs:SendMessage",
];
/// The runner works session queues: receive, ack, retry later, extend, dead-letter, and reads
/// the shared send DLQ (`<prefix>-dlq-send.fifo`, granted with the session queues) to fail dead
/// jobs' messages. Batch calls need the same actions.
const SQS_SESSION_WORK: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sqs:SendMessage",
];
const OBJECTS_RW: &[&str] = &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"];
/// Consuming oversized jobs: read the payload back, delete it on ack.
const OBJECTS_CONSUME: &[&str] = &["s3:GetObject", "s3:DeleteObject"];
/// Secrets the code fills on first use (admin key on cold start, snapshot key on first
/// snapshot). Terraform creates the secret without a value, so the key never enters its state
/// and `PutSecretValue` succeeds (the adapter's `CreateSecret` fallback is never reached).
const SECRET_ENSURE: &[&str] = &[
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
];

/// What every Lambda function reads: where the stack's resources are.
pub const SETTINGS_ENV: &[&str] = &[
    settings_env::TABLE,
    settings_env::BUCKET,
    settings_env::QUEUE_PREFIX,
    settings_env::SECRET_PREFIX,
    settings_env::MAX_RECEIVES,
    settings_env::MESSAGE_RETENTION_DAYS,
    settings_env::AUDIT_RETENTION_DAYS,
];

/// The api function's own variables (`functions/lambda/src/api.rs` `env`; this crate cannot
/// depend on that one, so the names are repeated and the Terraform test checks them).
pub const API_ENV: &[&str] = &[
    settings_env::TABLE,
    settings_env::BUCKET,
    settings_env::QUEUE_PREFIX,
    settings_env::SECRET_PREFIX,
    settings_env::MAX_RECEIVES,
    settings_env::MESSAGE_RETENTION_DAYS,
    settings_env::AUDIT_RETENTION_DAYS,
    "OPENWA_TRUST_GATEWAY_AUTHORIZER",
    "OPENWA_RATE_LIMIT_PER_MINUTE",
    "OPENWA_PUBLIC_BASE_URL",
];

/// The deliver function's variables (`functions/lambda/src/bin/openwa-deliver.rs`): its
/// timeout per attempt must stay below the function's timeout, so Terraform sets both.
pub const DELIVER_ENV: &[&str] = &[
    settings_env::TABLE,
    settings_env::BUCKET,
    settings_env::QUEUE_PREFIX,
    settings_env::SECRET_PREFIX,
    settings_env::MAX_RECEIVES,
    settings_env::MESSAGE_RETENTION_DAYS,
    settings_env::AUDIT_RETENTION_DAYS,
    "OPENWA_WEBHOOK_TIMEOUT_MS",
    "OPENWA_EMF_METRICS",
];

pub const API: Component = Component {
    binary: "openwa-api",
    policy: "api",
    grants: &[
        Grant {
            target: Target::Table,
            actions: DYNAMO_WRITE,
        },
        Grant {
            target: Target::SessionQueues,
            actions: SQS_SESSION_LIFECYCLE,
        },
        // Webhook tests and redeliveries enqueue delivery jobs.
        Grant {
            target: Target::Queue("deliveries"),
            actions: SQS_PRODUCE,
        },
        // Session status changes made by the API (stop, logout) are events too.
        Grant {
            target: Target::Queue("events"),
            actions: SQS_PRODUCE,
        },
        Grant {
            target: Target::Objects(bucket::MEDIA_PREFIX),
            actions: OBJECTS_RW,
        },
        Grant {
            target: Target::Objects(bucket::OVERSIZE_PREFIX),
            actions: OBJECTS_RW,
        },
        // Deleting a session's queue deletes its oversized payloads (list + DeleteObjects).
        Grant {
            target: Target::Listing(bucket::OVERSIZE_PREFIX),
            actions: &["s3:ListBucket"],
        },
        Grant {
            target: Target::Secret(secrets::ADMIN_KEY),
            actions: SECRET_ENSURE,
        },
    ],
    env: API_ENV,
};

pub const AUTHORIZER: Component = Component {
    binary: "openwa-authorizer",
    policy: "authorizer",
    grants: &[
        // Looks the key up by hash; records its use and audits refusals.
        Grant {
            target: Target::Table,
            actions: DYNAMO_READ,
        },
        Grant {
            target: Target::Table,
            actions: &["dynamodb:PutItem", "dynamodb:UpdateItem"],
        },
    ],
    env: SETTINGS_ENV,
};

pub const FANOUT: Component = Component {
    binary: "openwa-fanout",
    policy: "fanout",
    grants: &[
        Grant {
            target: Target::Queue("events"),
            actions: SQS_CONSUME,
        },
        // The batch adapter dead-letters malformed messages itself.
        Grant {
            target: Target::Queue("events-dlq"),
            actions: SQS_PRODUCE,
        },
        Grant {
            target: Target::Table,
            actions: DYNAMO_WRITE,
        },
        Grant {
            target: Target::Queue("deliveries"),
            actions: SQS_PRODUCE,
        },
        Grant {
            target: Target::Objects(bucket::OVERSIZE_PREFIX),
            actions: OBJECTS_RW,
        },
    ],
    env: SETTINGS_ENV,
};

pub const DELIVER: Component = Component {
    binary: "openwa-deliver",
    policy: "deliver",
    grants: &[
        Grant {
            target: Target::Queue("deliveries"),
            actions: SQS_CONSUME,
        },
        // Retry later with a delay, and dead-letter after the last attempt.
        Grant {
            target: Target::Queue("deliveries"),
            actions: SQS_PRODUCE,
        },
        Grant {
            target: Target::Queue("deliveries-dlq"),
            actions: SQS_PRODUCE,
        },
        Grant {
            target: Target::Table,
            actions: DYNAMO_WRITE,
        },
        Grant {
            target: Target::Objects(bucket::OVERSIZE_PREFIX),
            actions: OBJECTS_CONSUME,
        },
        // `sqs_target`: one SendMessage to the queue URL as given.
        Grant {
            target: Target::WebhookTargetQueues,
            actions: &["sqs:SendMessage"],
        },
    ],
    env: DELIVER_ENV,
};

pub const INGRESS: Component = Component {
    binary: "openwa-ingress",
    policy: "ingress",
    grants: &[
        Grant {
            target: Target::Queue("ingress"),
            actions: SQS_CONSUME,
        },
        Grant {
            target: Target::Queue("ingress-dlq"),
            actions: SQS_PRODUCE,
        },
        Grant {
            target: Target::Table,
            actions: DYNAMO_WRITE,
        },
        // Accepted commands become send jobs on the session's FIFO queue.
        Grant {
            target: Target::SessionQueues,
            actions: SQS_SESSION_SEND,
        },
        Grant {
            target: Target::Queue("events"),
            actions: SQS_PRODUCE,
        },
        Grant {
            target: Target::Objects(bucket::MEDIA_PREFIX),
            actions: OBJECTS_RW,
        },
        Grant {
            target: Target::Objects(bucket::OVERSIZE_PREFIX),
            actions: OBJECTS_RW,
        },
    ],
    env: SETTINGS_ENV,
};

pub const OUTBOX: Component = Component {
    binary: "openwa-outbox",
    policy: "outbox",
    grants: &[
        // The stream event source mapping reads the stream with the function's role.
        Grant {
            target: Target::TableStream,
            actions: &[
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
            ],
        },
        // The session's metadata, attached to each event.
        Grant {
            target: Target::Table,
            actions: DYNAMO_READ,
        },
        Grant {
            target: Target::Queue("events"),
            actions: SQS_PRODUCE,
        },
        // Events over SQS's size limit go through S3.
        Grant {
            target: Target::Objects(bucket::OVERSIZE_PREFIX),
            actions: OBJECTS_RW,
        },
    ],
    env: SETTINGS_ENV,
};

/// Namespace of the metrics runners publish (`runner/src/cloud.rs`, as CloudWatch Embedded
/// Metric Format lines on stdout: the log driver delivers them, so no `PutMetricData` grant).
pub const METRICS_NAMESPACE: &str = "openwa";
/// The autoscaling metric: sessions a runner holds (Terraform tracks its average), with the
/// dimension `Service` = `OPENWA_METRICS_SERVICE`.
pub const SESSIONS_PER_RUNNER_METRIC: &str = "SessionsHeld";

/// The runner's variables on ECS, beyond [`SETTINGS_ENV`].
pub const RUNNER_ENV: &[&str] = &[
    settings_env::TABLE,
    settings_env::BUCKET,
    settings_env::QUEUE_PREFIX,
    settings_env::SECRET_PREFIX,
    settings_env::MAX_RECEIVES,
    settings_env::MESSAGE_RETENTION_DAYS,
    settings_env::AUDIT_RETENTION_DAYS,
    "OPENWA_BACKEND",
    "OPENWA_RUNNER_CAPACITY",
    "OPENWA_LEASE_SECS",
    "OPENWA_DRAIN_GRACE_SECS",
    "OPENWA_RUNNER_LISTEN",
    "OPENWA_PROFILES_DIR",
    "OPENWA_WA_URL",
    "OPENWA_DATA_DIR",
    "OPENWA_EMF_METRICS",
    "OPENWA_METRICS_SERVICE",
];

pub const RUNNER: Component = Component {
    binary: "openwa-runner",
    policy: "runner_task",
    grants: &[
        Grant {
            target: Target::Table,
            actions: DYNAMO_WRITE,
        },
        Grant {
            target: Target::SessionQueues,
            actions: SQS_SESSION_WORK,
        },
        Grant {
            target: Target::Queue("events"),
            actions: SQS_PRODUCE,
        },
        Grant {
            target: Target::Objects(bucket::SNAPSHOT_PREFIX),
            actions: OBJECTS_RW,
        },
        Grant {
            target: Target::Objects(bucket::MEDIA_PREFIX),
            actions: OBJECTS_RW,
        },
        Grant {
            target: Target::Objects(bucket::OVERSIZE_PREFIX),
            actions: OBJECTS_RW,
        },
        Grant {
            target: Target::Secret(secrets::SNAPSHOT_KEY),
            actions: SECRET_ENSURE,
        },
        // Scale-in protection through the ECS agent's endpoint, which acts with the task role.
        Grant {
            target: Target::RunnerTasks,
            actions: &["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
        },
    ],
    env: RUNNER_ENV,
};

/// Every deployable, in the order of `terraform/modules/functions` then the runner.
pub const COMPONENTS: [Component; 7] = [API, AUTHORIZER, FANOUT, DELIVER, INGRESS, OUTBOX, RUNNER];

/// Actions that may be granted on `*` (no resource-level permissions exist for them).
pub const UNSCOPED_ACTIONS: &[&str] = &[
    "cloudwatch:PutMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "ecr:GetAuthorizationToken",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_a_service_colon_name_without_wildcards() {
        for c in COMPONENTS {
            for g in c.grants {
                for a in g.actions {
                    let (service, name) = a.split_once(':').expect(a);
                    assert!(!service.is_empty() && !name.is_empty(), "{a}");
                    assert!(!a.contains('*'), "{}: {a}", c.binary);
                }
            }
        }
    }

    #[test]
    fn every_lambda_reads_the_resource_settings() {
        for c in COMPONENTS {
            for var in SETTINGS_ENV {
                assert!(c.env.contains(var), "{} lacks {var}", c.binary);
            }
        }
    }
}
