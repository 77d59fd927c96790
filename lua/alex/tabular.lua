-- Rows as text, the way psql shows them: an aligned table with a header and
-- a row count, or, for rows too wide for the screen, one column per line
-- ("expanded" display).  NULL is shown as NULL; values wider than a column
-- may be are cut with an ellipsis; control characters are made visible, so
-- one value is always one line.
--
--   local tabular = require "alex.tabular"
--   io.write(tabular.format(rows, { width = 100, expanded = "auto" }))
--
-- rows: an array of tables keyed by column name, with rows.columns naming the
-- columns in order (what alex.db returns); without .columns, the keys of the
-- first row, sorted.  opts: width (the screen's columns, default 80),
-- expanded (true, false or "auto": expanded when the table would not fit),
-- max_value (characters of one value before it is cut, default 60 in a
-- table; in expanded display, what fits the screen), null ("NULL").
local json = require "alex.json"

local tabular = {}

local ELLIPSIS = "\u{2026}"

-- Display width: one column a code point (no wide-character tables here; a
-- CJK value only misaligns its own row).
local function width(s)
  return utf8.len(s) or #s
end

-- The first n code points of s.
local function head(s, n)
  if width(s) <= n then return s end
  local cut = utf8.offset(s, n + 1)
  return cut and s:sub(1, cut - 1) or s
end

local function cut(s, n)
  if n and width(s) > n then return head(s, math.max(n - 1, 0)) .. ELLIPSIS end
  return s
end

local function visible(s)
  return (s:gsub("[%c\127]", function(c)
    if c == "\n" then return "\\n" elseif c == "\t" then return "\\t" elseif c == "\r" then return "\\r" end
    return ("\\x%02x"):format(c:byte())
  end))
end

-- A value as one line of text, and whether it is right-aligned (numbers).
function tabular.cell(v, null)
  local t = type(v)
  if v == nil or v == json.null then return null or "NULL", false end
  if t == "number" then
    if math.type(v) == "integer" then return ("%d"):format(v), true end
    return json.encode(v), true
  end
  if t == "boolean" then return tostring(v), false end
  if t == "table" then
    local ok, text = pcall(json.encode, v)
    return visible(ok and text or tostring(v)), false
  end
  local s = visible(tostring(v))
  -- exact decimals arrive as strings: align them as numbers
  return s, s:find("^%-?%d+%.?%d*$") ~= nil
end

local function column_names(rows)
  if rows.columns then return rows.columns end
  local names, seen = {}, {}
  for _, row in ipairs(rows) do
    for k in pairs(row) do
      if type(k) == "string" and not seen[k] then
        seen[k] = true
        names[#names + 1] = k
      end
    end
  end
  table.sort(names)
  return names
end

local function count_line(n)
  return ("(%d row%s)\n"):format(n, n == 1 and "" or "s")
end

local function pad(s, w, right)
  local gap = (" "):rep(w - width(s))
  return right and (gap .. s) or (s .. gap)
end

local function aligned(rows, names, cells, numeric, max_value)
  local widths = {}
  for c, name in ipairs(names) do widths[c] = width(name) end
  for _, r in ipairs(cells) do
    for c = 1, #names do
      r[c] = cut(r[c], max_value)
      widths[c] = math.max(widths[c], width(r[c]))
    end
  end
  local out, parts, rule = {}, {}, {}
  for c, name in ipairs(names) do
    -- psql centres the header
    local w, n = widths[c], width(name)
    local left = (w - n) // 2
    parts[c] = (" "):rep(left) .. name .. (" "):rep(w - n - left)
    rule[c] = ("-"):rep(w + 2)
  end
  out[#out + 1] = (" " .. table.concat(parts, " | ")):gsub("%s+$", "") .. "\n"
  out[#out + 1] = table.concat(rule, "+") .. "\n"
  for _, r in ipairs(cells) do
    local line = {}
    for c = 1, #names do line[c] = pad(r[c], widths[c], numeric[c]) end
    out[#out + 1] = (" " .. table.concat(line, " | ")):gsub("%s+$", "") .. "\n"
  end
  out[#out + 1] = count_line(#rows)
  return table.concat(out)
end

local function expanded(rows, names, cells, screen)
  local label = 0
  for _, name in ipairs(names) do label = math.max(label, width(name)) end
  local room = math.max(screen - label - 3, 10)
  local out = {}
  for i, r in ipairs(cells) do
    local title = ("-[ RECORD %d ]"):format(i)
    out[#out + 1] = title .. ("-"):rep(math.max(label + 3 - width(title), 0)) .. "+" ..
      ("-"):rep(math.min(room, 20)) .. "\n"
    for c, name in ipairs(names) do
      out[#out + 1] = (pad(name, label) .. " | " .. cut(r[c], room)):gsub("%s+$", "") .. "\n"
    end
  end
  if #rows == 0 then out[#out + 1] = "(0 rows)\n" end
  return table.concat(out)
end

-- The width a table of these cells takes, each value cut at max_value.
local function table_width(names, cells, max_value)
  local total = 0
  for c, name in ipairs(names) do
    local w = width(name)
    for _, r in ipairs(cells) do w = math.max(w, math.min(width(r[c]), max_value)) end
    total = total + w + 3
  end
  return total - 1
end

function tabular.format(rows, opts)
  opts = opts or {}
  local screen = opts.width or 80
  local max_value = opts.max_value or 60
  local names = column_names(rows)
  local cells, numeric = {}, {}
  for c = 1, #names do numeric[c] = true end
  for i, row in ipairs(rows) do
    local r = {}
    for c, name in ipairs(names) do
      local text, right = tabular.cell(row[name], opts.null)
      r[c] = text
      if row[name] ~= nil and row[name] ~= json.null and not right then numeric[c] = false end
    end
    cells[i] = r
  end
  for c = 1, #names do
    if #rows == 0 then numeric[c] = false end
  end
  local mode = opts.expanded
  if mode == "auto" then mode = #rows > 0 and table_width(names, cells, max_value) > screen end
  if mode then return expanded(rows, names, cells, screen) end
  return aligned(rows, names, cells, numeric, max_value)
end

-- Whether v looks like rows alex.db returned (or an array of records).
function tabular.is_rows(v)
  if type(v) ~= "table" or getmetatable(v) ~= nil and not v.columns then return false end
  if v.columns then return true end
  if #v == 0 then return false end
  for _, row in ipairs(v) do
    if type(row) ~= "table" or #row > 0 then return false end
  end
  return true
end

return tabular
