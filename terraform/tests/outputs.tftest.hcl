# The outputs alexlua's .env is made of, with the AWS provider mocked as in
# cluster.tftest.hcl.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

run "outputs_for_env" {
  command = plan

  assert {
    condition     = output.aurora_cluster_arn == aws_rds_cluster.aurora.arn && startswith(output.aurora_cluster_arn, "arn:aws:rds:")
    error_message = "aurora_cluster_arn must be the cluster's ARN."
  }

  assert {
    condition     = output.aurora_secret_arn == aws_rds_cluster.aurora.master_user_secret[0].secret_arn && startswith(output.aurora_secret_arn, "arn:aws:secretsmanager:")
    error_message = "aurora_secret_arn must be the secret RDS manages for the cluster (master_user_secret[0].secret_arn)."
  }

  assert {
    condition     = output.database_name == "alex"
    error_message = "database_name must be the cluster's database."
  }

  assert {
    condition = output.env_file == join("\n", [
      "# Aurora for alexlua (terraform output -raw env_file)",
      "AURORA_CLUSTER_ARN=${aws_rds_cluster.aurora.arn}",
      "AURORA_SECRET_ARN=${aws_rds_cluster.aurora.master_user_secret[0].secret_arn}",
      "AURORA_DATABASE=alex",
      "AWS_REGION=us-east-1",
      "ALEX_MIN_CAPACITY=0.5",
      "",
    ])
    error_message = "env_file must hold the lines alexlua's .env needs; it is:\n${output.env_file}"
  }
}

run "env_file_follows_the_variables" {
  command = plan

  variables {
    region        = "eu-west-2"
    database_name = "books"
    min_capacity  = 0
  }

  assert {
    condition     = strcontains(output.env_file, "\nAWS_REGION=eu-west-2\n") && strcontains(output.env_file, "\nAURORA_DATABASE=books\n")
    error_message = "env_file must carry the region and database of the variables."
  }

  assert {
    condition     = strcontains(output.env_file, "\nALEX_MIN_CAPACITY=0.5\n")
    error_message = "ALEX_MIN_CAPACITY (what aurora.lua resume restores) must be at least 0.5, even with min_capacity = 0."
  }
}
