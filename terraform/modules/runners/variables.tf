variable "name" {
  description = "Name of the cluster, service, task family and roles."
  type        = string
}

variable "image" {
  description = "Runner image (built from runner/Dockerfile), e.g. <account>.dkr.ecr.<region>.amazonaws.com/openwa-runner:<tag>."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ECR repository of the image, to grant pulls; null for a public registry."
  type        = string
  default     = null
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64: must match the image."
  type        = string
  default     = "ARM64"
}

variable "cpu" {
  description = "Task vCPU units (1024 = 1 vCPU)."
  type        = number
  default     = 2048
}

variable "memory" {
  description = "Task memory (MiB). Budget ~300-450 MiB per WhatsApp Web session plus ~300 MiB."
  type        = number
  default     = 4096
}

variable "ephemeral_storage_gib" {
  description = "Task ephemeral storage (browser profiles), 21-200 GiB."
  type        = number
  default     = 30
}

variable "capacity" {
  description = "Sessions one runner hosts at most (OPENWA_RUNNER_CAPACITY)."
  type        = number
  default     = 8
}

variable "target_sessions_per_runner" {
  description = "Autoscaling target of the average SessionsHeld metric (below capacity, to leave room for failover)."
  type        = number
  default     = 6
}

variable "min_count" {
  description = "Fewest runners (at least 1 for sessions to run; 2 for failover without waiting for a new task)."
  type        = number
  default     = 1
}

variable "max_count" {
  description = "Most runners."
  type        = number
  default     = 4
}

variable "lease_secs" {
  description = "Session lease duration (OPENWA_LEASE_SECS)."
  type        = number
  default     = 30
}

variable "drain_grace_secs" {
  description = "Seconds a draining runner waits for in-flight sends (OPENWA_DRAIN_GRACE_SECS); the container's stopTimeout is this + 15 s, at most 120."
  type        = number
  default     = 20

  validation {
    condition     = var.drain_grace_secs >= 0 && var.drain_grace_secs <= 105
    error_message = "drain_grace_secs must be 0-105 (Fargate's stopTimeout is at most 120 s)."
  }
}

variable "wa_url" {
  description = "WhatsApp Web URL (OPENWA_WA_URL)."
  type        = string
  default     = "https://web.whatsapp.com/"
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the runners' metrics."
  type        = string
  default     = "openwa"
}

variable "table_name" {
  description = "OPENWA_TABLE."
  type        = string
}

variable "table_arn" {
  description = "ARN of the table."
  type        = string
}

variable "bucket_name" {
  description = "OPENWA_BUCKET."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the bucket."
  type        = string
}

variable "queue_prefix" {
  description = "OPENWA_QUEUE_PREFIX."
  type        = string
}

variable "queue_arns" {
  description = "Static queue ARNs by suffix."
  type        = map(string)
}

variable "secret_prefix" {
  description = "OPENWA_SECRET_PREFIX."
  type        = string
}

variable "secret_arns" {
  description = "Secret ARNs by name."
  type        = map(string)
}

variable "max_receives" {
  description = "OPENWA_MAX_RECEIVES."
  type        = number
}

variable "vpc_id" {
  description = "VPC of the runners."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the runners: private subnets with a NAT gateway, or public ones with assign_public_ip."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give tasks public IPs (public subnets without NAT)."
  type        = bool
  default     = false
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "account_id" {
  description = "AWS account id."
  type        = string
}

variable "partition" {
  description = "AWS partition."
  type        = string
  default     = "aws"
}

variable "log_level" {
  description = "RUST_LOG of the runner."
  type        = string
  default     = "info,chromiumoxide=error"
}

variable "log_retention_days" {
  description = "Retention of the runner log group."
  type        = number
  default     = 30
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the logs; null uses CloudWatch's key."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "message_retention_days" {
  description = "OPENWA_MESSAGE_RETENTION_DAYS: days messages are kept (0 = for good)."
  type        = number
  default     = 0
}

variable "audit_retention_days" {
  description = "OPENWA_AUDIT_RETENTION_DAYS: days audit entries are kept (0 = for good)."
  type        = number
  default     = 400
}
