-- SQL text helpers for migrations and logs.
--
-- sql.split(text) cuts a script into statements the way psql does, so each one
-- can be sent alone (the Data API runs one statement per call):
--   * ';' ends a statement except inside '...' (with '' escapes), E'...' (with
--     backslash escapes), "identifiers" (with "" escapes), -- comments, nested
--     /* /* */ */ comments, dollar quotes ($$...$$, $fn$...$fn$), parentheses,
--     and the BEGIN ... END body of CREATE [OR REPLACE] FUNCTION|PROCEDURE
--     (SQL-standard BEGIN ATOMIC bodies), as psql does;
--   * $1, $2 are positional parameters, not dollar quotes; nor is a '$' that
--     continues an identifier (foo$bar$).
-- It returns an array of { sql = "...", line = n }: sql is the statement
-- without its ';', starting at its first token and ending at its last one
-- (comments before or after it are dropped, comments inside are kept), and
-- line is the 1-based line of that first token.  Chunks holding only
-- comments or blanks are dropped.  Malformed text (an unterminated quote,
-- identifier, comment or dollar quote) gives nil, "line N: ...", N being the
-- line where the unterminated thing opens.
--
-- One pass over the text with string.find: linear time, no string
-- concatenation.
local sql = {}

local find, sub, byte, char, match, lower, gmatch = string.find, string.sub, string.byte, string.char,
  string.match, string.lower, string.gmatch
local type, error = type, error

local B_DASH, B_SLASH, B_STAR, B_SQUOTE, B_DQUOTE = byte("-"), byte("/"), byte("*"), byte("'"), byte('"')
local B_DOLLAR, B_SEMI, B_LPAREN, B_RPAREN = byte("$"), byte(";"), byte("("), byte(")")
local B_BACKSLASH, B_E, B_e = byte("\\"), byte("E"), byte("e")

-- Bytes that can appear inside an identifier (PostgreSQL: letters, digits,
-- '_', '$' and every byte >= 128).
local function ident_byte(b)
  return b ~= nil and (b >= 128 or b == 95 or b == 36 or (b >= 48 and b <= 57)
    or (b >= 65 and b <= 90) or (b >= 97 and b <= 122))
end

local function space_byte(b)
  return b == 32 or (b >= 9 and b <= 13)
end

-- The position of the quote closing the quoted token that opens at i (its
-- quote doubled stands for itself; with `escapes`, a backslash escapes the
-- next byte), or nil when the text ends first.
local function closing_quote(text, i, escapes)
  local q = byte(text, i)
  local pattern = escapes and "[\\" .. char(q) .. "]" or char(q)
  local p = i + 1
  while true do
    local j = find(text, pattern, p, not escapes)
    if not j then return nil end
    if (escapes and byte(text, j) == B_BACKSLASH) or byte(text, j + 1) == q then
      p = j + 2
    else
      return j
    end
  end
end

-- Start of every token that changes the lexer state ('-' and '/' only when
-- doubled/followed by '*', '$' only when it opens a dollar quote).
local SPECIAL = "[%-/'\"$;()]"
local WORD = "[%a_\128-\255][%w_$\128-\255]*"

function sql.split(text)
  if type(text) ~= "string" then error("sql.split: text must be a string", 2) end
  local n = #text
  local out = {}

  -- Line numbers, counted lazily: positions asked for only ever increase.
  local line_no, next_nl = 1, find(text, "\n", 1, true)
  local function line_at(p)
    while next_nl and next_nl < p do
      line_no = line_no + 1
      next_nl = find(text, "\n", next_nl + 1, true)
    end
    return line_no
  end
  local function fail(p, what)
    return nil, ("line %d: %s"):format(line_at(p), what)
  end

  -- State of the statement being read.
  local stmt_start, stmt_line, stmt_end -- first and last byte of its tokens
  local paren = 0
  -- CREATE FUNCTION/PROCEDURE detection: the statement's first words, then
  -- BEGIN/CASE ... END depth once it is known to be one.
  local words -- how many of its first words were seen
  local routine -- nil: undecided, false: not a routine, true: track BEGIN/END
  local begin_depth = 0

  local function on_word(w)
    if routine == nil then
      w = lower(w)
      words = words + 1
      if words == 1 then
        if w ~= "create" then routine = false end
      elseif words == 2 then
        if w == "function" or w == "procedure" then routine = true
        elseif w ~= "or" then routine = false end
      elseif words == 3 then
        if w ~= "replace" then routine = false end
      else -- CREATE OR REPLACE <word>
        routine = w == "function" or w == "procedure"
      end
    elseif routine and paren == 0 then
      w = lower(w)
      if w == "begin" then begin_depth = begin_depth + 1
      elseif w == "case" then
        if begin_depth > 0 then begin_depth = begin_depth + 1 end
      elseif w == "end" then
        if begin_depth > 0 then begin_depth = begin_depth - 1 end
      end
    end
  end

  local function reset()
    stmt_start, stmt_line, stmt_end = nil, nil, nil
    paren, begin_depth = 0, 0
    words, routine = 0, nil
  end
  reset()

  -- A token (quote, comment-free code byte) at p..e belongs to the statement.
  local function token(p, e)
    if not stmt_start then stmt_start, stmt_line = p, line_at(p) end
    stmt_end = e
  end

  -- Plain code text a..b (no quotes, comments or statement ends inside).
  local function code(a, b)
    if a > b then return end
    local q = find(text, "%S", a)
    if not q or q > b then return end
    local e = b
    while space_byte(byte(text, e)) do e = e - 1 end
    token(q, e)
    if routine ~= false then
      for w in gmatch(sub(text, q, e), WORD) do on_word(w) end
    end
  end

  local pos, seg = 1, 1 -- search position; start of the pending code segment
  while true do
    local i = find(text, SPECIAL, pos)
    if not i then
      code(seg, n)
      break
    end
    local c = byte(text, i)
    if c == B_DASH then
      if byte(text, i + 1) == B_DASH then
        code(seg, i - 1)
        local nl = find(text, "\n", i + 2, true)
        pos = nl and nl + 1 or n + 1
        seg = pos
      else
        pos = i + 1
      end
    elseif c == B_SLASH then
      if byte(text, i + 1) == B_STAR then
        code(seg, i - 1)
        local depth, p = 1, i + 2
        while depth > 0 do
          local j = find(text, "[/*]", p)
          if not j then return fail(i, "unterminated /* comment") end
          local b1, b2 = byte(text, j, j + 1)
          if b1 == B_SLASH and b2 == B_STAR then depth, p = depth + 1, j + 2
          elseif b1 == B_STAR and b2 == B_SLASH then depth, p = depth - 1, j + 2
          else p = j + 1 end
        end
        pos, seg = p, p
      else
        pos = i + 1
      end
    elseif c == B_SQUOTE then
      code(seg, i - 1)
      local prev = i > 1 and byte(text, i - 1)
      local escapes = (prev == B_E or prev == B_e) and not ident_byte(i > 2 and byte(text, i - 2) or nil)
      local j = closing_quote(text, i, escapes)
      if not j then return fail(i, escapes and "unterminated E'...' string" or "unterminated quoted string") end
      token(i, j)
      pos, seg = j + 1, j + 1
    elseif c == B_DQUOTE then
      code(seg, i - 1)
      local j = closing_quote(text, i, false)
      if not j then return fail(i, 'unterminated quoted identifier') end
      token(i, j)
      pos, seg = j + 1, j + 1
    elseif c == B_DOLLAR then
      local opener
      if not ident_byte(i > 1 and byte(text, i - 1) or nil) then
        opener = match(text, "^%$[%a_\128-\255][%w_\128-\255]*%$", i) or match(text, "^%$%$", i)
      end
      if opener then
        code(seg, i - 1)
        local b = i + #opener
        local _, e = find(text, opener, b, true)
        if not e then return fail(i, "unterminated dollar-quoted string " .. opener) end
        token(i, e)
        pos, seg = e + 1, e + 1
      else
        pos = i + 1 -- $1 parameter, or a '$' inside an identifier
      end
    elseif c == B_SEMI then
      code(seg, i - 1)
      if paren == 0 and begin_depth == 0 then
        if stmt_start then
          out[#out + 1] = { sql = sub(text, stmt_start, stmt_end), line = stmt_line }
        end
        reset()
      else
        token(i, i)
      end
      pos, seg = i + 1, i + 1
    else -- parentheses
      code(seg, i - 1)
      token(i, i)
      if c == B_LPAREN then paren = paren + 1
      elseif c == B_RPAREN and paren > 0 then paren = paren - 1 end
      pos, seg = i + 1, i + 1
    end
  end
  if stmt_start then
    out[#out + 1] = { sql = sub(text, stmt_start, stmt_end), line = stmt_line }
  end
  return out
end

-- The first line of a statement that holds something other than blanks or a
-- -- comment, trimmed, for logs: at most `max` characters (default 100,
-- counted in bytes), followed by " ..." when the statement goes on.
function sql.first_line(text, max)
  if type(text) ~= "string" then error("sql.first_line: text must be a string", 2) end
  max = max or 100
  local n = #text
  local p = 1
  while p <= n do
    local nl = find(text, "\n", p, true)
    local e = nl and nl - 1 or n
    local a = find(text, "%S", p)
    if a and a <= e and sub(text, a, a + 1) ~= "--" then
      while space_byte(byte(text, e)) do e = e - 1 end
      local more = nl ~= nil and find(text, "%S", nl) ~= nil
      if e - a + 1 > max then
        e = a + max - 1
        -- do not cut a UTF-8 sequence in two
        while e > a and (byte(text, e + 1) or 0) >= 0x80 and byte(text, e + 1) < 0xC0 do e = e - 1 end
        more = true
      end
      local line = sub(text, a, e)
      return more and line .. " ..." or line
    end
    if not nl then break end
    p = nl + 1
  end
  return ""
end

-- sha256 of the text as 64 lower-case hex digits (migration checksums).  The
-- text is hashed byte for byte, as stored.
function sql.checksum(text)
  if type(text) ~= "string" then error("sql.checksum: text must be a string", 2) end
  local sigv4 = require "alex.sigv4"
  if type(sigv4.sha256_hex) ~= "function" then
    error("sql.checksum: alex.sigv4.sha256_hex is not available in this build")
  end
  return sigv4.sha256_hex(text)
end

return sql
