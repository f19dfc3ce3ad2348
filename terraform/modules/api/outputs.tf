output "api_id" {
  description = "HTTP API id."
  value       = aws_apigatewayv2_api.this.id
}

output "url" {
  description = "Base URL: the custom domain when set, else the execute-api endpoint."
  value       = var.domain_name == null ? aws_apigatewayv2_api.this.api_endpoint : "https://${var.domain_name}"
}

output "domain_target" {
  description = "Where to point the custom domain's DNS (CNAME/alias target), when set."
  value       = var.domain_name == null ? null : aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].target_domain_name
}

output "access_log_group" {
  description = "Access log group name."
  value       = aws_cloudwatch_log_group.access.name
}
