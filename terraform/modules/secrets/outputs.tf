output "arns" {
  description = "Secret ARNs by name (`admin-key`, `runner-snapshot-key`)."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.arn }
}

output "names" {
  description = "Secret names by name."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.name }
}
