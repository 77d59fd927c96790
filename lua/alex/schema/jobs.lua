-- Table jobs (schema/001_schema.sql): analysis jobs run by the agents; each
-- agent fills its own payload.  See alex.schema for the attributes.
--
-- A job is created from JobCreate; its status then moves only through
-- alex.models' transitions (pending -> running -> completed, or -> failed),
-- which stamp started_at and completed_at, and JobUpdate is what a transition
-- or an update may write.
local JOB_TYPES = { "portfolio_analysis", "rebalance_recommendation", "retirement_projection",
  "risk_assessment", "tax_optimization", "instrument_research" }
local JOB_STATUSES = { "pending", "running", "completed", "failed" }

local UPDATE_FIELDS = { "status", "report_payload", "charts_payload", "retirement_payload", "summary_payload",
  "error_message" }

return {
  name = "jobs",
  what = "job",
  primary_key = { "id" },
  fields = {
    { id = { sql_type = "uuid", sql_default = "gen_random_uuid()", auto = true } },
    { clerk_user_id = { sql_type = "character varying(255)", references = "users.clerk_user_id",
                        on_delete = "cascade", required = true } },
    { job_type = { sql_type = "character varying(50)", not_null = true, required = true, one_of = JOB_TYPES } },
    { status = { sql_type = "character varying(20)", sql_default = "'pending'::character varying",
                 one_of = JOB_STATUSES } },
    { request_payload = { sql_type = "jsonb" } },
    { report_payload = { sql_type = "jsonb" } },
    { charts_payload = { sql_type = "jsonb" } },
    { retirement_payload = { sql_type = "jsonb" } },
    { summary_payload = { sql_type = "jsonb" } },
    { error_message = { sql_type = "text" } },
    { created_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
    { started_at = { sql_type = "timestamp without time zone", auto = true } },
    { completed_at = { sql_type = "timestamp without time zone", auto = true } },
    { updated_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
  },
  indexes = {
    { name = "idx_jobs_user", columns = { "clerk_user_id" } },
    { name = "idx_jobs_status", columns = { "status" } },
  },
  triggers = {
    { name = "data_fix_capture_jobs", capture = true },
    { name = "update_jobs_updated_at", event = "BEFORE UPDATE", execute = "update_updated_at_column" },
  },
  records = {
    { name = "JobCreate", fields = { "clerk_user_id", "job_type", "request_payload" } },
    { name = "JobUpdate", fields = UPDATE_FIELDS, entity_checks = { { at_least_one_of = UPDATE_FIELDS } } },
  },
}
