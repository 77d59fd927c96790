# The cluster, its instance and its network as `terraform plan` would create
# them, with the AWS provider mocked: no credentials, no network, no account.
# terraform test still loads the real provider's schema, so an argument the
# provider does not know fails here as it would against AWS. override_during =
# plan makes the mock answer what AWS would compute (mocks/aws.tfmock.hcl)
# already at plan time.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

run "cluster" {
  command = plan

  assert {
    condition     = aws_rds_cluster.aurora.enable_http_endpoint == true
    error_message = "The Data API (enable_http_endpoint) must be on: it is alexlua's only way in."
  }

  assert {
    condition     = aws_rds_cluster.aurora.engine == "aurora-postgresql" && aws_rds_cluster.aurora.engine_mode == "provisioned"
    error_message = "The cluster must be Aurora PostgreSQL in provisioned mode (Serverless v2)."
  }

  assert {
    condition     = aws_rds_cluster.aurora.engine_version == "15.10" && aws_rds_cluster.aurora.database_name == "alex"
    error_message = "The defaults must give Aurora PostgreSQL 15.10 and the database alex."
  }

  assert {
    condition     = aws_rds_cluster.aurora.storage_encrypted == true
    error_message = "Storage must be encrypted."
  }

  assert {
    condition     = aws_rds_cluster.aurora.manage_master_user_password == true && aws_rds_cluster.aurora.master_password == null
    error_message = "RDS must manage the master password in Secrets Manager; the module must not set one."
  }

  assert {
    condition     = aws_rds_cluster.aurora.master_username == "alex_admin"
    error_message = "The master user must be var.master_username."
  }

  assert {
    condition     = aws_rds_cluster.aurora.serverlessv2_scaling_configuration[0].min_capacity == 0.5 && aws_rds_cluster.aurora.serverlessv2_scaling_configuration[0].max_capacity == 2
    error_message = "Serverless v2 capacity must default to 0.5-2 ACUs."
  }

  assert {
    condition     = aws_rds_cluster.aurora.cluster_identifier == "alex-aurora-cluster" && aws_rds_cluster.aurora.deletion_protection == false && aws_rds_cluster.aurora.skip_final_snapshot == true
    error_message = "The defaults must give alex-aurora-cluster, without deletion protection or final snapshot."
  }

  assert {
    condition     = aws_rds_cluster_instance.writer.instance_class == "db.serverless" && aws_rds_cluster_instance.writer.publicly_accessible == false
    error_message = "The writer must be one db.serverless instance, not public."
  }

  assert {
    condition     = aws_rds_cluster_instance.writer.cluster_identifier == aws_rds_cluster.aurora.id
    error_message = "The writer must belong to the cluster."
  }
}

run "capacity_from_variables" {
  command = plan

  variables {
    min_capacity             = 0
    max_capacity             = 16
    seconds_until_auto_pause = 900
  }

  assert {
    condition     = aws_rds_cluster.aurora.serverlessv2_scaling_configuration[0].min_capacity == 0
    error_message = "min_capacity must come from var.min_capacity."
  }

  assert {
    condition     = aws_rds_cluster.aurora.serverlessv2_scaling_configuration[0].max_capacity == 16
    error_message = "max_capacity must come from var.max_capacity."
  }

  assert {
    condition     = aws_rds_cluster.aurora.serverlessv2_scaling_configuration[0].seconds_until_auto_pause == 900
    error_message = "With min_capacity = 0, seconds_until_auto_pause must come from the variable."
  }
}

run "auto_pause_only_at_zero" {
  command = plan

  variables {
    min_capacity             = 1
    seconds_until_auto_pause = 900
  }

  assert {
    condition     = aws_rds_cluster.aurora.serverlessv2_scaling_configuration[0].seconds_until_auto_pause != 900
    error_message = "seconds_until_auto_pause must be left out when min_capacity > 0 (RDS refuses it then)."
  }
}

run "network" {
  command = plan

  assert {
    condition     = aws_db_subnet_group.aurora.subnet_ids == toset(["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"])
    error_message = "The subnet group must hold the selected VPC's subnets."
  }

  assert {
    condition     = aws_rds_cluster.aurora.db_subnet_group_name == "alex-aurora-subnets" && aws_security_group.aurora.vpc_id == "vpc-0123456789abcdef0"
    error_message = "The cluster must use the module's subnet group in the selected VPC."
  }

  assert {
    condition     = aws_rds_cluster.aurora.vpc_security_group_ids == toset([aws_security_group.aurora.id])
    error_message = "The cluster must have the module's security group and no other."
  }

  assert {
    condition = length(aws_security_group.aurora.ingress) == 1 && alltrue([
      for rule in aws_security_group.aurora.ingress :
      rule.from_port == 5432 && rule.to_port == 5432 && rule.protocol == "tcp" && rule.self != true &&
      rule.cidr_blocks == tolist(["172.31.0.0/16"]) && try(length(rule.ipv6_cidr_blocks), 0) == 0 &&
      try(length(rule.security_groups), 0) == 0 && try(length(rule.prefix_list_ids), 0) == 0
    ])
    error_message = "The security group must let in PostgreSQL (5432/tcp) from the VPC's CIDR and nothing else."
  }

  assert {
    condition     = length(aws_security_group.aurora.egress) == 0
    error_message = "The security group must not open any egress: the cluster calls nothing."
  }
}
