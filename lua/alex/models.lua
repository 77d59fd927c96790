-- The five tables as models, with the operations the agents and ad-hoc fixes
-- need.  Every record is checked (alex.records) before anything is sent; every
-- value is a bound parameter; table and column names come from the tables'
-- declarations (alex.schema), never from input.  Methods raise alex.errors
-- values (ValidationError carries `errors`, the list of { field, message }).
--
--   local m = require("alex.models").bind(conn_or_tx)
--   m.instruments:upsert{ symbol = "SPY", ... }
--   conn:transaction(function(tx) local mt = models.bind(tx) ... end)
local records = require "alex.records"
local schema = require "alex.schema"
local errors = require "alex.errors"
local db = require "alex.db"

local models = {}

local function validation_error(record, errs, what)
  return errors.new { name = "ValidationError", errors = errs,
                      message = records.format_errors(errs, what or record) }
end

local function check(record, value, what)
  local clean, errs = records.check(record, value)
  if not clean then error(validation_error(record, errs, what), 0) end
  return clean
end

local function not_found(what, key)
  return errors.new { name = "NotFound", message = ("%s %s does not exist"):format(what, tostring(key)) }
end

-- The columns of each table a cleaned record may set (all but the auto ones).
local COLUMNS = {}
for _, t in ipairs(schema.TABLES) do COLUMNS[t.name] = t.writable end

-- The SQL cast of a parameter, so strings land in typed columns.
local cast = schema.cast

-- A record's value as a parameter: JSON columns as JSON, exact decimals as
-- DECIMAL, the rest as is.
local function param(table_name, column, v)
  if v == nil then return db.null end
  if type(v) == "table" and getmetatable(v) == nil then return db.json(v) end
  if column and type(v) == "number" and cast(table_name, column) == "::numeric" then return db.decimal(v) end
  return v
end

-- The columns of `table_name` present in `clean`, with placeholders and params.
local function columns_of(table_name, clean)
  local cols, holes, params = {}, {}, {}
  for _, c in ipairs(COLUMNS[table_name]) do
    if clean[c] ~= nil then
      cols[#cols + 1] = c
      holes[#holes + 1] = ":" .. c .. cast(table_name, c)
      params[c] = param(table_name, c, clean[c])
    end
  end
  return cols, holes, params
end
models.columns_of = columns_of
models.COLUMNS = COLUMNS

local Model = {}
Model.__index = Model

-- A model of the declared table: its key is the primary key, its record the
-- one a row is created from (the declaration's records[1]).
local function model(conn, table_name, class)
  local t = schema.table(table_name)
  return setmetatable({ conn = conn, table_name = table_name, key = t.primary_key[1], schema = t.records[1].name,
                        fields = t.records[1].fields, what = t.what }, class)
end

function Model:find(key)
  return self.conn:query_one(("SELECT * FROM %s WHERE %s = :key%s"):format(
    self.table_name, self.key, cast(self.table_name, self.key)), { key = key })
end

function Model:all(order)
  return self.conn:query(("SELECT * FROM %s ORDER BY %s"):format(self.table_name, order and "1" or self.key))
end

-- create(record) -> the inserted row.
function Model:create(record)
  local clean = check(self.schema, record, self.what)
  local cols, holes, params = columns_of(self.table_name, clean)
  local _, rows = self.conn:execute(("INSERT INTO %s (%s) VALUES (%s) RETURNING *"):format(
    self.table_name, table.concat(cols, ", "), table.concat(holes, ", ")), params)
  return rows[1]
end

-- update(key, fields) -> the updated row.  The merged record (the row's
-- values of the record's fields, then `fields`) is checked as a whole, so an
-- update can never leave a row that a create would refuse.  A column outside
-- the record (a job's status, which moves only through transitions) is
-- neither carried over nor accepted.
function Model:update(key, fields)
  local current = self:find(key)
  if not current then error(not_found(self.what, key), 0) end
  local merged = {}
  for _, c in ipairs(self.fields) do merged[c] = current[c] end
  for k, v in pairs(fields) do
    if v == db.null then merged[k] = nil else merged[k] = v end
  end
  local clean = check(self.schema, merged, self.what)
  local sets, params = {}, { key = key }
  for k in pairs(fields) do
    local known = false
    for _, c in ipairs(self.fields) do if c == k then known = true end end
    if not known or k == self.key then
      error(validation_error(self.schema, { { field = k, message = "cannot be updated" } }, self.what), 0)
    end
    sets[#sets + 1] = ("%s = :%s%s"):format(k, k, cast(self.table_name, k))
    params[k] = param(self.table_name, k, clean[k])
  end
  if #sets == 0 then return current end
  table.sort(sets)
  local _, rows = self.conn:execute(("UPDATE %s SET %s WHERE %s = :key%s RETURNING *"):format(
    self.table_name, table.concat(sets, ", "), self.key, cast(self.table_name, self.key)), params)
  return rows[1]
end

-- delete(key) -> true when a row was deleted.
function Model:delete(key)
  local n = self.conn:execute(("DELETE FROM %s WHERE %s = :key%s"):format(
    self.table_name, self.key, cast(self.table_name, self.key)), { key = key })
  return n > 0
end

-- ---------------------------------------------------------------- instruments

local Instruments = setmetatable({}, { __index = Model })
Instruments.__index = Instruments

local UPSERT_INSTRUMENT = [[INSERT INTO instruments (symbol, name, instrument_type, current_price,
  allocation_regions, allocation_sectors, allocation_asset_class)
VALUES (:symbol, :name, :instrument_type, :current_price::numeric, :allocation_regions::jsonb,
  :allocation_sectors::jsonb, :allocation_asset_class::jsonb)
ON CONFLICT (symbol) DO UPDATE SET name = EXCLUDED.name, instrument_type = EXCLUDED.instrument_type,
  current_price = EXCLUDED.current_price, allocation_regions = EXCLUDED.allocation_regions,
  allocation_sectors = EXCLUDED.allocation_sectors, allocation_asset_class = EXCLUDED.allocation_asset_class]]
models.UPSERT_INSTRUMENT = UPSERT_INSTRUMENT

local function instrument_params(clean)
  return {
    symbol = clean.symbol, name = clean.name, instrument_type = param("instruments", nil, clean.instrument_type),
    current_price = param("instruments", "current_price", clean.current_price),
    allocation_regions = db.json(clean.allocation_regions),
    allocation_sectors = db.json(clean.allocation_sectors),
    allocation_asset_class = db.json(clean.allocation_asset_class),
  }
end

-- check_instruments(list [, record]) -> cleaned list, or nil, one message and
-- the list of problems { field = "[3].current_price", message = ... }, every
-- problem of every record (paths from the top of the list, as in the file).
-- The default record, InstrumentSeed, wants a price and all three allocations.
function models.check_instruments(list, record)
  record = record or "InstrumentSeed"
  if type(list) ~= "table" or (next(list) ~= nil and #list == 0) then
    local errs = { { field = "", message = "expected an array of instrument records" } }
    return nil, records.format_errors(errs, "instruments"), errs
  end
  local clean, errs, seen = {}, {}, {}
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > #list then
      errs[#errs + 1] = { field = "", message = "expected an array of instrument records (it has other keys)" }
      break
    end
  end
  for i, rec in ipairs(list) do
    local at = ("[%d]"):format(i)
    local c, rerrs = records.check(record, rec)
    local symbol = type(rec) == "table" and rec.symbol
    if type(symbol) == "string" then
      if seen[symbol] then
        errs[#errs + 1] = { field = at .. ".symbol", message = ("%q is also the symbol of [%d]"):format(symbol,
          seen[symbol]) }
      else
        seen[symbol] = i
      end
    end
    if c then
      clean[#clean + 1] = c
    else
      for _, e in ipairs(rerrs) do
        errs[#errs + 1] = { field = e.field == "" and at or (at .. "." .. e.field), message = e.message }
      end
    end
  end
  if #errs > 0 then return nil, records.format_errors(errs, "instruments"), errs end
  return clean
end

-- check_test_data(data, symbols [, seed_name]) -> cleaned data, or nil, one
-- message and the list of problems (records.check's, paths from the top of the
-- file, sorted by path).  Besides UserSeed's rules, every position's symbol
-- must be one of `symbols` (a set: the instruments seeded with it, named
-- seed_name in the message): the database would refuse any other, but only at
-- the last call and naming no symbol.  symbols = nil skips that rule (when the
-- seed itself could not be read).
function models.check_test_data(data, symbols, seed_name)
  local clean, errs = records.check("UserSeed", data)
  errs = errs or {}
  local accounts = type(data) == "table" and data.accounts
  if symbols and type(accounts) == "table" then
    for i, a in ipairs(accounts) do
      local positions = type(a) == "table" and a.positions
      if type(positions) == "table" then
        for j, p in ipairs(positions) do
          local symbol = type(p) == "table" and p.symbol
          -- a symbol that breaks the format rules is reported by UserSeed already
          if type(symbol) == "string" and records.check_field("PositionSeed", "symbol", symbol)
             and not symbols[symbol] then
            errs[#errs + 1] = { field = ("accounts[%d].positions[%d].symbol"):format(i, j),
              message = ("%q is not one of the instruments seeded%s"):format(symbol,
                seed_name and (" (" .. seed_name .. ")") or "") }
          end
        end
      end
    end
  end
  if #errs > 0 then
    records.sort_errors(errs)
    return nil, records.format_errors(errs, "test data"), errs
  end
  return clean
end

-- upsert(record) -> the row.
function Instruments:upsert(record)
  local clean = check("InstrumentCreate", record, "instrument")
  local _, rows = self.conn:execute(UPSERT_INSTRUMENT .. " RETURNING *", instrument_params(clean),
    { idempotent = true })
  return rows[1]
end

-- upsert_many(list) -> count.  All records are checked first; then one
-- db:insert call (one statement, split only past the request cap).
function Instruments:upsert_many(list)
  local clean, msg, errs = models.check_instruments(list)
  if not clean then error(errors.new { name = "ValidationError", message = msg, errors = errs }, 0) end
  local rows = {}
  for i, c in ipairs(clean) do rows[i] = instrument_params(c) end
  local columns = COLUMNS.instruments
  return (self.conn:insert("instruments", rows, { columns = columns,
    on_conflict = { columns = { "symbol" }, update = table.move(columns, 2, #columns, 1, {}) } }))
end

function Instruments:update_price(symbol, price)
  return self:update(symbol, { current_price = price })
end

-- set_allocations(symbol, { regions = {...}, sectors = {...}, asset_class = {...} })
function Instruments:set_allocations(symbol, alloc)
  local fields = {}
  if alloc.regions then fields.allocation_regions = alloc.regions end
  if alloc.sectors then fields.allocation_sectors = alloc.sectors end
  if alloc.asset_class then fields.allocation_asset_class = alloc.asset_class end
  return self:update(symbol, fields)
end

-- ---------------------------------------------------------------- users, accounts

local Users = setmetatable({}, { __index = Model })
Users.__index = Users

function Users:upsert(record)
  local clean = check("UserCreate", record, "user")
  local cols, holes, params = columns_of("users", clean)
  local sets = {}
  for _, c in ipairs(cols) do
    if c ~= "clerk_user_id" then sets[#sets + 1] = c .. " = EXCLUDED." .. c end
  end
  local sql = ("INSERT INTO users (%s) VALUES (%s) ON CONFLICT (clerk_user_id) DO %s RETURNING *"):format(
    table.concat(cols, ", "), table.concat(holes, ", "),
    #sets > 0 and ("UPDATE SET " .. table.concat(sets, ", ")) or "UPDATE SET clerk_user_id = EXCLUDED.clerk_user_id")
  local _, rows = self.conn:execute(sql, params, { idempotent = true })
  return rows[1]
end

local Accounts = setmetatable({}, { __index = Model })
Accounts.__index = Accounts

function Accounts:for_user(clerk_user_id)
  return self.conn:query("SELECT * FROM accounts WHERE clerk_user_id = :u ORDER BY created_at, account_name",
    { u = clerk_user_id })
end

-- portfolio_value(account_id) -> { account_id, cash, positions_value, total,
-- positions = n, unpriced = n } with money as exact decimal strings.
function Accounts:portfolio_value(account_id)
  local row = self.conn:query_one([[
    SELECT a.id AS account_id, a.cash_balance AS cash,
           COALESCE(SUM(p.quantity * i.current_price), 0)::numeric(20,2) AS positions_value,
           (a.cash_balance + COALESCE(SUM(p.quantity * i.current_price), 0))::numeric(20,2) AS total,
           count(p.id) AS positions,
           count(p.id) FILTER (WHERE i.current_price IS NULL) AS unpriced
    FROM accounts a
    LEFT JOIN positions p ON p.account_id = a.id
    LEFT JOIN instruments i ON i.symbol = p.symbol
    WHERE a.id = :id::uuid
    GROUP BY a.id, a.cash_balance]], { id = account_id })
  if not row then error(not_found("account", account_id), 0) end
  return row
end

-- ---------------------------------------------------------------- positions

local Positions = setmetatable({}, { __index = Model })
Positions.__index = Positions

function Positions:for_account(account_id)
  return self.conn:query([[SELECT p.*, i.name AS instrument_name, i.current_price FROM positions p
    JOIN instruments i ON i.symbol = p.symbol WHERE p.account_id = :a::uuid ORDER BY p.symbol]],
    { a = account_id })
end

-- upsert(record): one position per (account, symbol); the quantity is replaced.
function Positions:upsert(record)
  local clean = check("PositionCreate", record, "position")
  local cols, holes, params = columns_of("positions", clean)
  local sql = ([[INSERT INTO positions (%s) VALUES (%s)
    ON CONFLICT (account_id, symbol) DO UPDATE SET quantity = EXCLUDED.quantity, as_of_date = EXCLUDED.as_of_date
    RETURNING *]]):format(table.concat(cols, ", "), table.concat(holes, ", "))
  local ok, rows_or_err = pcall(function()
    local _, rows = self.conn:execute(sql, params, { idempotent = true })
    return rows
  end)
  if not ok then
    local err = rows_or_err
    if errors.is_error(err) and err.sqlstate == "23503" then
      err.message = ("position: account %s or symbol %s does not exist (%s)"):format(
        tostring(clean.account_id), tostring(clean.symbol), err.message)
    end
    error(err, 0)
  end
  return rows_or_err[1]
end

-- move(symbol, from_account, to_account [, quantity]) -> the destination row.
-- Moves all (or part) of a holding; adds to a holding already there.  Run it
-- inside conn:transaction so both sides change together.
function Positions:move(symbol, from_account, to_account, quantity)
  -- both accounts, the symbol and the amount are checked before anything is sent
  check("PositionCreate", { account_id = from_account, symbol = symbol, quantity = 1 }, "source position")
  local dest = check("PositionCreate", { account_id = to_account, symbol = symbol,
                                         quantity = quantity == nil and 1 or quantity }, "destination position")
  -- Lock both holdings in one fixed order (by account id), so two opposite
  -- moves wait for each other instead of deadlocking.
  self.conn:query([[SELECT id FROM positions WHERE symbol = :s AND account_id IN (:a::uuid, :b::uuid)
    ORDER BY account_id FOR UPDATE]], { s = symbol, a = from_account, b = to_account })
  local from = self.conn:query_one(
    "SELECT * FROM positions WHERE account_id = :a::uuid AND symbol = :s", { a = from_account, s = symbol })
  if not from then error(not_found("position", symbol .. " in account " .. tostring(from_account)), 0) end
  local amount = quantity == nil and from.quantity or dest.quantity -- exact decimal strings
  local left = self.conn:query_one("SELECT (:have::numeric - :take::numeric) AS left",
    { have = db.decimal(from.quantity), take = db.decimal(amount) }).left
  if left:sub(1, 1) == "-" then
    error(errors.new { name = "ValidationError",
      message = ("cannot move %s %s: account holds only %s"):format(amount, symbol, from.quantity) }, 0)
  end
  if tonumber(left) == 0 then
    self.conn:execute("DELETE FROM positions WHERE id = :id::uuid", { id = from.id })
  else
    self.conn:execute("UPDATE positions SET quantity = :q::numeric WHERE id = :id::uuid",
      { q = db.decimal(left), id = from.id })
  end
  local _, rows = self.conn:execute([[INSERT INTO positions (account_id, symbol, quantity)
    VALUES (:a::uuid, :s, :q::numeric)
    ON CONFLICT (account_id, symbol) DO UPDATE SET quantity = positions.quantity + EXCLUDED.quantity
    RETURNING *]], { a = to_account, s = symbol, q = db.decimal(amount) })
  return rows[1]
end

-- ---------------------------------------------------------------- jobs

local Jobs = setmetatable({}, { __index = Model })
Jobs.__index = Jobs

local TRANSITIONS = {
  running = { from = { "pending" }, stamp = "started_at" },
  completed = { from = { "running" }, stamp = "completed_at" },
  failed = { from = { "pending", "running" }, stamp = "completed_at" },
}

function Jobs:for_user(clerk_user_id, status)
  if status then
    return self.conn:query("SELECT * FROM jobs WHERE clerk_user_id = :u AND status = :s ORDER BY created_at DESC",
      { u = clerk_user_id, s = status })
  end
  return self.conn:query("SELECT * FROM jobs WHERE clerk_user_id = :u ORDER BY created_at DESC",
    { u = clerk_user_id })
end

-- transition(id, status, fields): pending -> running -> completed, or -> failed;
-- fields may carry payloads and error_message.  Atomic: the status is checked
-- in the UPDATE itself, so two agents cannot both start one job.
function Jobs:transition(id, status, fields)
  fields = fields or {}
  local rule = TRANSITIONS[status]
  if not rule then
    error(errors.new { name = "ValidationError", message = ("job status %q is not a state a job can move to")
      :format(tostring(status)) }, 0)
  end
  local update = { status = status }
  for k, v in pairs(fields) do update[k] = v end
  local clean = check("JobUpdate", update, "job")
  local sets, params = { "status = :status", rule.stamp .. " = now()" }, { id = id, status = status }
  for _, c in ipairs(COLUMNS.jobs) do
    if c ~= "status" and clean[c] ~= nil then
      sets[#sets + 1] = ("%s = :%s%s"):format(c, c, cast("jobs", c))
      params[c] = param("jobs", c, clean[c])
    end
  end
  local froms = {}
  for i, f in ipairs(rule.from) do
    froms[i] = ":from" .. i
    params["from" .. i] = f
  end
  local _, rows = self.conn:execute(("UPDATE jobs SET %s WHERE id = :id::uuid AND status IN (%s) RETURNING *")
    :format(table.concat(sets, ", "), table.concat(froms, ", ")), params)
  if rows[1] then return rows[1] end
  local current = self:find(id)
  if not current then error(not_found("job", id), 0) end
  error(errors.new { name = "ValidationError",
    message = ("job %s is %s; it cannot move to %s"):format(id, current.status, status) }, 0)
end

-- update(id, fields): payloads and error_message (JobUpdate); the status moves
-- only through transition/start/complete/fail.
function Jobs:update(id, fields)
  if type(fields) == "table" and fields.status ~= nil then
    error(validation_error("JobUpdate", { { field = "status", message = "use start, complete or fail to change it" } },
      "job"), 0)
  end
  local clean = check("JobUpdate", fields, "job")
  local sets, params = {}, { id = id }
  for _, c in ipairs(COLUMNS.jobs) do
    if clean[c] ~= nil then
      sets[#sets + 1] = ("%s = :%s%s"):format(c, c, cast("jobs", c))
      params[c] = param("jobs", c, clean[c])
    end
  end
  local _, rows = self.conn:execute(("UPDATE jobs SET %s WHERE id = :id::uuid RETURNING *"):format(
    table.concat(sets, ", ")), params)
  if not rows[1] then error(not_found("job", id), 0) end
  return rows[1]
end

function Jobs:start(id) return self:transition(id, "running") end
function Jobs:complete(id, payloads) return self:transition(id, "completed", payloads) end
function Jobs:fail(id, message) return self:transition(id, "failed", { error_message = message }) end

-- ---------------------------------------------------------------- bind

function models.bind(conn)
  return {
    instruments = model(conn, "instruments", Instruments),
    users = model(conn, "users", Users),
    accounts = model(conn, "accounts", Accounts),
    positions = model(conn, "positions", Positions),
    jobs = model(conn, "jobs", Jobs),
  }
end

return models
