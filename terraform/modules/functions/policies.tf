# One least-privilege policy per function: exactly the actions infra/aws/src/iam.rs declares for
# it, each on the resources it is used on (tests/terraform.rs checks both). Only X-Ray may use
# `*`: it has no resource-level permissions.

locals {
  table_resources = [var.table_arn, "${var.table_arn}/index/*"]

  # Per-session queues, created and deleted at run time by the API (resources.rs `queue_name`).
  session_queue_arns = [
    "${local.arn_prefix}:sqs:${var.region}:${var.account_id}:${var.queue_prefix}-send-*",
    "${local.arn_prefix}:sqs:${var.region}:${var.account_id}:${var.queue_prefix}-control-*",
    # Their shared dead-letter queues, named outside those patterns (resources.rs SEND_DLQ).
    var.queue_arns["dlq-send.fifo"],
    var.queue_arns["dlq-control"],
  ]

  log_group_arn = { for k, g in aws_cloudwatch_log_group.function : k => "${g.arn}:*" }

  policies = {
    api        = data.aws_iam_policy_document.api.json
    authorizer = data.aws_iam_policy_document.authorizer.json
    fanout     = data.aws_iam_policy_document.fanout.json
    deliver    = data.aws_iam_policy_document.deliver.json
    ingress    = data.aws_iam_policy_document.ingress.json
    outbox     = data.aws_iam_policy_document.outbox.json
  }

  dynamo_write = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:ConditionCheckItem",
    "dynamodb:BatchWriteItem",
  ]
  sqs_consume = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
  sqs_produce = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
  objects_rw  = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
}

# Logs and traces, shared by every function's document.
data "aws_iam_policy_document" "runtime" {
  for_each = local.functions

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [local.log_group_arn[each.key]]
  }

  statement {
    sid       = "Traces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  # With a customer managed key, every encrypted queue, object, item and secret needs it.
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [1]
    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    }
  }
}

data "aws_iam_policy_document" "api" {
  source_policy_documents = [data.aws_iam_policy_document.runtime["api"].json]

  statement {
    sid       = "Table"
    actions   = local.dynamo_write
    resources = local.table_resources
  }

  statement {
    sid = "SessionQueues"
    actions = [
      "sqs:CreateQueue",
      "sqs:DeleteQueue",
      "sqs:GetQueueUrl",
      "sqs:GetQueueAttributes",
      "sqs:SetQueueAttributes",
      "sqs:SendMessage",
    ]
    resources = local.session_queue_arns
  }

  statement {
    sid       = "Produce"
    actions   = local.sqs_produce
    resources = [var.queue_arns["deliveries"], var.queue_arns["events"]]
  }

  statement {
    sid       = "Objects"
    actions   = local.objects_rw
    resources = ["${var.bucket_arn}/media/*", "${var.bucket_arn}/queue-payloads/*"]
  }

  # Deleting a session's queue deletes its oversized payloads: list them, then DeleteObjects.
  statement {
    sid       = "ListPayloads"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["queue-payloads/*"]
    }
  }

  # Written on the first cold start (infra/aws/src/admin_key.rs).
  statement {
    sid       = "AdminKey"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"]
    resources = [var.secret_arns["admin-key"]]
  }
}

data "aws_iam_policy_document" "authorizer" {
  source_policy_documents = [data.aws_iam_policy_document.runtime["authorizer"].json]

  statement {
    sid       = "KeyLookup"
    actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = local.table_resources
  }
}

data "aws_iam_policy_document" "fanout" {
  source_policy_documents = [data.aws_iam_policy_document.runtime["fanout"].json]

  statement {
    sid       = "Consume"
    actions   = local.sqs_consume
    resources = [var.queue_arns["events"]]
  }

  statement {
    sid       = "Table"
    actions   = local.dynamo_write
    resources = local.table_resources
  }

  # Deliveries out; malformed events dead-lettered by the batch adapter.
  statement {
    sid       = "Produce"
    actions   = local.sqs_produce
    resources = [var.queue_arns["deliveries"], var.queue_arns["events-dlq"]]
  }

  statement {
    sid       = "Payloads"
    actions   = local.objects_rw
    resources = ["${var.bucket_arn}/queue-payloads/*"]
  }
}

data "aws_iam_policy_document" "deliver" {
  source_policy_documents = [data.aws_iam_policy_document.runtime["deliver"].json]

  statement {
    sid       = "Consume"
    actions   = local.sqs_consume
    resources = [var.queue_arns["deliveries"]]
  }

  # Retry later with a delay; dead-letter after the last attempt.
  statement {
    sid       = "Produce"
    actions   = local.sqs_produce
    resources = [var.queue_arns["deliveries"], var.queue_arns["deliveries-dlq"]]
  }

  statement {
    sid       = "Table"
    actions   = local.dynamo_write
    resources = local.table_resources
  }

  # Oversized delivery jobs: read back on receive, deleted on ack.
  statement {
    sid       = "Payloads"
    actions   = ["s3:GetObject", "s3:DeleteObject"]
    resources = ["${var.bucket_arn}/queue-payloads/*"]
  }

  # Webhooks whose target is a customer SQS queue: only the queues the operator lists.
  dynamic "statement" {
    for_each = length(var.webhook_target_queue_arns) > 0 ? [1] : []
    content {
      sid       = "WebhookTargetQueues"
      actions   = ["sqs:SendMessage"]
      resources = var.webhook_target_queue_arns
    }
  }
}

data "aws_iam_policy_document" "ingress" {
  source_policy_documents = [data.aws_iam_policy_document.runtime["ingress"].json]

  statement {
    sid       = "Consume"
    actions   = local.sqs_consume
    resources = [var.queue_arns["ingress"]]
  }

  statement {
    sid       = "Table"
    actions   = local.dynamo_write
    resources = local.table_resources
  }

  # Send jobs; a session whose queue was lost gets it created again.
  statement {
    sid       = "SessionQueues"
    actions   = ["sqs:CreateQueue", "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes", "sqs:SendMessage"]
    resources = local.session_queue_arns
  }

  statement {
    sid       = "Produce"
    actions   = local.sqs_produce
    resources = [var.queue_arns["events"], var.queue_arns["ingress-dlq"]]
  }

  statement {
    sid       = "Objects"
    actions   = local.objects_rw
    resources = ["${var.bucket_arn}/media/*", "${var.bucket_arn}/queue-payloads/*"]
  }
}

data "aws_iam_policy_document" "outbox" {
  source_policy_documents = [data.aws_iam_policy_document.runtime["outbox"].json]

  # The stream event source mapping reads with the function's role.
  statement {
    sid       = "Stream"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
    resources = [var.table_stream_arn]
  }

  # Session metadata for the forwarded events.
  statement {
    sid       = "Table"
    actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
    resources = local.table_resources
  }

  statement {
    sid       = "Produce"
    actions   = local.sqs_produce
    resources = [var.queue_arns["events"]]
  }

  statement {
    sid       = "Objects"
    actions   = local.objects_rw
    resources = ["${var.bucket_arn}/queue-payloads/*"]
  }
}
