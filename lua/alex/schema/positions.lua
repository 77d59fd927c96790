-- Table positions (schema/001_schema.sql): holdings, one row per (account,
-- symbol).  See alex.schema for the attributes.
return {
  name = "positions",
  what = "position",
  primary_key = { "id" },
  unique = { { "account_id", "symbol" } },
  fields = {
    { id = { sql_type = "uuid", sql_default = "gen_random_uuid()", auto = true } },
    { account_id = { sql_type = "uuid", references = "accounts.id", on_delete = "cascade", required = true } },
    { symbol = { sql_type = "character varying(20)", references = "instruments.symbol", required = true } },
    { quantity = { sql_type = "numeric(20,8)", not_null = true, required = true, gt = 0 } },
    { as_of_date = { sql_type = "date", sql_default = "CURRENT_DATE" } },
    { created_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
    { updated_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
  },
  indexes = {
    { name = "idx_positions_account", columns = { "account_id" } },
    { name = "idx_positions_symbol", columns = { "symbol" } },
  },
  triggers = {
    { name = "data_fix_capture_positions", capture = true },
    { name = "update_positions_updated_at", event = "BEFORE UPDATE", execute = "update_updated_at_column" },
  },
  records = {
    { name = "PositionCreate" },
  },
}
