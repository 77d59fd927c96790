/*
 * alex.sigv4: AWS Signature Version 4 for Lua, over the plain-C core
 * (sigv4_core.c; the local Data API service links the same core to verify).
 *
 *   local sigv4 = require "alex.sigv4"
 *   local s = sigv4.sign{
 *     method = "POST", url = "https://rds-data.us-east-1.amazonaws.com/Execute",
 *     headers = { ["Content-Type"] = "application/json" },   -- or { {name, value}, ... }
 *     body = "...", access_key = "...", secret_key = "...", session_token = nil,
 *     region = "us-east-1", service = "rds-data",
 *     amz_date = "20150830T123600Z",     -- optional: the current UTC time
 *     signed_headers = nil,              -- optional, see below
 *   }
 *
 * Result fields: authorization, signature, signed_headers, canonical_request,
 * string_to_sign, amz_date (the signing time used), and `headers`.  (The
 * payload hash is the last line of canonical_request, the credential scope the
 * third line of string_to_sign.)
 *
 * `headers` (the decision asked for): a plain ARRAY of {name, value} pairs, every
 * header to send, in order: the input headers (array order kept; a map's
 * entries sorted by name so the output is deterministic), then whichever of
 * Host, X-Amz-Date, X-Amz-Security-Token the signer added, then Authorization.
 * It is not indexed by name: repeated names are legal, so a name index would be
 * ambiguous.  Values are sent as given (not the trimmed canonical form).
 *
 * Input rules:
 * - headers: a map {name = value} or an array of {name, value} pairs (order and
 *   repeated names kept).  Values are strings or numbers.  A value may contain
 *   obsolete line folding (CR/LF followed by a space or tab); any other CR or LF
 *   is refused, since it would let a header inject another.
 * - Host / X-Amz-Date / X-Amz-Security-Token already among the headers (any
 *   case) are used as given, never added twice.  Otherwise Host comes from the
 *   URL (lower-cased, port only if not the scheme's default); X-Amz-Date from
 *   amz_date; X-Amz-Security-Token from session_token ("" means no token).
 * - amz_date and an X-Amz-Date header must agree when both are given; with only
 *   the header, its value is the signing time.
 * - An Authorization header among the inputs is dropped (replaced), as botocore
 *   does.  User-Agent, Expect, X-Amzn-Trace-Id, Transfer-Encoding and the other
 *   hop-by-hop headers are sent but not signed.
 * - signed_headers: a ';'-separated lower-case list ("content-type;host;...").
 *   When given, exactly those headers are signed (every one must be present):
 *   the verification mode, fed from sigv4.parse_authorization().
 *
 * Errors: bad input to sign() (missing or ill-typed field, malformed amz_date,
 * unparsable URL, bad header) is a programming error at this low level, so it
 * raises a Lua error whose message names the field ("sigv4.sign: url: ...").
 * Messages never contain the secret key, the token or header values.
 * parse_authorization(s) returns nil, message for malformed input (that is
 * data from the network, not a bug).
 *
 * Also: sha256_hex(s), hmac_sha256(key, msg) -> raw 32 bytes,
 * parse_authorization(s) -> {access_key, date, region, service,
 * signed_headers, signature} | nil, err; signature_equal(a, b) -> boolean
 * (constant time).
 *
 * State: every function shares one userdata upvalue that owns the core's
 * sigv4_ctx (hash context, scratch buffers, cached signing key) and a header
 * array; nothing is global.  No Lua code runs while sign() works (raw table
 * access only), so the shared scratch state cannot be re-entered.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"
#include "sigv4_core.h"

#define CTX_MT "alex.sigv4.ctx"

typedef struct {
  sigv4_header h;
  int pair; /* index of its {name, value} pair in the scratch array */
} entry;

typedef struct {
  sigv4_ctx *core;
  sigv4_header *hdrs;
  entry *ents;
  size_t cap;
  time_t date_time; /* the second date_text was formatted for (0: none yet) */
  char date_text[17];
} lctx;

static int ctx_gc(lua_State *L) {
  lctx *c = luaL_checkudata(L, 1, CTX_MT);
  sigv4_ctx_free(c->core);
  free(c->hdrs);
  free(c->ents);
  c->core = NULL;
  c->hdrs = NULL;
  c->ents = NULL;
  c->cap = 0;
  return 0;
}

static lctx *getctx(lua_State *L) {
  lctx *c = lua_touserdata(L, lua_upvalueindex(1));
  if (!c || !c->core) luaL_error(L, "sigv4: state already closed");
  return c;
}

static void reserve(lua_State *L, lctx *c, size_t n) {
  if (n <= c->cap) return;
  size_t cap = c->cap ? c->cap : 16;
  while (cap < n) cap *= 2;
  sigv4_header *h = realloc(c->hdrs, cap * sizeof *h);
  if (!h) luaL_error(L, "sigv4.sign: out of memory");
  c->hdrs = h;
  entry *e = realloc(c->ents, cap * sizeof *e);
  if (!e) luaL_error(L, "sigv4.sign: out of memory");
  c->ents = e;
  c->cap = cap;
}

/* ---- sign() helpers ------------------------------------------------------ */

#define ARG 1 /* the options table */

/* Upvalues shared by every function: 1 is the state userdata, the rest are
 * the strings sign() uses as keys and header names, created once so that
 * each call pushes them without hashing or interning. */
enum {
  K_METHOD = 2, K_URL, K_BODY, K_ACCESS_KEY, K_SECRET_KEY, K_SESSION_TOKEN, K_REGION, K_SERVICE,
  K_AMZ_DATE, K_SIGNED_HEADERS, K_HEADERS, K_AUTHORIZATION, K_SIGNATURE, K_CANONICAL_REQUEST,
  K_STRING_TO_SIGN, H_HOST, H_X_AMZ_DATE, H_X_AMZ_SECURITY_TOKEN, H_AUTHORIZATION, K_LAST
};
static const char *const KEYS[] = {
  "method", "url", "body", "access_key", "secret_key", "session_token", "region", "service",
  "amz_date", "signed_headers", "headers", "authorization", "signature", "canonical_request",
  "string_to_sign", "Host", "X-Amz-Date", "X-Amz-Security-Token", "Authorization"};
#define KEY(k) lua_upvalueindex(k)

/* Pushes options[name] (raw).  Returns the string or NULL when absent (nil);
 * raises when present with another type, or absent but required. */
static const char *opt_string(lua_State *L, int key, int required, size_t *len) {
  const char *name = KEYS[key - K_METHOD];
  lua_pushvalue(L, KEY(key));
  int t = lua_rawget(L, ARG);
  if (t == LUA_TSTRING) return lua_tolstring(L, -1, len);
  if (t != LUA_TNIL)
    luaL_error(L, "sigv4.sign: %s: must be a string (got %s)", name, lua_typename(L, t));
  if (required) luaL_error(L, "sigv4.sign: %s: missing", name);
  if (len) *len = 0;
  return NULL;
}

/* Case-insensitive comparison with a lower-case literal. */
#define IEQ(a, al, lit) ((al) == sizeof(lit) - 1 && ieq_n((a), (lit), sizeof(lit) - 1))
static int ieq_n(const char *a, const char *lit, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)a[i];
    if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
    if (c != (unsigned char)lit[i]) return 0;
  }
  return 1;
}

/* Refuses NUL, and CR/LF except as obsolete folding (CRLF or LF + SP/HT). */
static int value_ok(const char *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)v[i];
    if (ch > '\r') continue;
    if (ch == '\0') return 0;
    if (ch == '\r') {
      if (i + 1 < n && v[i + 1] == '\n') i++;
      else return 0;
    }
    if (v[i] == '\n' && !(i + 1 < n && (v[i + 1] == ' ' || v[i + 1] == '\t'))) return 0;
  }
  return 1;
}

/* RFC 7230 tchar as a 256-bit map: ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~ */
static const unsigned long long TCHAR[4] = {0x03ff6cfa00000000ULL, 0x57ffffffc7fffffeULL, 0, 0};

static int name_ok(const char *n, size_t l) {
  if (l == 0) return 0;
  for (size_t i = 0; i < l; i++) {
    unsigned char ch = (unsigned char)n[i];
    if (!((TCHAR[ch >> 6] >> (ch & 63)) & 1)) return 0;
  }
  return 1;
}

/* Raises "sigv4.sign: headers[i]: <what>" (or "headers: <what>" when i == 0). */
static int header_error(lua_State *L, lua_Integer i, const char *what) {
  if (i > 0) return luaL_error(L, "sigv4.sign: headers[%I]: %s", i, what);
  return luaL_error(L, "sigv4.sign: headers: %s", what);
}

/* Checks the name at stack slot ni and the value at vi (a number is converted
 * in its slot), wraps them in a new {name, value} pair appended to the pair
 * array at `pairs`, and records the strings (anchored by the pair) in entry n.
 * i is the position in an array of headers, 0 for a map. */
static void take_header(lua_State *L, lctx *c, int pairs, size_t n, int ni, int vi, lua_Integer i) {
  if (lua_type(L, ni) != LUA_TSTRING) header_error(L, i, "header name must be a string");
  int vt = lua_type(L, vi);
  if (vt == LUA_TNUMBER) {
    lua_pushvalue(L, vi);
    lua_tostring(L, -1);
    lua_replace(L, vi);
  } else if (vt != LUA_TSTRING) {
    header_error(L, i, "header value must be a string or number");
  }
  reserve(L, c, n + 1);
  entry *e = &c->ents[n];
  e->h.name = lua_tolstring(L, ni, &e->h.name_len);
  e->h.value = lua_tolstring(L, vi, &e->h.value_len);
  e->pair = (int)n + 1;
  if (!name_ok(e->h.name, e->h.name_len)) header_error(L, i, "invalid header name");
  if (!value_ok(e->h.value, e->h.value_len)) header_error(L, i, "header value has a bare line break");
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, ni);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, vi);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, pairs, (lua_Integer)n + 1);
}

/* Appends a new pair {name, the value at slot vi} as entry n. */
static void add_pair(lua_State *L, lctx *c, int pairs, size_t n, int name_key, int vi) {
  reserve(L, c, n + 1);
  entry *e = &c->ents[n];
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, KEY(name_key));
  e->h.name = lua_tolstring(L, -1, &e->h.name_len);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, vi);
  e->h.value = lua_tolstring(L, -1, &e->h.value_len);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, pairs, (lua_Integer)n + 1);
  e->pair = (int)n + 1;
}

static int entry_cmp(const void *x, const void *y) {
  const entry *a = x, *b = y;
  size_t n = a->h.name_len < b->h.name_len ? a->h.name_len : b->h.name_len;
  int r = memcmp(a->h.name, b->h.name, n);
  if (r) return r;
  return a->h.name_len < b->h.name_len ? -1 : a->h.name_len > b->h.name_len;
}

/* Reads options.headers into the pair array at `pairs` and c->ents; returns
 * the count.  Leaves the stack as it found it. */
static size_t read_headers(lua_State *L, lctx *c, int pairs) {
  lua_pushvalue(L, KEY(K_HEADERS));
  int t = lua_rawget(L, ARG);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (t != LUA_TTABLE) luaL_error(L, "sigv4.sign: headers: must be a table (got %s)", lua_typename(L, t));
  int ht = lua_gettop(L);
  size_t n = 0;
  lua_Integer alen = (lua_Integer)lua_rawlen(L, ht);
  if (alen > 0) {
    for (lua_Integer i = 1; i <= alen; i++) {
      if (lua_rawgeti(L, ht, i) != LUA_TTABLE) header_error(L, i, "must be a {name, value} pair");
      lua_rawgeti(L, ht + 1, 1);
      lua_rawgeti(L, ht + 1, 2);
      take_header(L, c, pairs, n++, ht + 2, ht + 3, i);
      lua_settop(L, ht);
    }
    /* an array must not also carry map entries, which would be ignored */
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, ht)) {
      count++;
      lua_pop(L, 1);
    }
    if (count != alen) luaL_error(L, "sigv4.sign: headers: mixes array and map entries");
  } else {
    lua_pushnil(L);
    while (lua_next(L, ht)) {
      /* key at ht+1 (a string is not converted by tolstring), value at ht+2 */
      take_header(L, c, pairs, n++, ht + 1, ht + 2, 0);
      lua_settop(L, ht + 1);
    }
    /* deterministic order: by name, then rebuild the pair array */
    if (n > 1) {
      qsort(c->ents, n, sizeof *c->ents, entry_cmp);
      lua_createtable(L, (int)n + 4, 0);
      for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, pairs, c->ents[i].pair);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        c->ents[i].pair = (int)i + 1;
      }
      lua_replace(L, pairs);
    }
  }
  lua_settop(L, ht - 1);
  return n;
}

static int l_sign(lua_State *L) {
  lctx *c = getctx(L);
  luaL_checktype(L, ARG, LUA_TTABLE);
  lua_settop(L, ARG);
  char err[160];

  size_t url_len, body_len, token_len, date_len;
  const char *method = opt_string(L, K_METHOD, 1, NULL);
  const char *url = opt_string(L, K_URL, 1, &url_len);
  const char *body = opt_string(L, K_BODY, 0, &body_len);
  const char *access_key = opt_string(L, K_ACCESS_KEY, 1, NULL);
  const char *secret_key = opt_string(L, K_SECRET_KEY, 1, NULL);
  const char *token = opt_string(L, K_SESSION_TOKEN, 0, &token_len);
  int token_slot = lua_gettop(L);
  const char *region = opt_string(L, K_REGION, 1, NULL);
  const char *service = opt_string(L, K_SERVICE, 1, NULL);
  const char *amz_date = opt_string(L, K_AMZ_DATE, 0, &date_len);
  const char *list = opt_string(L, K_SIGNED_HEADERS, 0, NULL);
  if (token && token_len == 0) token = NULL;
  if (!*method) luaL_error(L, "sigv4.sign: method: empty");
  if (!*access_key) luaL_error(L, "sigv4.sign: access_key: empty");
  if (!*secret_key) luaL_error(L, "sigv4.sign: secret_key: empty");
  if (token && !value_ok(token, token_len))
    luaL_error(L, "sigv4.sign: session_token: contains a line break");
  if (amz_date && (date_len != 16 || sigv4_parse_amz_date(amz_date) < 0))
    luaL_error(L, "sigv4.sign: amz_date: malformed (want YYYYMMDDTHHMMSSZ)");

  sigv4_url u;
  if (sigv4_parse_url(url, url_len, &u, err, sizeof err) != 0)
    luaL_error(L, "sigv4.sign: %s", err);

  lua_createtable(L, 8, 0); /* the pair array */
  int pairs = lua_gettop(L);
  size_t n_in = read_headers(L, c, pairs), n = 0;

  /* Drop an input Authorization; find Host, X-Amz-Date, X-Amz-Security-Token.
   * Compacting the pair array keeps c->ents[k].pair == k + 1. */
  int has_host = 0, has_token = 0;
  const char *hdr_date = NULL;
  size_t hdr_date_len = 0;
  for (size_t i = 0; i < n_in; i++) {
    entry *e = &c->ents[i];
    const char *nm = e->h.name;
    size_t nl = e->h.name_len;
    if (IEQ(nm, nl, "authorization")) continue;
    if (IEQ(nm, nl, "host")) {
      has_host = 1;
    } else if (IEQ(nm, nl, "x-amz-security-token")) {
      has_token = 1;
    } else if (!hdr_date && IEQ(nm, nl, "x-amz-date")) {
      hdr_date = e->h.value;
      hdr_date_len = e->h.value_len;
    }
    if (n != i) {
      lua_rawgeti(L, pairs, e->pair);
      lua_rawseti(L, pairs, (lua_Integer)n + 1);
      c->ents[n] = *e;
      c->ents[n].pair = (int)n + 1;
    }
    n++;
  }
  for (size_t i = n; i < n_in; i++) {
    lua_pushnil(L);
    lua_rawseti(L, pairs, (lua_Integer)i + 1);
  }

  char datebuf[17];
  if (hdr_date) {
    /* the header is used as given; its trimmed value is the signing time */
    while (hdr_date_len && (*hdr_date == ' ' || *hdr_date == '\t')) hdr_date++, hdr_date_len--;
    while (hdr_date_len && (hdr_date[hdr_date_len - 1] == ' ' || hdr_date[hdr_date_len - 1] == '\t'))
      hdr_date_len--;
    if (hdr_date_len != 16) luaL_error(L, "sigv4.sign: headers: X-Amz-Date is malformed");
    memcpy(datebuf, hdr_date, 16);
    datebuf[16] = '\0';
    if (sigv4_parse_amz_date(datebuf) < 0)
      luaL_error(L, "sigv4.sign: headers: X-Amz-Date is malformed");
    if (amz_date && memcmp(amz_date, datebuf, 16) != 0)
      luaL_error(L, "sigv4.sign: amz_date: differs from the X-Amz-Date header");
  } else if (amz_date) {
    memcpy(datebuf, amz_date, 17);
  } else {
    time_t now = time(NULL);
    if (now != c->date_time || !c->date_time) {
      sigv4_format_amz_date((long long)now, c->date_text);
      c->date_time = now;
    }
    memcpy(datebuf, c->date_text, 17);
  }

  if (!has_host) {
    char host[300];
    size_t hl = sigv4_host_header(&u, host, sizeof host);
    if (!hl) luaL_error(L, "sigv4.sign: url: host too long");
    lua_pushlstring(L, host, hl);
    add_pair(L, c, pairs, n++, H_HOST, lua_gettop(L));
    lua_pop(L, 1);
  }
  int date_slot = 0;
  if (!hdr_date) {
    lua_pushlstring(L, datebuf, 16);
    date_slot = lua_gettop(L);
    add_pair(L, c, pairs, n++, H_X_AMZ_DATE, date_slot);
  }
  if (token && !has_token) add_pair(L, c, pairs, n++, H_X_AMZ_SECURITY_TOKEN, token_slot);

  for (size_t i = 0; i < n; i++) c->hdrs[i] = c->ents[i].h;
  sigv4_request req = {
      .method = method,
      .path = u.path,
      .path_len = u.path_len,
      .query = u.query,
      .query_len = u.query_len,
      .headers = c->hdrs,
      .n_headers = n,
      .body = body,
      .body_len = body_len,
      .access_key = access_key,
      .secret_key = secret_key,
      .session_token = token,
      .region = region,
      .service = service,
      .amz_date = datebuf,
      .signed_header_list = list,
  };
  sigv4_view v;
  if (sigv4_sign_ctx(c->core, &req, &v, err, sizeof err) != 0)
    luaL_error(L, "sigv4.sign: %s", err);

  lua_pushlstring(L, v.authorization, v.authorization_len);
  int auth_slot = lua_gettop(L);
  add_pair(L, c, pairs, n, H_AUTHORIZATION, auth_slot);

  lua_createtable(L, 0, 7);
  int res = lua_gettop(L);
  lua_pushvalue(L, KEY(K_AUTHORIZATION));
  lua_pushvalue(L, auth_slot);
  lua_rawset(L, res);
  lua_pushvalue(L, KEY(K_SIGNATURE));
  lua_pushlstring(L, v.signature, 64);
  lua_rawset(L, res);
  lua_pushvalue(L, KEY(K_SIGNED_HEADERS));
  lua_pushlstring(L, v.signed_headers, v.signed_headers_len);
  lua_rawset(L, res);
  lua_pushvalue(L, KEY(K_CANONICAL_REQUEST));
  lua_pushlstring(L, v.canonical_request, v.canonical_request_len);
  lua_rawset(L, res);
  lua_pushvalue(L, KEY(K_STRING_TO_SIGN));
  lua_pushlstring(L, v.string_to_sign, v.string_to_sign_len);
  lua_rawset(L, res);
  lua_pushvalue(L, KEY(K_AMZ_DATE));
  if (date_slot)
    lua_pushvalue(L, date_slot);
  else
    lua_pushlstring(L, datebuf, 16);
  lua_rawset(L, res);
  lua_pushvalue(L, KEY(K_HEADERS));
  lua_pushvalue(L, pairs);
  lua_rawset(L, res);
  return 1;
}

/* ---- the other functions -------------------------------------------------- */

static int l_sha256_hex(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char out[65];
  sigv4_sha256_hex(s, n, out);
  lua_pushlstring(L, out, 64);
  return 1;
}

static int l_hmac_sha256(lua_State *L) {
  size_t kl, ml;
  const char *k = luaL_checklstring(L, 1, &kl);
  const char *m = luaL_checklstring(L, 2, &ml);
  unsigned char md[32];
  if (sigv4_hmac_sha256(k, kl, m, ml, md) != 0) return luaL_error(L, "sigv4.hmac_sha256: failed");
  lua_pushlstring(L, (const char *)md, 32);
  return 1;
}

static int l_parse_authorization(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (strlen(s) != n) {
    lua_pushnil(L);
    lua_pushliteral(L, "Authorization: contains a NUL byte");
    return 2;
  }
  sigv4_authorization a;
  char err[128];
  if (sigv4_parse_authorization(s, &a, err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_createtable(L, 0, 6);
  lua_pushstring(L, a.access_key);
  lua_setfield(L, -2, "access_key");
  lua_pushstring(L, a.date);
  lua_setfield(L, -2, "date");
  lua_pushstring(L, a.region);
  lua_setfield(L, -2, "region");
  lua_pushstring(L, a.service);
  lua_setfield(L, -2, "service");
  lua_pushstring(L, a.signed_headers);
  lua_setfield(L, -2, "signed_headers");
  lua_pushstring(L, a.signature);
  lua_setfield(L, -2, "signature");
  sigv4_authorization_free(&a);
  return 1;
}

static int l_signature_equal(lua_State *L) {
  size_t al, bl;
  const char *a = luaL_checklstring(L, 1, &al);
  const char *b = luaL_checklstring(L, 2, &bl);
  lua_pushboolean(L, al == strlen(a) && bl == strlen(b) && sigv4_signature_equal(a, b));
  return 1;
}

int luaopen_alex_sigv4(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"sign", l_sign},
      {"sha256_hex", l_sha256_hex},
      {"hmac_sha256", l_hmac_sha256},
      {"parse_authorization", l_parse_authorization},
      {"signature_equal", l_signature_equal},
      {NULL, NULL},
  };
  lua_newtable(L);
  lctx *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  if (luaL_newmetatable(L, CTX_MT)) {
    lua_pushcfunction(L, ctx_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "private");
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
  c->core = sigv4_ctx_new();
  if (!c->core) return luaL_error(L, "sigv4: out of memory");
  for (int k = K_METHOD; k < K_LAST; k++) lua_pushstring(L, KEYS[k - K_METHOD]);
  luaL_setfuncs(L, fns, K_LAST - 1);
  return 1;
}
