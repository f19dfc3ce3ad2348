# The data plane of openwa (table, queues, bucket, secrets: the modules the code talks to) on
# LocalStack, with tflocal (terraform-local from PyPI), which points the AWS provider at
# http://localhost:4566:
#
#   pip install terraform-local
#   tflocal init && tflocal apply
#
# API Gateway v2 and ECS are LocalStack Pro services, so the API, functions and runners run
# outside (`openwa up --backend aws`, `openwa-runner` with OPENWA_BACKEND=aws, see
# localstack/README.md) against the resources created here. Names match the defaults of
# infra/aws/src/settings.rs, so no OPENWA_* variable is needed.

provider "aws" {
  region = "us-east-1"
}

module "table" {
  source = "../../terraform/modules/table"

  name                = "openwa"
  deletion_protection = false
}

module "queues" {
  source = "../../terraform/modules/queues"

  prefix       = "openwa"
  max_receives = 5
}

module "bucket" {
  source = "../../terraform/modules/bucket"

  name          = "openwa"
  force_destroy = true
}

module "secrets" {
  source = "../../terraform/modules/secrets"

  prefix               = "openwa"
  recovery_window_days = 0
}

output "queue_urls" {
  description = "Static queue URLs."
  value       = module.queues.urls
}

output "admin_key_secret" {
  description = "Name of the admin key secret (written by `openwa bootstrap` or the first API start)."
  value       = module.secrets.names["admin-key"]
}
