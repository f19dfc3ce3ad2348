output "api_url" {
  description = "Base URL of the HTTP API (`<api_url>/v1/...`, `<api_url>/health`)."
  value       = module.api.url
}

output "admin_key_secret_arn" {
  description = "Secret holding the first admin API key (written by the api function on its first start)."
  value       = module.secrets.arns["admin-key"]
}

output "dashboard_url" {
  description = "CloudWatch dashboard."
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards:name=${module.alarms.dashboard_name}"
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms (subscribe more endpoints here)."
  value       = module.alarms.topic_arn
}

output "table_name" {
  description = "OPENWA_TABLE."
  value       = module.table.name
}

output "bucket_name" {
  description = "OPENWA_BUCKET."
  value       = module.bucket.name
}

output "queue_urls" {
  description = "Static queue URLs by suffix."
  value       = module.queues.urls
}

output "runner_cluster" {
  description = "ECS cluster of the runners."
  value       = module.runners.cluster_name
}

output "api_domain_target" {
  description = "DNS target for domain_name, when set."
  value       = module.api.domain_target
}
