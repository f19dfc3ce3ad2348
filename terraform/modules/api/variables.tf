variable "name" {
  description = "API name."
  type        = string
}

variable "api_function_name" {
  description = "Name of the api function."
  type        = string
}

variable "api_invoke_arn" {
  description = "Invoke ARN of the api function."
  type        = string
}

variable "authorizer_function_name" {
  description = "Name of the authorizer function."
  type        = string
}

variable "authorizer_invoke_arn" {
  description = "Invoke ARN of the authorizer function."
  type        = string
}

variable "api_key_header" {
  description = "Header carrying the API key, the authorizer's identity source when caching is on (`Authorization` for `Bearer owa_...`, or `X-API-Key`)."
  type        = string
  default     = "Authorization"

  validation {
    condition     = contains(["Authorization", "X-API-Key"], var.api_key_header)
    error_message = "api_key_header must be Authorization or X-API-Key (the headers functions/api/src/auth.rs reads)."
  }
}

variable "authorizer_cache_ttl_secs" {
  description = "Seconds API Gateway caches an authorizer answer (0-3600). 0 disables caching and lets either key header through; with caching, clients must send api_key_header."
  type        = number
  default     = 60

  validation {
    condition     = var.authorizer_cache_ttl_secs >= 0 && var.authorizer_cache_ttl_secs <= 3600
    error_message = "authorizer_cache_ttl_secs must be 0-3600."
  }
}

variable "throttling_burst_limit" {
  description = "Default route burst limit (requests)."
  type        = number
  default     = 200
}

variable "throttling_rate_limit" {
  description = "Default route steady-state limit (requests per second)."
  type        = number
  default     = 100
}

variable "domain_name" {
  description = "Custom domain (e.g. wa.example.com); null serves only the execute-api URL."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate for domain_name, in the API's region."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the access log group."
  type        = number
  default     = 30
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the access logs; null uses CloudWatch's key."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
