-- Table agent_logs (schema/002_history_and_logs.sql): what each agent did for
-- a job, removed with the job.  No model writes it yet, so it declares no
-- records.  See alex.schema for the attributes.
return {
  name = "agent_logs",
  primary_key = { "id" },
  fields = {
    { id = { sql_type = "uuid", sql_default = "gen_random_uuid()", auto = true } },
    { job_id = { sql_type = "uuid", not_null = true, references = "jobs.id", on_delete = "cascade" } },
    { agent_name = { sql_type = "character varying(50)", not_null = true } },
    { level = { sql_type = "character varying(10)", not_null = true, sql_default = "'info'::character varying" } },
    { message = { sql_type = "text", not_null = true } },
    { detail = { sql_type = "jsonb" } },
    { created_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
  },
  indexes = {
    { name = "idx_agent_logs_job", columns = { "job_id", "created_at" } },
    { name = "idx_agent_logs_created", columns = { "created_at" } },
  },
  triggers = {
    { name = "data_fix_capture_agent_logs", capture = true },
  },
}
