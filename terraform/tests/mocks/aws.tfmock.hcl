# What AWS would compute for the module's resources and data sources, for the
# mocked provider in ../*.tftest.hcl: fixed values, so that the plan is
# complete (every ARN known) and the assertions can name them.

mock_data "aws_partition" {
  defaults = { partition = "aws" }
}

mock_data "aws_caller_identity" {
  defaults = { account_id = "123456789012" }
}

mock_data "aws_vpc" {
  defaults = {
    id         = "vpc-0123456789abcdef0"
    cidr_block = "172.31.0.0/16"
  }
}

mock_data "aws_subnets" {
  defaults = { ids = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"] }
}

# RDS names the secret it keeps a cluster's master credentials in
# rds!cluster-<uuid>.
mock_resource "aws_rds_cluster" {
  defaults = {
    arn = "arn:aws:rds:us-east-1:123456789012:cluster:alex-aurora-cluster"
    master_user_secret = [{
      secret_arn    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-0b7c3a4e-5f6d-4e8f-9a1b-2c3d4e5f6a7b-AbCdEf"
      kms_key_id    = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
      secret_status = "active"
    }]
  }
}

# What AWS reports when the configuration has no egress rule: a rule added to
# the configuration replaces this default and fails the network run.
mock_resource "aws_security_group" {
  defaults = { egress = [] }
}

mock_resource "aws_iam_role" {
  defaults = { arn = "arn:aws:iam::123456789012:role/alex-lambda-data-api" }
}
