# Bad variables are refused by the module's validations, before any provider
# call (the AWS provider is mocked as in cluster.tftest.hcl all the same).

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

run "refuses_max_below_min" {
  command = plan

  variables {
    min_capacity = 4
    max_capacity = 2
  }

  expect_failures = [var.max_capacity]
}

run "refuses_auto_pause_on_an_old_engine" {
  command = plan

  variables {
    min_capacity   = 0
    engine_version = "15.4"
  }

  expect_failures = [var.min_capacity]
}

run "refuses_a_region_that_is_not_one" {
  command = plan

  variables {
    region = "US-EAST-1"
  }

  expect_failures = [var.region]
}

run "accepts_the_extremes" {
  command = plan

  variables {
    min_capacity = 0
    max_capacity = 128
  }

  assert {
    condition     = aws_rds_cluster.aurora.serverlessv2_scaling_configuration[0].max_capacity == 128
    error_message = "0-128 ACUs must be accepted."
  }
}
