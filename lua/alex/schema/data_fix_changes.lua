-- Table data_fix_changes (schema/003_data_fixes.sql): every row a data fix
-- run inserted, updated or deleted, the row before and after as JSON,
-- written by the data_fix_capture triggers.  See alex.schema for the
-- attributes.
return {
  name = "data_fix_changes",
  primary_key = { "id" },
  fields = {
    { id = { sql_type = "bigint", sql_default = "nextval('data_fix_changes_id_seq'::regclass)", auto = true } },
    { run_id = { sql_type = "bigint", not_null = true, references = "data_fix_runs.id", on_delete = "cascade" } },
    { table_name = { sql_type = "character varying(63)", not_null = true } },
    { operation = { sql_type = "character(1)", not_null = true, one_of = { "I", "U", "D" } } },
    { old_row = { sql_type = "jsonb" } },
    { new_row = { sql_type = "jsonb" } },
    { changed_at = { sql_type = "timestamp without time zone", not_null = true, sql_default = "clock_timestamp()",
                     auto = true } },
  },
  indexes = {
    { name = "idx_data_fix_changes_run", columns = { "run_id", "id" } },
  },
}
