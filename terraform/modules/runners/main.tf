# Runners on ECS Fargate: each task hosts up to `capacity` WhatsApp sessions in headless
# Chromium, claims them with leases in the table and drains on SIGTERM (stopTimeout covers the
# drain grace). Autoscaling tracks the sessions-per-runner metric runners publish
# (`openwa/SessionsHeld`, dimension Service); runners holding sessions protect themselves from
# scale-in through the ECS agent's task protection endpoint (runner/src/cloud.rs).

locals {
  container = "runner"
  port      = 9090
  data_dir  = "/var/lib/openwa"

  # Mirrors infra/aws/src/iam.rs RUNNER_ENV (tests/terraform.rs checks it).
  runner_env = {
    OPENWA_TABLE         = var.table_name
    OPENWA_BUCKET        = var.bucket_name
    OPENWA_QUEUE_PREFIX  = var.queue_prefix
    OPENWA_SECRET_PREFIX = var.secret_prefix
    OPENWA_MAX_RECEIVES  = tostring(var.max_receives)

    OPENWA_MESSAGE_RETENTION_DAYS = tostring(var.message_retention_days)
    OPENWA_AUDIT_RETENTION_DAYS   = tostring(var.audit_retention_days)
    OPENWA_BACKEND                = "aws"
    OPENWA_RUNNER_CAPACITY        = tostring(var.capacity)
    OPENWA_LEASE_SECS             = tostring(var.lease_secs)
    OPENWA_DRAIN_GRACE_SECS       = tostring(var.drain_grace_secs)
    OPENWA_RUNNER_LISTEN          = "0.0.0.0:${local.port}"
    OPENWA_PROFILES_DIR           = "${local.data_dir}/profiles"
    OPENWA_DATA_DIR               = local.data_dir
    OPENWA_WA_URL                 = var.wa_url
    # runner/src/cloud.rs: sessions held as EMF metric lines (namespace openwa, dimension
    # Service), which the target tracking below averages.
    OPENWA_EMF_METRICS     = "1"
    OPENWA_METRICS_SERVICE = var.name
    RUST_LOG               = var.log_level
  }

  # Drain grace plus time to snapshot and release leases; Fargate allows at most 120 s.
  stop_timeout = min(var.drain_grace_secs + 15, 120)
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "runner" {
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (default 30); raise it where policy requires.
  #checkov:skip=CKV_AWS_158:Encrypted by CloudWatch by default; set var.kms_key_arn for a customer managed key.
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume_ecs_tasks" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Pulls the image and writes the container's logs.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name   = "${var.name}-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# What the runner process calls (policies.tf).
resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "${var.name}-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.runner_task.json
}

resource "aws_ecs_task_definition" "runner" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  ephemeral_storage {
    size_in_gib = var.ephemeral_storage_gib
  }

  container_definitions = jsonencode([{
    name      = local.container
    image     = var.image
    essential = true
    # Chromium writes profiles, caches and crash dumps under the data dir and /tmp.
    readonlyRootFilesystem = false
    stopTimeout            = local.stop_timeout
    environment            = [for k, v in local.runner_env : { name = k, value = v }]
    portMappings           = [{ containerPort = local.port, protocol = "tcp" }]
    healthCheck = {
      command     = ["CMD-SHELL", "curl -fsS http://127.0.0.1:${local.port}/health || exit 1"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
    linuxParameters = {
      initProcessEnabled = true
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.runner.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "runner"
      }
    }
  }])

  tags = var.tags
}

resource "aws_security_group" "runner" {
  #checkov:skip=CKV_AWS_382:Runners must reach WhatsApp Web (HTTPS/WSS on changing Meta addresses) and AWS endpoints; egress cannot be narrowed to fixed CIDRs. No ingress is allowed.
  name        = "${var.name}-runner"
  description = "openwa runners: outbound only"
  vpc_id      = var.vpc_id

  egress {
    description = "HTTPS to WhatsApp Web and AWS APIs, DNS through the VPC resolver"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = var.tags
}

resource "aws_ecs_service" "runner" {
  name            = var.name
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.runner.arn
  launch_type     = "FARGATE"
  desired_count   = var.min_count

  # A replaced runner's sessions move by lease expiry; keep the old one until the new is healthy.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.runner.id]
    assign_public_ip = var.assign_public_ip
  }

  # Autoscaling owns the count after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }

  tags = var.tags
}

resource "aws_appautoscaling_target" "runner" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.runner.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_count
  max_capacity       = var.max_count
}

# Keeps the average sessions per runner near the target; scale-in only removes runners that
# have released task protection (those holding no sessions).
resource "aws_appautoscaling_policy" "sessions_per_runner" {
  name               = "${var.name}-sessions-per-runner"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.runner.service_namespace
  resource_id        = aws_appautoscaling_target.runner.resource_id
  scalable_dimension = aws_appautoscaling_target.runner.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.target_sessions_per_runner
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    customized_metric_specification {
      namespace   = var.metrics_namespace
      metric_name = "SessionsHeld"
      statistic   = "Average"
      dimensions {
        name  = "Service"
        value = var.name
      }
    }
  }
}
