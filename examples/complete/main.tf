# A complete deployment: `terraform init && terraform apply` after
# `scripts/build-artifacts.sh` and pushing the runner image (docs/deploy.md).

provider "aws" {
  region = var.region

  default_tags {
    tags = { "managed-by" = "terraform" }
  }
}

module "openwa" {
  source = "../../terraform"

  name                      = var.name
  artifacts_dir             = var.artifacts_dir
  runner_image              = var.runner_image
  runner_ecr_repository_arn = var.runner_ecr_repository_arn
  vpc_id                    = var.vpc_id
  subnet_ids                = var.subnet_ids
  assign_public_ip          = var.assign_public_ip
  alarm_emails              = var.alarm_emails

  # Deliveries hit customers' endpoints: cap them (needs an account concurrency quota > 10).
  function_reserved_concurrency = var.function_reserved_concurrency
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Deployment name (3-12 of [a-z0-9-])."
  type        = string
  default     = "openwa"
}

variable "artifacts_dir" {
  description = "Where scripts/build-artifacts.sh put the function zips."
  type        = string
  default     = "../../target/lambda"
}

variable "runner_image" {
  description = "Runner image URI."
  type        = string
}

variable "runner_ecr_repository_arn" {
  description = "ECR repository of runner_image."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "VPC for the runners."
  type        = string
}

variable "subnet_ids" {
  description = "Runner subnets."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Public IPs for runners in public subnets (no NAT gateway)."
  type        = bool
  default     = false
}

variable "alarm_emails" {
  description = "Alarm recipients."
  type        = list(string)
  default     = []
}

variable "function_reserved_concurrency" {
  description = "Reserved concurrency by function."
  type        = map(number)
  default     = {}
}

output "api_url" {
  description = "Base URL of the API."
  value       = module.openwa.api_url
}

output "admin_key_secret_arn" {
  description = "Secret with the first admin key."
  value       = module.openwa.admin_key_secret_arn
}

output "dashboard_url" {
  description = "CloudWatch dashboard."
  value       = module.openwa.dashboard_url
}
