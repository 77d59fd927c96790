-- Table users (schema/001_schema.sql): one row per Clerk user.  See alex.schema
-- for the attributes.
return {
  name = "users",
  what = "user",
  primary_key = { "clerk_user_id" },
  fields = {
    { clerk_user_id = { sql_type = "character varying(255)", required = true, len_min = 1 } },
    { display_name = { sql_type = "character varying(255)", len_min = 1 } },
    { years_until_retirement = { sql_type = "integer", min = 0, max = 100 } },
    { target_retirement_income = { sql_type = "numeric(12,2)", min = 0 } },
    { asset_class_targets = { sql_type = "jsonb", sql_default = [['{"equity": 70, "fixed_income": 30}'::jsonb]],
                              type = "allocation", kind = "asset_class" } },
    -- as PostgreSQL prints it: jsonb orders an object's keys
    { region_targets = { sql_type = "jsonb", sql_default = [['{"international": 50, "north_america": 50}'::jsonb]],
                         type = "allocation", kind = "regions" } },
    { created_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
    { updated_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
  },
  triggers = {
    { name = "data_fix_capture_users", capture = true },
    { name = "update_users_updated_at", event = "BEFORE UPDATE", execute = "update_updated_at_column" },
  },
  records = {
    { name = "UserCreate" },
  },
}
