-- Standard base64 (RFC 4648, with padding) for blobValue fields.
local base64 = {}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local ENC, DEC = {}, {}
for i = 1, 64 do
  local c = ALPHABET:sub(i, i)
  ENC[i - 1] = c
  DEC[c:byte()] = i - 1
end

function base64.encode(s)
  local out = {}
  local n = #s
  for i = 1, n - 2, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a << 16 | b << 8 | c
    out[#out + 1] = ENC[v >> 18] .. ENC[v >> 12 & 63] .. ENC[v >> 6 & 63] .. ENC[v & 63]
  end
  local rest = n % 3
  if rest == 1 then
    local v = s:byte(n) << 16
    out[#out + 1] = ENC[v >> 18] .. ENC[v >> 12 & 63] .. "=="
  elseif rest == 2 then
    local a, b = s:byte(n - 1, n)
    local v = a << 16 | b << 8
    out[#out + 1] = ENC[v >> 18] .. ENC[v >> 12 & 63] .. ENC[v >> 6 & 63] .. "="
  end
  return table.concat(out)
end

-- Returns the bytes, or nil and a message for text that is not base64.
function base64.decode(s)
  s = s:gsub("[\r\n]", "")
  if #s % 4 ~= 0 then return nil, "base64 text length is not a multiple of 4" end
  local out = {}
  for i = 1, #s, 4 do
    local c1, c2, c3, c4 = s:byte(i, i + 3)
    local a, b = DEC[c1], DEC[c2]
    local c, d = 0, 0
    if c3 ~= 61 then c = DEC[c3] end
    if c4 ~= 61 then d = DEC[c4] end
    if not (a and b and c and d) or (c3 == 61 and c4 ~= 61) or ((c3 == 61 or c4 == 61) and i + 3 < #s) then
      return nil, "invalid base64 text at byte " .. i
    end
    local v = a << 18 | b << 12 | c << 6 | d
    if c3 == 61 then
      out[#out + 1] = string.char(v >> 16)
    elseif c4 == 61 then
      out[#out + 1] = string.char(v >> 16, v >> 8 & 255)
    else
      out[#out + 1] = string.char(v >> 16, v >> 8 & 255, v & 255)
    end
  end
  return table.concat(out)
end

return base64
