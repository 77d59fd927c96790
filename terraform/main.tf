# Aurora PostgreSQL Serverless v2 for alexlua: one cluster with the Data API on,
# one db.serverless writer, master credentials in a Secrets Manager secret that
# RDS itself creates and rotates, reachable on 5432 from inside the VPC only
# (alexlua itself goes through the Data API over HTTPS and needs no network
# path to the cluster).

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

# The default VPC unless var.vpc_id names another one.
data "aws_vpc" "selected" {
  id      = var.vpc_id
  default = var.vpc_id == null ? true : null
}

data "aws_subnets" "selected" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.selected.id]
  }
}

locals {
  cluster_identifier = "${var.name}-aurora-cluster"
  auto_pause         = var.min_capacity == 0
}

# ---- network ----

resource "aws_db_subnet_group" "aurora" {
  name        = "${var.name}-aurora-subnets"
  description = "Subnets of ${data.aws_vpc.selected.id} for ${local.cluster_identifier}"
  subnet_ids  = data.aws_subnets.selected.ids
}

resource "aws_security_group" "aurora" {
  name        = "${var.name}-aurora-sg"
  description = "PostgreSQL 5432 from inside the VPC only"
  vpc_id      = data.aws_vpc.selected.id

  ingress {
    description = "PostgreSQL from the VPC CIDR"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.selected.cidr_block]
  }
}

# ---- the cluster ----

resource "aws_rds_cluster" "aurora" {
  cluster_identifier = local.cluster_identifier
  engine             = "aurora-postgresql"
  engine_mode        = "provisioned"
  engine_version     = var.engine_version
  database_name      = var.database_name
  master_username    = var.master_username

  # RDS generates the master password and keeps it in a Secrets Manager secret
  # of its own ({"username", "password"}, the form the Data API reads), rotated
  # every 7 days: the password never passes through Terraform or its state.
  manage_master_user_password = true

  # The RDS Data API: alexlua's only way in.
  enable_http_endpoint = true

  db_subnet_group_name   = aws_db_subnet_group.aurora.name
  vpc_security_group_ids = [aws_security_group.aurora.id]
  storage_encrypted      = true

  backup_retention_period      = var.backup_retention_period
  preferred_backup_window      = var.preferred_backup_window
  preferred_maintenance_window = var.preferred_maintenance_window
  copy_tags_to_snapshot        = true

  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = var.skip_final_snapshot
  final_snapshot_identifier = var.skip_final_snapshot ? null : "${var.name}-aurora-final"
  apply_immediately         = var.apply_immediately

  serverlessv2_scaling_configuration {
    min_capacity             = var.min_capacity
    max_capacity             = var.max_capacity
    seconds_until_auto_pause = local.auto_pause ? var.seconds_until_auto_pause : null
  }
}

resource "aws_rds_cluster_instance" "writer" {
  identifier                 = "${var.name}-aurora-instance-1"
  cluster_identifier         = aws_rds_cluster.aurora.id
  instance_class             = "db.serverless"
  engine                     = aws_rds_cluster.aurora.engine
  engine_version             = aws_rds_cluster.aurora.engine_version
  db_subnet_group_name       = aws_db_subnet_group.aurora.name
  publicly_accessible        = false
  auto_minor_version_upgrade = true
  apply_immediately          = var.apply_immediately
}
