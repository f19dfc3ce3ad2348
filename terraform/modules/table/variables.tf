variable "name" {
  description = "Table name (OPENWA_TABLE)."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for encryption at rest; null uses the AWS owned key."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete the table (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
