# The runner task's policy: exactly what infra/aws/src/iam.rs RUNNER declares, every statement
# on named resources.

locals {
  arn_prefix = "arn:${var.partition}"

  session_queue_arns = [
    "${local.arn_prefix}:sqs:${var.region}:${var.account_id}:${var.queue_prefix}-send-*",
    "${local.arn_prefix}:sqs:${var.region}:${var.account_id}:${var.queue_prefix}-control-*",
    # Their shared dead-letter queues, named outside those patterns (resources.rs SEND_DLQ).
    var.queue_arns["dlq-send.fifo"],
    var.queue_arns["dlq-control"],
  ]
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.runner.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [1]
    content {
      sid       = "PullImage"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      resources = [var.ecr_repository_arn]
    }
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [1]
    content {
      sid       = "EcrToken"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
}

data "aws_iam_policy_document" "runner_task" {
  statement {
    sid = "Table"
    actions = [
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
    resources = [var.table_arn, "${var.table_arn}/index/*"]
  }

  statement {
    sid = "SessionQueues"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueUrl",
      "sqs:GetQueueAttributes",
      "sqs:SendMessage",
    ]
    resources = local.session_queue_arns
  }

  statement {
    sid       = "Events"
    actions   = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
    resources = [var.queue_arns["events"]]
  }

  statement {
    sid     = "Objects"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [
      "${var.bucket_arn}/snapshots/*",
      "${var.bucket_arn}/media/*",
      "${var.bucket_arn}/queue-payloads/*",
    ]
  }

  # Written by the first runner that snapshots a session (runner/src/snapshot.rs).
  statement {
    sid       = "SnapshotKey"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"]
    resources = [var.secret_arns["runner-snapshot-key"]]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [1]
    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    }
  }

  # Scale-in protection while the runner holds sessions: runner/src/cloud.rs calls the ECS
  # agent's task-protection endpoint, which acts with this role. (The sessions metric needs no
  # grant: it is an Embedded Metric Format line in the container's log.)
  statement {
    sid       = "TaskProtection"
    actions   = ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"]
    resources = ["${local.arn_prefix}:ecs:${var.region}:${var.account_id}:task/${var.name}/*"]
  }
}
