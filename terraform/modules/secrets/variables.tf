variable "prefix" {
  description = "Secret name prefix (OPENWA_SECRET_PREFIX); secrets are `<prefix>/<name>`."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key; null uses the AWS managed key."
  type        = string
  default     = null
}

variable "recovery_window_days" {
  description = "Days a deleted secret can be restored (0 deletes at once, e.g. for test stacks)."
  type        = number
  default     = 7
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
