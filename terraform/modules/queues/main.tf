# The queues created up front (mirrors infra/aws/src/resources.rs `static_queues()`; the test
# compares). Per-session queues (`<prefix>-send-<session>.fifo`, `<prefix>-control-<session>`)
# are created at run time by the API and redrive into the shared `dlq-send.fifo` and
# `dlq-control` declared here.

locals {
  # Dead-letter queues: two weeks of retention, an operator redrives or inspects them.
  dead_letter_queues = {
    "events-dlq"     = { fifo = false, visibility_secs = 30, retention_secs = 1209600 }
    "deliveries-dlq" = { fifo = false, visibility_secs = 30, retention_secs = 1209600 }
    "ingress-dlq"    = { fifo = false, visibility_secs = 30, retention_secs = 1209600 }
    "dlq-send.fifo"  = { fifo = true, visibility_secs = 30, retention_secs = 1209600 }
    "dlq-control"    = { fifo = false, visibility_secs = 30, retention_secs = 1209600 }
  }

  # Work queues consumed by Lambda: visibility must cover the consumer's timeout.
  queues = {
    "events"     = { dead_letter = "events-dlq", visibility_secs = 60, retention_secs = 345600 }
    "deliveries" = { dead_letter = "deliveries-dlq", visibility_secs = 60, retention_secs = 345600 }
    "ingress"    = { dead_letter = "ingress-dlq", visibility_secs = 60, retention_secs = 345600 }
  }
}

resource "aws_sqs_queue" "dead_letter" {
  for_each = local.dead_letter_queues

  name                        = "${var.prefix}-${each.key}"
  fifo_queue                  = each.value.fifo
  content_based_deduplication = each.value.fifo ? false : null
  visibility_timeout_seconds  = each.value.visibility_secs
  message_retention_seconds   = each.value.retention_secs
  sqs_managed_sse_enabled     = var.kms_key_arn == null ? true : null
  kms_master_key_id           = var.kms_key_arn

  tags = var.tags
}

resource "aws_sqs_queue" "main" {
  for_each = local.queues

  name                       = "${var.prefix}-${each.key}"
  visibility_timeout_seconds = each.value.visibility_secs
  message_retention_seconds  = each.value.retention_secs
  # Long polling for the event source mappings.
  receive_wait_time_seconds = 20
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter[each.value.dead_letter].arn
    maxReceiveCount     = var.max_receives
  })

  tags = var.tags
}

# TLS only, on every queue.
data "aws_iam_policy_document" "tls_only" {
  for_each = merge(aws_sqs_queue.dead_letter, aws_sqs_queue.main)

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
    resources = [each.value.arn]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "tls_only" {
  for_each = data.aws_iam_policy_document.tls_only

  queue_url = merge(aws_sqs_queue.dead_letter, aws_sqs_queue.main)[each.key].id
  policy    = each.value.json
}
