# Every variable has a default that suits a development cluster: copy
# terraform.tfvars.example to terraform.tfvars and change what you need.

variable "region" {
  description = "AWS region for every resource, e.g. us-east-1. Put the same value in AWS_REGION in .env."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "The region must be an AWS region name such as us-east-1, eu-west-2 or us-gov-west-1."
  }
}

variable "name" {
  description = "Prefix of every resource name: the cluster is <name>-aurora-cluster, the Lambda role <name>-lambda-data-api."
  type        = string
  default     = "alex"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.name)) && length(var.name) <= 32
    error_message = "The name must be 1-32 lower-case letters, digits and single hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "engine_version" {
  description = "Aurora PostgreSQL engine version. The default supports auto-pause (min_capacity = 0), which needs 13.15+, 14.12+, 15.7+ or 16.3+ (17.x all). List them: aws rds describe-db-engine-versions --engine aurora-postgresql --query 'DBEngineVersions[].EngineVersion'."
  type        = string
  default     = "15.10"

  validation {
    condition     = can(regex("^(13|14|15|16|17)\\.[0-9]+$", var.engine_version))
    error_message = "The engine version must be an Aurora PostgreSQL version MAJOR.MINOR with major 13 to 17, e.g. 15.10."
  }
}

variable "database_name" {
  description = "Name of the database created in the cluster (AURORA_DATABASE in .env; alexlua's default is alex)."
  type        = string
  default     = "alex"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,62}$", var.database_name))
    error_message = "The database name must be 1-63 letters, digits or underscores, starting with a letter."
  }
}

variable "master_username" {
  description = "Master user name. RDS generates its password and keeps both in a Secrets Manager secret it manages (and rotates every 7 days) as {\"username\", \"password\"}."
  type        = string
  default     = "alex_admin"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,15}$", var.master_username)) && lower(var.master_username) != "rdsadmin"
    error_message = "The master user name must be 1-16 letters, digits or underscores, starting with a letter, and not rdsadmin (reserved by RDS)."
  }
}

variable "min_capacity" {
  description = "Minimum Aurora capacity units (ACUs), in steps of 0.5. 0 turns on auto-pause: the instance stops costing compute after seconds_until_auto_pause idle seconds and resumes (about 15 s) on the next connection or Data API call. 0.5 keeps it warm (about $40-45 a month)."
  type        = number
  default     = 0.5

  validation {
    condition     = var.min_capacity >= 0 && var.min_capacity <= 128 && floor(var.min_capacity * 2) == var.min_capacity * 2
    error_message = "min_capacity must be between 0 and 128 ACUs, in steps of 0.5."
  }

  validation {
    condition = var.min_capacity > 0 || try(
      tonumber(split(".", var.engine_version)[1]) >= lookup({ "13" = 15, "14" = 12, "15" = 7, "16" = 3 }, split(".", var.engine_version)[0], 0),
      false
    )
    error_message = "min_capacity = 0 (auto-pause) needs Aurora PostgreSQL 13.15+, 14.12+, 15.7+, 16.3+ or 17: raise engine_version or use min_capacity >= 0.5."
  }
}

variable "max_capacity" {
  description = "Maximum Aurora capacity units (ACUs), in steps of 0.5, at least 1 and at least min_capacity."
  type        = number
  default     = 2

  validation {
    condition     = var.max_capacity >= 1 && var.max_capacity <= 128 && floor(var.max_capacity * 2) == var.max_capacity * 2
    error_message = "max_capacity must be between 1 and 128 ACUs, in steps of 0.5."
  }

  validation {
    condition     = var.max_capacity >= var.min_capacity
    error_message = "max_capacity must be at least min_capacity (0 <= min_capacity <= max_capacity <= 128)."
  }
}

variable "seconds_until_auto_pause" {
  description = "Idle seconds before an auto-pausing instance (min_capacity = 0) pauses, 300 to 86400. Ignored when min_capacity > 0."
  type        = number
  default     = 300

  validation {
    condition     = var.seconds_until_auto_pause >= 300 && var.seconds_until_auto_pause <= 86400 && floor(var.seconds_until_auto_pause) == var.seconds_until_auto_pause
    error_message = "seconds_until_auto_pause must be a whole number of seconds from 300 (5 minutes) to 86400 (1 day)."
  }
}

variable "backup_retention_period" {
  description = "Days of automated backups to keep, 1 to 35. One day of backup storage is free."
  type        = number
  default     = 1

  validation {
    condition     = var.backup_retention_period >= 1 && var.backup_retention_period <= 35 && floor(var.backup_retention_period) == var.backup_retention_period
    error_message = "backup_retention_period must be a whole number of days from 1 to 35."
  }
}

variable "preferred_backup_window" {
  description = "Daily automated backup window, UTC, hh24:mi-hh24:mi, at least 30 minutes, not overlapping the maintenance window."
  type        = string
  default     = "03:00-04:00"

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$", var.preferred_backup_window))
    error_message = "preferred_backup_window must look like 03:00-04:00 (UTC)."
  }
}

variable "preferred_maintenance_window" {
  description = "Weekly maintenance window, UTC, ddd:hh24:mi-ddd:hh24:mi, at least 30 minutes, not overlapping the backup window."
  type        = string
  default     = "sun:04:30-sun:05:30"

  validation {
    condition     = can(regex("^(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9]-(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9]$", var.preferred_maintenance_window))
    error_message = "preferred_maintenance_window must look like sun:04:30-sun:05:30 (UTC, lower-case day names)."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the cluster (terraform destroy fails until this is false again). Off by default for a development cluster; turn it on for anything you keep."
  type        = bool
  default     = false
}

variable "skip_final_snapshot" {
  description = "Delete the cluster without a final snapshot. true by default for a development cluster; false keeps a snapshot <name>-aurora-final (which you pay storage for until you delete it)."
  type        = bool
  default     = true
}

variable "apply_immediately" {
  description = "Apply cluster changes (capacity, engine version) at once instead of in the next maintenance window."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "VPC for the cluster; null (the default) uses the account's default VPC and all its subnets."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must be null or a VPC id such as vpc-0123456789abcdef0."
  }
}

variable "tags" {
  description = "Extra tags for every resource (added to Project = alex, ManagedBy = terraform)."
  type        = map(string)
  default     = {}
}
