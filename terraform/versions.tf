# Terraform 1.9+ for variable validations that refer to other variables
# (max_capacity >= min_capacity); AWS provider 5.81+ for min_capacity = 0 and
# seconds_until_auto_pause (Aurora Serverless v2 auto-pause).
terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.81.0, < 7.0.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({
      Project   = "alex"
      ManagedBy = "terraform"
      Module    = "alexlua/terraform"
    }, var.tags)
  }
}
