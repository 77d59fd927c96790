-- Table price_history (schema/002_history_and_logs.sql): one closing price
-- per instrument and day, removed with its instrument.  No model writes it
-- yet, so it declares no records.  See alex.schema for the attributes.
return {
  name = "price_history",
  primary_key = { "id" },
  unique = { { "symbol", "price_date" } },
  fields = {
    { id = { sql_type = "uuid", sql_default = "gen_random_uuid()", auto = true } },
    { symbol = { sql_type = "character varying(20)", not_null = true, references = "instruments.symbol",
                 on_delete = "cascade" } },
    { price_date = { sql_type = "date", not_null = true } },
    { close_price = { sql_type = "numeric(12,4)", not_null = true } },
    { created_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
  },
  indexes = {
    { name = "idx_price_history_date", columns = { "price_date" } },
  },
  triggers = {
    { name = "data_fix_capture_price_history", capture = true },
  },
}
