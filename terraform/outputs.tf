# The two ARNs alexlua needs, and the rest for people and other tools.
# The ARN outputs wait for the writer instance: the Data API answers only once
# the cluster has one.

output "aurora_cluster_arn" {
  description = "ARN of the Aurora cluster: AURORA_CLUSTER_ARN in .env."
  value       = aws_rds_cluster.aurora.arn
  depends_on  = [aws_rds_cluster_instance.writer]
}

output "aurora_secret_arn" {
  description = "ARN of the Secrets Manager secret RDS keeps the master credentials in ({\"username\", \"password\"}): AURORA_SECRET_ARN in .env."
  value       = aws_rds_cluster.aurora.master_user_secret[0].secret_arn
  depends_on  = [aws_rds_cluster_instance.writer]
}

output "aurora_cluster_endpoint" {
  description = "Writer endpoint (host name) of the cluster, for psql from inside the VPC on port 5432."
  value       = aws_rds_cluster.aurora.endpoint
}

output "aurora_cluster_identifier" {
  description = "Identifier of the cluster (for the aws CLI and scripts/aurora.lua)."
  value       = aws_rds_cluster.aurora.cluster_identifier
}

output "database_name" {
  description = "Database created in the cluster: AURORA_DATABASE in .env."
  value       = aws_rds_cluster.aurora.database_name
}

output "lambda_role_arn" {
  description = "ARN of the IAM role for Lambda functions that use the Data API on this cluster."
  value       = aws_iam_role.lambda.arn
}

output "env_file" {
  description = "Lines for alexlua's .env: terraform output -raw env_file >> ../.env"
  value       = <<-EOT
    # Aurora for alexlua (terraform output -raw env_file)
    AURORA_CLUSTER_ARN=${aws_rds_cluster.aurora.arn}
    AURORA_SECRET_ARN=${aws_rds_cluster.aurora.master_user_secret[0].secret_arn}
    AURORA_DATABASE=${aws_rds_cluster.aurora.database_name}
    AWS_REGION=${var.region}
    ALEX_MIN_CAPACITY=${max(var.min_capacity, 0.5)}
  EOT
  depends_on  = [aws_rds_cluster_instance.writer]
}
