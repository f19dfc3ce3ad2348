# The one bucket (infra/aws/src/resources.rs `bucket`): media/, snapshots/ (versioned auth
# snapshots), queue-payloads/ (job payloads too large for SQS). Private, encrypted, TLS only.

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; media and payloads are transient and snapshots can be re-created by scanning a QR again.
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications: the gateway reads objects by key.
  #checkov:skip=CKV_AWS_18:Server access logging is opt-in through var.access_log_bucket (CloudTrail data events are the usual audit path).
  #checkov:skip=CKV_AWS_145:SSE-S3 by default; set var.kms_key_arn for SSE-KMS (a customer managed key costs $1/month plus requests).
  bucket        = var.name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

# Versioning keeps earlier auth snapshots: a corrupt upload can be rolled back.
resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_logging" "this" {
  count = var.access_log_bucket == null ? 0 : 1

  bucket        = aws_s3_bucket.this.id
  target_bucket = var.access_log_bucket
  target_prefix = "${var.name}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  # Media (uploads and received attachments) expire; message records keep the reference only.
  rule {
    id     = "media"
    status = "Enabled"
    filter {
      prefix = "media/"
    }
    expiration {
      days = var.media_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  # Oversized job payloads live only as long as their job could.
  rule {
    id     = "queue-payloads"
    status = "Enabled"
    filter {
      prefix = "queue-payloads/"
    }
    expiration {
      days = var.queue_payload_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  # The latest snapshot stays; replaced ones are kept a while for rollback.
  rule {
    id     = "snapshots"
    status = "Enabled"
    filter {
      prefix = "snapshots/"
    }
    noncurrent_version_expiration {
      noncurrent_days           = var.snapshot_noncurrent_days
      newer_noncurrent_versions = 3
    }
  }

  # Uploads that never completed, anywhere in the bucket.
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "tls_only" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

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

resource "aws_s3_bucket_policy" "tls_only" {
  bucket     = aws_s3_bucket.this.id
  policy     = data.aws_iam_policy_document.tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.this]
}
