# A role for a Lambda function that uses the Data API on this cluster, with
# nothing more than that needs: the five rds-data actions on this cluster,
# GetSecretValue on this secret, and its own CloudWatch log groups.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    sid     = "LambdaAssumesThisRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = "${var.name}-lambda-data-api"
  description        = "Lambda functions of ${var.name}: Data API on ${local.cluster_identifier} only"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "lambda" {
  statement {
    sid    = "DataApiOnThisClusterOnly"
    effect = "Allow"
    actions = [
      "rds-data:BatchExecuteStatement",
      "rds-data:BeginTransaction",
      "rds-data:CommitTransaction",
      "rds-data:ExecuteStatement",
      "rds-data:RollbackTransaction",
    ]
    resources = [aws_rds_cluster.aurora.arn]
  }

  statement {
    sid       = "ReadThisSecretOnly"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.master.arn]
  }

  # Log groups of functions named <name>-*, and their streams.
  statement {
    sid    = "OwnLogGroupsOnly"
    effect = "Allow"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = [
      "arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:/aws/lambda/${var.name}-*",
      "arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:/aws/lambda/${var.name}-*:log-stream:*",
    ]
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "${var.name}-data-api-least-privilege"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}
