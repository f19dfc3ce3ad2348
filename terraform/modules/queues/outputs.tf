output "arns" {
  description = "ARN of every static queue, by suffix (`events`, `events-dlq`, `dlq-send.fifo`, ...)."
  value       = merge({ for k, q in aws_sqs_queue.dead_letter : k => q.arn }, { for k, q in aws_sqs_queue.main : k => q.arn })
}

output "urls" {
  description = "URL of every static queue, by suffix."
  value       = merge({ for k, q in aws_sqs_queue.dead_letter : k => q.url }, { for k, q in aws_sqs_queue.main : k => q.url })
}

output "names" {
  description = "Name of every static queue, by suffix."
  value       = merge({ for k, q in aws_sqs_queue.dead_letter : k => q.name }, { for k, q in aws_sqs_queue.main : k => q.name })
}

output "dead_letter_names" {
  description = "Names of the dead-letter queues, by suffix (alarms watch these)."
  value       = { for k, q in aws_sqs_queue.dead_letter : k => q.name }
}
