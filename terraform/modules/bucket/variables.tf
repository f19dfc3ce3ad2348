variable "name" {
  description = "Bucket name (OPENWA_BUCKET), globally unique."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for SSE-KMS; null uses SSE-S3 (AES256)."
  type        = string
  default     = null
}

variable "media_expiration_days" {
  description = "Days media objects (media/) are kept."
  type        = number
  default     = 30
}

variable "queue_payload_expiration_days" {
  description = "Days oversized job payloads (queue-payloads/) are kept; longer than the queues' 4-day (DLQ: 14-day) retention."
  type        = number
  default     = 15
}

variable "snapshot_noncurrent_days" {
  description = "Days replaced auth snapshot versions (snapshots/) are kept."
  type        = number
  default     = 7
}

variable "access_log_bucket" {
  description = "Bucket receiving S3 server access logs; null disables them."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete a non-empty bucket."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
