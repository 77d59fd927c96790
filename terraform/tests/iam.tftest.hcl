# The Lambda role's policy as IAM would receive it (the plan holds the JSON),
# with the AWS provider mocked as in cluster.tftest.hcl.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

run "lambda_policy" {
  command = plan

  assert {
    condition     = aws_rds_cluster.aurora.arn == "arn:aws:rds:us-east-1:123456789012:cluster:alex-aurora-cluster" && startswith(aws_rds_cluster.aurora.master_user_secret[0].secret_arn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-")
    error_message = "The mocked ARNs must be known at plan time (override_during = plan), or the checks below prove nothing."
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.lambda.policy) == {
      Version = "2012-10-17"
      Statement = [
        {
          Sid      = "DataApiOnThisClusterOnly"
          Effect   = "Allow"
          Action   = ["rds-data:BatchExecuteStatement", "rds-data:BeginTransaction", "rds-data:CommitTransaction", "rds-data:ExecuteStatement", "rds-data:RollbackTransaction"]
          Resource = aws_rds_cluster.aurora.arn
        },
        {
          Sid      = "ReadThisSecretOnly"
          Effect   = "Allow"
          Action   = "secretsmanager:GetSecretValue"
          Resource = aws_rds_cluster.aurora.master_user_secret[0].secret_arn
        },
        {
          Sid    = "OwnLogGroupsOnly"
          Effect = "Allow"
          Action = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = [
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/alex-*",
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/alex-*:log-stream:*",
          ]
        },
      ]
    }
    error_message = "The Lambda policy must be exactly: the five rds-data actions on this cluster, GetSecretValue on the cluster's secret, and its own log groups. It is ${aws_iam_role_policy.lambda.policy}"
  }

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(aws_iam_role_policy.lambda.policy).Statement : [
        for a in flatten([s.Action]) : !strcontains(a, "*")
      ]
    ]))
    error_message = "The Lambda policy must not grant a wildcard action."
  }

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(aws_iam_role_policy.lambda.policy).Statement : [
        for r in flatten([s.Resource]) : s.Sid == "OwnLogGroupsOnly" ? startswith(r, "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/alex-") : !strcontains(r, "*")
      ]
    ]))
    error_message = "The Lambda policy must name its resources: the cluster, the secret, its own log groups."
  }

  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.lambda.policy).Statement : s.Effect == "Allow" && length(keys(s)) == 4])
    error_message = "Every statement must be a plain Allow of Sid, Effect, Action and Resource (no NotAction, NotResource or Condition)."
  }

  assert {
    condition = jsondecode(aws_iam_role.lambda.assume_role_policy) == {
      Version = "2012-10-17"
      Statement = [{
        Sid       = "LambdaAssumesThisRole"
        Effect    = "Allow"
        Action    = "sts:AssumeRole"
        Principal = { Service = "lambda.amazonaws.com" }
      }]
    }
    error_message = "Only Lambda may assume the role."
  }

  assert {
    condition     = aws_iam_role_policy.lambda.role == aws_iam_role.lambda.id && aws_iam_role.lambda.name == "alex-lambda-data-api"
    error_message = "The policy must be attached to the module's Lambda role."
  }
}

run "names_follow_the_prefix" {
  command = plan

  variables {
    name = "books"
  }

  assert {
    condition     = aws_rds_cluster.aurora.cluster_identifier == "books-aurora-cluster" && aws_rds_cluster_instance.writer.identifier == "books-aurora-instance-1"
    error_message = "The cluster and instance names must start with var.name."
  }

  assert {
    condition     = aws_iam_role.lambda.name == "books-lambda-data-api" && strcontains(aws_iam_role_policy.lambda.policy, "log-group:/aws/lambda/books-*")
    error_message = "The role and its log groups must be named after var.name."
  }
}
