variable "prefix" {
  description = "Queue name prefix (OPENWA_QUEUE_PREFIX), at most 12 characters so per-session names fit SQS's 80."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,12}$", var.prefix))
    error_message = "prefix must be 1-12 of [A-Za-z0-9_-]."
  }
}

variable "max_receives" {
  description = "Receives before a message moves to its DLQ (OPENWA_MAX_RECEIVES; the API uses the same for per-session queues)."
  type        = number
  default     = 5
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for SSE; null uses SQS managed SSE."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
