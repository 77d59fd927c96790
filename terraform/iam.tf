# A role for a Lambda function that uses the Data API on this cluster, with
# nothing more than that needs: the five rds-data actions on this cluster,
# GetSecretValue on the secret RDS keeps its master credentials in (the Data
# API reads it with the caller's permissions), and its own CloudWatch log
# groups.
#
# The policies are written with jsonencode rather than aws_iam_policy_document
# data sources so that the plan holds the very JSON IAM receives:
# terraform/tests/plan.tftest.hcl asserts on it.

locals {
  log_group_arn = "arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:/aws/lambda/${var.name}-*"
}

resource "aws_iam_role" "lambda" {
  name        = "${var.name}-lambda-data-api"
  description = "Lambda functions of ${var.name}: Data API on ${local.cluster_identifier} only"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "LambdaAssumesThisRole"
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "lambda.amazonaws.com" }
    }]
  })
}

resource "aws_iam_role_policy" "lambda" {
  name = "${var.name}-data-api-least-privilege"
  role = aws_iam_role.lambda.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # The calls alexlua's Data API client makes, and no others.
        Sid    = "DataApiOnThisClusterOnly"
        Effect = "Allow"
        Action = [
          "rds-data:BatchExecuteStatement",
          "rds-data:BeginTransaction",
          "rds-data:CommitTransaction",
          "rds-data:ExecuteStatement",
          "rds-data:RollbackTransaction",
        ]
        Resource = aws_rds_cluster.aurora.arn
      },
      {
        Sid      = "ReadThisSecretOnly"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = aws_rds_cluster.aurora.master_user_secret[0].secret_arn
      },
      {
        # Log groups of functions named <name>-*, and their streams.
        Sid    = "OwnLogGroupsOnly"
        Effect = "Allow"
        Action = [
          "logs:CreateLogGroup",
          "logs:CreateLogStream",
          "logs:PutLogEvents",
        ]
        Resource = [
          local.log_group_arn,
          "${local.log_group_arn}:log-stream:*",
        ]
      },
    ]
  })
}
