-- Table accounts (schema/001_schema.sql): a user's 401(k), IRA, taxable
-- account...  See alex.schema for the attributes.
return {
  name = "accounts",
  what = "account",
  primary_key = { "id" },
  fields = {
    { id = { sql_type = "uuid", sql_default = "gen_random_uuid()", auto = true } },
    -- nullable in the table, required of every account written from Lua
    { clerk_user_id = { sql_type = "character varying(255)", references = "users.clerk_user_id",
                        on_delete = "cascade", required = true } },
    { account_name = { sql_type = "character varying(255)", not_null = true, required = true, len_min = 1 } },
    { account_purpose = { sql_type = "text" } },
    { cash_balance = { sql_type = "numeric(12,2)", sql_default = "0", min = 0 } },
    { cash_interest = { sql_type = "numeric(5,4)", sql_default = "0", min = 0, max = 1 } },
    { created_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
    { updated_at = { sql_type = "timestamp without time zone", sql_default = "now()", auto = true } },
  },
  indexes = {
    { name = "idx_accounts_user", columns = { "clerk_user_id" } },
  },
  triggers = {
    { name = "data_fix_capture_accounts", capture = true },
    { name = "update_accounts_updated_at", event = "BEFORE UPDATE", execute = "update_updated_at_column" },
  },
  records = {
    { name = "AccountCreate" },
  },
}
