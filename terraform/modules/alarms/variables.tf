variable "name" {
  description = "Name prefix of the alarms, topic and dashboard."
  type        = string
}

variable "region" {
  description = "AWS region (dashboard widgets)."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each must confirm by email)."
  type        = list(string)
  default     = []
}

variable "dead_letter_queue_names" {
  description = "DLQ names by suffix (queues module `dead_letter_names`)."
  type        = map(string)
}

variable "deliveries_queue_name" {
  description = "Name of the deliveries queue."
  type        = string
}

variable "function_names" {
  description = "Function names by function."
  type        = map(string)
}

variable "cluster_name" {
  description = "Runners' ECS cluster."
  type        = string
}

variable "service_name" {
  description = "Runners' ECS service."
  type        = string
}

variable "min_runner_count" {
  description = "Alarm when fewer runner tasks run."
  type        = number
  default     = 1
}

variable "api_id" {
  description = "HTTP API id."
  type        = string
}

variable "metrics_namespace" {
  description = "Namespace of openwa's own metrics."
  type        = string
  default     = "openwa"
}

variable "function_error_threshold" {
  description = "Failed invocations per 5 minutes before alarming."
  type        = number
  default     = 0
}

variable "delivery_failure_threshold" {
  description = "Failed webhook deliveries per 5 minutes before alarming."
  type        = number
  default     = 10
}

variable "delivery_backlog_age_secs" {
  description = "Age of the oldest delivery job before alarming."
  type        = number
  default     = 900
}

variable "api_5xx_threshold" {
  description = "5xx answers per 5 minutes before alarming."
  type        = number
  default     = 5
}

variable "kms_key_arn" {
  description = "KMS key of the topic; null uses alias/aws/sns."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
