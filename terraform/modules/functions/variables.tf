variable "name" {
  description = "Name prefix of the functions, roles and log groups (`<name>-api`, ...)."
  type        = string
}

variable "artifacts_dir" {
  description = "Directory holding `openwa-<function>/bootstrap.zip` (cargo lambda's target/lambda)."
  type        = string
}

variable "table_name" {
  description = "OPENWA_TABLE."
  type        = string
}

variable "table_arn" {
  description = "ARN of the table."
  type        = string
}

variable "table_stream_arn" {
  description = "ARN of the table's stream (the outbox function's event source)."
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
  description = "Static queue ARNs by suffix (queues module output `arns`)."
  type        = map(string)
}

variable "secret_prefix" {
  description = "OPENWA_SECRET_PREFIX."
  type        = string
}

variable "secret_arns" {
  description = "Secret ARNs by name (secrets module output `arns`)."
  type        = map(string)
}

variable "max_receives" {
  description = "OPENWA_MAX_RECEIVES: must equal the queues' redrive maxReceiveCount."
  type        = number
}

variable "region" {
  description = "AWS region (for per-session queue ARNs)."
  type        = string
}

variable "account_id" {
  description = "AWS account id (for per-session queue ARNs)."
  type        = string
}

variable "partition" {
  description = "AWS partition."
  type        = string
  default     = "aws"
}

variable "memory_mb" {
  description = "Memory per function, overriding the defaults (api 512, others 256)."
  type        = map(number)
  default     = {}
}

variable "timeout_secs" {
  description = "Timeout per function, overriding the defaults (api 29, authorizer 5, fanout 30, deliver 50, ingress 30). SQS consumers must stay within their queue's 60 s visibility."
  type        = map(number)
  default     = {}
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function (unset = unreserved). New accounts have a quota of 10 and cannot reserve."
  type        = map(number)
  default     = {}
}

variable "batch_size" {
  description = "SQS batch size per consumer."
  type        = map(number)
  default     = { fanout = 10, deliver = 10, ingress = 10 }
}

variable "batching_window_secs" {
  description = "Maximum batching window per consumer (seconds)."
  type        = map(number)
  default     = { fanout = 1, deliver = 0, ingress = 0 }
}

variable "max_consumer_concurrency" {
  description = "Most concurrent invocations an SQS event source mapping starts (2-1000), per consumer."
  type        = map(number)
  default     = { fanout = 10, deliver = 20, ingress = 5 }
}

variable "webhook_target_queue_arns" {
  description = "Customer SQS queues webhooks may deliver to (the deliver function may send only to these)."
  type        = list(string)
  default     = []
}

variable "rate_limit_per_minute" {
  description = "OPENWA_RATE_LIMIT_PER_MINUTE: requests per minute for keys without their own limit."
  type        = number
  default     = 600
}

variable "public_base_url" {
  description = "OPENWA_PUBLIC_BASE_URL: where clients reach the API (OpenAPI links); empty when only the execute-api URL exists (it is not known before the API, which needs the function, exists)."
  type        = string
  default     = ""
}

variable "webhook_timeout_ms" {
  description = "OPENWA_WEBHOOK_TIMEOUT_MS: one webhook attempt's HTTP timeout."
  type        = number
  default     = 15000
}

variable "log_level" {
  description = "RUST_LOG of every function."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups."
  type        = number
  default     = 30
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for environment variables and logs; null uses AWS keys."
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
