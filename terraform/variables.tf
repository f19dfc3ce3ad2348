variable "name" {
  description = "Deployment name: the table, queue prefix (OPENWA_QUEUE_PREFIX), secret prefix and every resource's prefix. At most 12 characters so per-session queue names fit SQS's 80."
  type        = string
  default     = "openwa"

  validation {
    condition     = can(regex("^[a-z0-9-]{3,12}$", var.name))
    error_message = "name must be 3-12 of [a-z0-9-] (it names the bucket too)."
  }
}

variable "artifacts_dir" {
  description = "Directory with the function zips, `openwa-<fn>/bootstrap.zip` (scripts/build-artifacts.sh writes them to target/lambda)."
  type        = string
}

variable "runner_image" {
  description = "Runner image URI (runner/Dockerfile, pushed to a registry ECS can pull from)."
  type        = string
}

variable "runner_ecr_repository_arn" {
  description = "ECR repository of runner_image, to grant pulls; null for a public image."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "VPC of the runners."
  type        = string
}

variable "subnet_ids" {
  description = "Runner subnets: private with NAT, or public with assign_public_ip = true."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give runner tasks public IPs (public subnets, no NAT gateway)."
  type        = bool
  default     = false
}

variable "bucket_name" {
  description = "Bucket name; null derives `<name>-<account>-<random>`."
  type        = string
  default     = null
}

variable "max_receives" {
  description = "Receives before a job is dead-lettered: the queues' redrive maxReceiveCount and every binary's OPENWA_MAX_RECEIVES."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receives >= 1 && var.max_receives <= 1000
    error_message = "max_receives must be 1-1000."
  }
}

variable "api_key_header" {
  description = "Header the authorizer caches on: `Authorization` (Bearer) or `X-API-Key`."
  type        = string
  default     = "Authorization"
}

variable "authorizer_cache_ttl_secs" {
  description = "Authorizer result cache TTL (0 disables caching and accepts either key header)."
  type        = number
  default     = 60
}

variable "throttling_burst_limit" {
  description = "API default route burst limit."
  type        = number
  default     = 200
}

variable "throttling_rate_limit" {
  description = "API default route rate limit (requests/s)."
  type        = number
  default     = 100
}

variable "domain_name" {
  description = "Custom API domain; null uses the execute-api URL."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate of domain_name."
  type        = string
  default     = null
}

variable "function_memory_mb" {
  description = "Memory overrides by function (api, authorizer, fanout, deliver, ingress)."
  type        = map(number)
  default     = {}
}

variable "function_timeout_secs" {
  description = "Timeout overrides by function; SQS consumers at most 60."
  type        = map(number)
  default     = {}
}

variable "function_reserved_concurrency" {
  description = "Reserved concurrency by function (unset = unreserved)."
  type        = map(number)
  default     = {}
}

variable "webhook_target_queue_arns" {
  description = "Customer SQS queues webhooks may deliver to."
  type        = list(string)
  default     = []
}

variable "runner_cpu_architecture" {
  description = "ARM64 or X86_64, matching runner_image."
  type        = string
  default     = "ARM64"
}

variable "runner_cpu" {
  description = "Runner task vCPU units."
  type        = number
  default     = 2048
}

variable "runner_memory" {
  description = "Runner task memory (MiB)."
  type        = number
  default     = 4096
}

variable "runner_capacity" {
  description = "Sessions per runner at most."
  type        = number
  default     = 8
}

variable "target_sessions_per_runner" {
  description = "Autoscaling target of sessions per runner."
  type        = number
  default     = 6
}

variable "runner_min_count" {
  description = "Fewest runner tasks."
  type        = number
  default     = 1
}

variable "runner_max_count" {
  description = "Most runner tasks."
  type        = number
  default     = 4
}

variable "runner_drain_grace_secs" {
  description = "Drain grace of a stopping runner (stopTimeout = this + 15 s)."
  type        = number
  default     = 20
}

variable "media_expiration_days" {
  description = "Days media objects are kept."
  type        = number
  default     = 30
}

variable "alarm_emails" {
  description = "E-mail addresses for alarms."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of every log group."
  type        = number
  default     = 30
}

variable "kms_key_arn" {
  description = "One customer managed KMS key for table, queues, bucket, secrets, logs and topic; null uses AWS managed encryption."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the table, keep secrets recoverable and refuse to delete a non-empty bucket. Turn off for throwaway stacks."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "message_retention_days" {
  description = "Days messages (and their idempotency keys) are kept, through DynamoDB TTL; 0 keeps them (OPENWA_MESSAGE_RETENTION_DAYS)."
  type        = number
  default     = 0

  validation {
    condition     = var.message_retention_days >= 0 && var.message_retention_days <= 36500
    error_message = "message_retention_days must be 0-36500."
  }
}

variable "audit_retention_days" {
  description = "Days audit entries are kept, through DynamoDB TTL; 0 keeps them (OPENWA_AUDIT_RETENTION_DAYS)."
  type        = number
  default     = 400

  validation {
    condition     = var.audit_retention_days >= 0 && var.audit_retention_days <= 36500
    error_message = "audit_retention_days must be 0-36500."
  }
}
