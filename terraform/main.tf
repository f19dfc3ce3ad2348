# openwa on AWS: API Gateway + Lambda functions, SQS, DynamoDB, S3, Secrets Manager, runners on
# ECS Fargate, alarms and a dashboard. Resource names and schemas mirror
# infra/aws/src/resources.rs; infra/aws/tests/terraform.rs checks that they agree.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

# Bucket names are global: a random suffix keeps two deployments named alike apart.
resource "random_id" "bucket" {
  byte_length = 4
}

locals {
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  bucket     = coalesce(var.bucket_name, "${var.name}-${local.account_id}-${random_id.bucket.hex}")
  tags       = merge({ "app" = "openwa", "openwa:deployment" = var.name }, var.tags)
}

module "table" {
  source = "./modules/table"

  name                = var.name
  kms_key_arn         = var.kms_key_arn
  deletion_protection = var.deletion_protection
  tags                = local.tags
}

module "queues" {
  source = "./modules/queues"

  prefix       = var.name
  max_receives = var.max_receives
  kms_key_arn  = var.kms_key_arn
  tags         = local.tags
}

module "bucket" {
  source = "./modules/bucket"

  name                  = local.bucket
  kms_key_arn           = var.kms_key_arn
  media_expiration_days = var.media_expiration_days
  force_destroy         = !var.deletion_protection
  tags                  = local.tags
}

module "secrets" {
  source = "./modules/secrets"

  prefix               = var.name
  kms_key_arn          = var.kms_key_arn
  recovery_window_days = var.deletion_protection ? 7 : 0
  tags                 = local.tags
}

module "functions" {
  source = "./modules/functions"

  name          = var.name
  artifacts_dir = var.artifacts_dir

  table_name       = module.table.name
  table_arn        = module.table.arn
  table_stream_arn = module.table.stream_arn
  bucket_name      = module.bucket.name
  bucket_arn       = module.bucket.arn
  queue_prefix     = var.name
  queue_arns       = module.queues.arns
  secret_prefix    = var.name
  secret_arns      = module.secrets.arns
  max_receives     = var.max_receives

  message_retention_days = var.message_retention_days
  audit_retention_days   = var.audit_retention_days

  region     = local.region
  account_id = local.account_id
  partition  = local.partition

  memory_mb                 = var.function_memory_mb
  timeout_secs              = var.function_timeout_secs
  reserved_concurrency      = var.function_reserved_concurrency
  webhook_target_queue_arns = var.webhook_target_queue_arns
  public_base_url           = var.domain_name == null ? "" : "https://${var.domain_name}"
  log_retention_days        = var.log_retention_days
  kms_key_arn               = var.kms_key_arn
  tags                      = local.tags
}

module "api" {
  source = "./modules/api"

  name                      = var.name
  api_function_name         = module.functions.function_names["api"]
  api_invoke_arn            = module.functions.invoke_arns["api"]
  authorizer_function_name  = module.functions.function_names["authorizer"]
  authorizer_invoke_arn     = module.functions.invoke_arns["authorizer"]
  api_key_header            = var.api_key_header
  authorizer_cache_ttl_secs = var.authorizer_cache_ttl_secs
  throttling_burst_limit    = var.throttling_burst_limit
  throttling_rate_limit     = var.throttling_rate_limit
  domain_name               = var.domain_name
  certificate_arn           = var.certificate_arn
  log_retention_days        = var.log_retention_days
  kms_key_arn               = var.kms_key_arn
  tags                      = local.tags
}

module "runners" {
  source = "./modules/runners"

  name                       = var.name
  image                      = var.runner_image
  ecr_repository_arn         = var.runner_ecr_repository_arn
  cpu_architecture           = var.runner_cpu_architecture
  cpu                        = var.runner_cpu
  memory                     = var.runner_memory
  capacity                   = var.runner_capacity
  target_sessions_per_runner = var.target_sessions_per_runner
  min_count                  = var.runner_min_count
  max_count                  = var.runner_max_count
  drain_grace_secs           = var.runner_drain_grace_secs

  table_name    = module.table.name
  table_arn     = module.table.arn
  bucket_name   = module.bucket.name
  bucket_arn    = module.bucket.arn
  queue_prefix  = var.name
  queue_arns    = module.queues.arns
  secret_prefix = var.name
  secret_arns   = module.secrets.arns
  max_receives  = var.max_receives

  message_retention_days = var.message_retention_days
  audit_retention_days   = var.audit_retention_days

  vpc_id           = var.vpc_id
  subnet_ids       = var.subnet_ids
  assign_public_ip = var.assign_public_ip

  region             = local.region
  account_id         = local.account_id
  partition          = local.partition
  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn
  tags               = local.tags
}

module "alarms" {
  source = "./modules/alarms"

  name                    = var.name
  region                  = local.region
  alarm_emails            = var.alarm_emails
  dead_letter_queue_names = module.queues.dead_letter_names
  deliveries_queue_name   = module.queues.names["deliveries"]
  function_names          = module.functions.function_names
  cluster_name            = module.runners.cluster_name
  service_name            = module.runners.service_name
  min_runner_count        = var.runner_min_count
  api_id                  = module.api.api_id
  kms_key_arn             = var.kms_key_arn
  tags                    = local.tags
}
