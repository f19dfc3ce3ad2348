# The Lambda functions (crate functions/lambda): arm64, provided.al2023, handler `bootstrap`,
# one zip per binary from `cargo lambda build --release --arm64` (scripts/build-artifacts.sh).
# Each has its own role; policies.tf grants what infra/aws/src/iam.rs declares.

locals {
  # Mirrors infra/aws/src/settings.rs `env`: where the stack's resources are.
  settings_env = {
    OPENWA_TABLE         = var.table_name
    OPENWA_BUCKET        = var.bucket_name
    OPENWA_QUEUE_PREFIX  = var.queue_prefix
    OPENWA_SECRET_PREFIX = var.secret_prefix
    OPENWA_MAX_RECEIVES  = tostring(var.max_receives)

    OPENWA_MESSAGE_RETENTION_DAYS = tostring(var.message_retention_days)
    OPENWA_AUDIT_RETENTION_DAYS   = tostring(var.audit_retention_days)
  }

  # Every function's environment (tests/terraform.rs checks it covers iam.rs `env`).
  # The api and deliver variables are those of functions/lambda/src/api.rs `env` and
  # bin/openwa-deliver.rs.
  function_env = {
    api = merge(local.settings_env, {
      RUST_LOG                        = var.log_level
      OPENWA_TRUST_GATEWAY_AUTHORIZER = "true"
      OPENWA_RATE_LIMIT_PER_MINUTE    = tostring(var.rate_limit_per_minute)
      OPENWA_PUBLIC_BASE_URL          = var.public_base_url
    })
    authorizer = merge(local.settings_env, { RUST_LOG = var.log_level })
    fanout     = merge(local.settings_env, { RUST_LOG = var.log_level })
    deliver = merge(local.settings_env, {
      RUST_LOG                  = var.log_level
      OPENWA_WEBHOOK_TIMEOUT_MS = tostring(var.webhook_timeout_ms)
      OPENWA_EMF_METRICS        = "1"
    })
    ingress = merge(local.settings_env, { RUST_LOG = var.log_level })
    outbox  = merge(local.settings_env, { RUST_LOG = var.log_level })
  }

  # Visibility timeout of the consumed queues (resources.rs `static_queues()`): an SQS-triggered
  # function's timeout must fit inside it, or a batch still running is delivered again.
  queue_visibility_secs = 60

  functions = {
    api        = { memory = 512, timeout = 29, queue = null }
    authorizer = { memory = 256, timeout = 5, queue = null }
    fanout     = { memory = 256, timeout = 30, queue = "events" }
    deliver    = { memory = 256, timeout = 50, queue = "deliveries" }
    ingress    = { memory = 256, timeout = 30, queue = "ingress" }
    outbox     = { memory = 256, timeout = 30, queue = null }
  }

  # Event source mappings: partial batch failures, so one bad message does not redeliver its
  # whole batch.
  consumers = {
    fanout  = { queue = "events", batch_size = var.batch_size["fanout"], window = var.batching_window_secs["fanout"] }
    deliver = { queue = "deliveries", batch_size = var.batch_size["deliver"], window = var.batching_window_secs["deliver"] }
    ingress = { queue = "ingress", batch_size = var.batch_size["ingress"], window = var.batching_window_secs["ingress"] }
  }

  arn_prefix = "arn:${var.partition}"
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${var.name}-${each.key}"
  role   = aws_iam_role.function[each.key].id
  policy = local.policies[each.key]
}

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (default 30): a year of debug logs costs more than the service; raise it where policy requires.
  #checkov:skip=CKV_AWS_158:Log groups are encrypted by CloudWatch by default; set var.kms_key_arn for a customer managed key.
  for_each = local.functions

  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:SQS-triggered functions dead-letter through their queue's redrive policy; api and authorizer are invoked synchronously, where a Lambda DLQ never applies.
  #checkov:skip=CKV_AWS_117:The functions reach only AWS public endpoints and webhook receivers on the internet; a VPC would add a NAT gateway (~$33/month) for no isolation gain.
  #checkov:skip=CKV_AWS_272:Zips are built by scripts/build-artifacts.sh from this repository; AWS Signer code signing is optional hardening for operators who sign their builds.
  #checkov:skip=CKV_AWS_173:Environment variables hold only resource names, no secrets; set var.kms_key_arn to encrypt them with a customer managed key anyway.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is var.reserved_concurrency per function (unset by default: new accounts have a concurrency quota of 10 and reservations would fail); SQS consumers are capped by their event source mapping's maximum_concurrency instead.
  for_each = local.functions

  function_name = "${var.name}-${each.key}"
  description   = "openwa-${each.key}"
  role          = aws_iam_role.function[each.key].arn

  filename         = "${var.artifacts_dir}/openwa-${each.key}/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.artifacts_dir}/openwa-${each.key}/bootstrap.zip")
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["arm64"]

  memory_size                    = lookup(var.memory_mb, each.key, each.value.memory)
  timeout                        = lookup(var.timeout_secs, each.key, each.value.timeout)
  reserved_concurrent_executions = lookup(var.reserved_concurrency, each.key, -1)
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = local.function_env[each.key]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  lifecycle {
    precondition {
      condition     = each.value.queue == null || lookup(var.timeout_secs, each.key, each.value.timeout) <= local.queue_visibility_secs
      error_message = "An SQS-triggered function's timeout must not exceed its queue's visibility timeout (60 s)."
    }
    precondition {
      condition     = each.key != "deliver" || lookup(var.timeout_secs, each.key, each.value.timeout) * 1000 > var.webhook_timeout_ms
      error_message = "The deliver function's timeout must exceed one webhook attempt (webhook_timeout_ms)."
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.function]
}

resource "aws_lambda_event_source_mapping" "consumer" {
  for_each = local.consumers

  function_name                      = aws_lambda_function.this[each.key].arn
  event_source_arn                   = var.queue_arns[each.value.queue]
  batch_size                         = each.value.batch_size
  maximum_batching_window_in_seconds = each.value.window
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.max_consumer_concurrency[each.key]
  }
}

# The outbox: events written into the table in the same transaction as their change (an
# accepted send's `message.queued`, infra/aws/src/dynamo/outbox.rs) are forwarded to the events
# queue from the table's stream. Only outbox inserts invoke the function. A failed record is
# retried (bisecting the batch) until the stream drops it after 24 h: an event is only ever
# lost if the events queue stays unreachable for a day.
resource "aws_lambda_event_source_mapping" "outbox" {
  function_name                      = aws_lambda_function.this["outbox"].arn
  event_source_arn                   = var.table_stream_arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 100
  maximum_batching_window_in_seconds = 0
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = -1
  function_response_types            = ["ReportBatchItemFailures"]

  filter_criteria {
    filter {
      pattern = jsonencode({
        eventName = ["INSERT"]
        dynamodb  = { Keys = { pk = { S = [{ prefix = "OUTBOX#" }] } } }
      })
    }
  }
}
