output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.runner.name
}

output "task_role_arn" {
  description = "Role the runner process uses."
  value       = aws_iam_role.task.arn
}

output "log_group" {
  description = "Runner log group."
  value       = aws_cloudwatch_log_group.runner.name
}

output "security_group_id" {
  description = "Runners' security group."
  value       = aws_security_group.runner.id
}
