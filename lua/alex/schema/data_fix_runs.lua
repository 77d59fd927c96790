-- Table data_fix_runs (schema/003_data_fixes.sql): one row per run of a data
-- fix (alex.fix): what ran, with which arguments, by whom and how far it got.
-- Only alex.fix writes it.  See alex.schema for the attributes.
return {
  name = "data_fix_runs",
  what = "data fix run",
  primary_key = { "id" },
  fields = {
    { id = { sql_type = "bigint", sql_default = "nextval('data_fix_runs_id_seq'::regclass)", auto = true } },
    { name = { sql_type = "character varying(200)", not_null = true, required = true, len_min = 1 } },
    { checksum = { sql_type = "character(64)", not_null = true, match = "^%x+$" } },
    { arguments = { sql_type = "jsonb", not_null = true, sql_default = "'{}'::jsonb" } },
    { arguments_key = { sql_type = "text", not_null = true } },
    { status = { sql_type = "character varying(20)", not_null = true, sql_default = "'running'::character varying",
                 one_of = { "running", "applied", "interrupted", "failed" } } },
    { run_by = { sql_type = "character varying(255)", not_null = true } },
    { host = { sql_type = "character varying(255)" } },
    { pid = { sql_type = "integer", min = 0 } },
    { process_start = { sql_type = "character varying(40)" } },
    { boot_id = { sql_type = "character varying(64)" } },
    { batch_size = { sql_type = "integer", min = 1 } },
    { rows_total = { sql_type = "bigint", min = 0 } },
    { rows_done = { sql_type = "bigint", not_null = true, sql_default = "0", min = 0 } },
    { rows_changed = { sql_type = "bigint", not_null = true, sql_default = "0", min = 0 } },
    { checkpoint = { sql_type = "jsonb" } },
    { error_message = { sql_type = "text" } },
    { started_at = { sql_type = "timestamp without time zone", not_null = true, sql_default = "now()", auto = true } },
    { finished_at = { sql_type = "timestamp without time zone", auto = true } },
    { updated_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
  },
  indexes = {
    { name = "idx_data_fix_runs_name", columns = { "name", "arguments_key", "id" } },
  },
  triggers = {
    { name = "update_data_fix_runs_updated_at", event = "BEFORE UPDATE", execute = "update_updated_at_column" },
  },
}
