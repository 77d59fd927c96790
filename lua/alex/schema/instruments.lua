-- Table instruments (schema/001_schema.sql): ETFs, funds and stocks, with
-- their allocations as percentages by key.  See alex.schema for the attributes.
--
-- InstrumentCreate requires all three allocations (complete), because
-- scripts/verify.lua requires them of every stored instrument and the
-- column default {} would fail it; the price is optional.
local validate = require "alex.validate"

return {
  name = "instruments",
  what = "instrument",
  primary_key = { "symbol" },
  fields = {
    { symbol = { sql_type = "character varying(20)", required = true, len_min = 1, match = "^[A-Z0-9.%-]+$",
                 match_message = "must contain only upper-case letters, digits, '.' and '-'" } },
    { name = { sql_type = "character varying(255)", not_null = true, required = true, len_min = 1 } },
    { instrument_type = { sql_type = "character varying(50)", required = true, one_of = validate.INSTRUMENT_TYPES } },
    { current_price = { sql_type = "numeric(12,4)", min = 0, max = 999999 } },
    { allocation_regions = { sql_type = "jsonb", sql_default = "'{}'::jsonb", required = true,
                             type = "allocation", kind = "regions" } },
    { allocation_sectors = { sql_type = "jsonb", sql_default = "'{}'::jsonb", required = true,
                             type = "allocation", kind = "sectors" } },
    { allocation_asset_class = { sql_type = "jsonb", sql_default = "'{}'::jsonb", required = true,
                                 type = "allocation", kind = "asset_class" } },
    { created_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
    { updated_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
  },
  triggers = {
    { name = "data_fix_capture_instruments", capture = true },
    { name = "update_instruments_updated_at", event = "BEFORE UPDATE", execute = "update_updated_at_column" },
  },
  records = {
    { name = "InstrumentCreate" },
  },
}
