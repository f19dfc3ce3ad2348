output "name" {
  description = "Table name."
  value       = aws_dynamodb_table.this.name
}

output "arn" {
  description = "Table ARN (indexes are `<arn>/index/*`)."
  value       = aws_dynamodb_table.this.arn
}

output "stream_arn" {
  description = "ARN of the table's stream (new images; read by the outbox function)."
  value       = aws_dynamodb_table.this.stream_arn
}
