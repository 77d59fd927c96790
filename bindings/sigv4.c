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
 *
 * Signers: credentials, region and service bound once, for the hot path.
 *
 *   local signer = sigv4.signer{ access_key = "...", secret_key = "...",
 *     session_token = nil,            -- optional; "" means none
 *     region = "us-east-1", service = "rds-data",
 *     content_sha256 = false,         -- optional: add and sign X-Amz-Content-Sha256
 *   }
 *   local added = signer:sign{ method = "POST", url = "https://...",
 *     headers = { ["Content-Type"] = "application/json" },  -- or { {name, value}, ... }
 *     body = "...", amz_date = nil }  -- optional, as for sign()
 *   signer:sign(request, into)        -- sets the same entries in the table into, returns it
 *   local added, details = signer:explain(request)
 *   signer:stats()                    -- { signatures =, key_derivations = }
 *
 * sign() returns the headers to send besides the request's own, as a map
 * {Name = value}: Host (the value signed, so that the HTTP client sends what
 * was signed), X-Amz-Date, X-Amz-Security-Token when the signer has a token,
 * X-Amz-Content-Sha256 when asked for, and Authorization.  Host, X-Amz-Date,
 * X-Amz-Security-Token and X-Amz-Content-Sha256 already among the request's
 * headers (any case) are used as given and not added; Authorization there is
 * an error.  Signatures, canonical requests and the other rules are those of
 * sigv4.sign, byte for byte.  `into` (a table other than request.headers)
 * lets a caller keep one table of the headers it sends, e.g. Content-Type and
 * User-Agent, and have the signer overwrite its entries there on every call:
 * no table is made then.  A map of headers must not name one header twice in
 * different cases (its order is not the order they are sent in); an array of
 * pairs may.  explain() returns, besides, { authorization, signature,
 * signed_headers, canonical_request, string_to_sign, amz_date }: the
 * diagnostics cost strings, so sign() does not make them.
 *
 * A signer keeps its credentials in C memory (wiped when it is collected): no
 * field, user value or tostring shows them (tostring gives
 * "alex.sigv4.signer (us-east-1/rds-data)").  It owns its core context, whose
 * cached signing key is thus the key of the date it last signed for: derived
 * again only when the date changes.  It also keeps the last URL's parse and
 * Host value, and the X-Amz-Date string of the current second.  Errors name
 * the field ("signer:sign: url: missing"); they never contain secrets.
 * Credentials that expire need a new signer.
 */
#include <lauxlib.h>
#include <lua.h>
#include <openssl/crypto.h>
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
  K_STRING_TO_SIGN, H_HOST, H_X_AMZ_DATE, H_X_AMZ_SECURITY_TOKEN, H_AUTHORIZATION,
  H_X_AMZ_CONTENT_SHA256, K_LAST
};
static const char *const KEYS[] = {
  "method", "url", "body", "access_key", "secret_key", "session_token", "region", "service",
  "amz_date", "signed_headers", "headers", "authorization", "signature", "canonical_request",
  "string_to_sign", "Host", "X-Amz-Date", "X-Amz-Security-Token", "Authorization",
  "X-Amz-Content-Sha256"};
#define KEY(k) lua_upvalueindex(k)
/* The last upvalue: the signers' metatable, to recognize a signer cheaply. */
#define UP_SIGNER_MT K_LAST
#define N_UPVALUES K_LAST

static const char SIGN[] = "sigv4.sign";
static const char SIGNER_SIGN[] = "signer:sign";

/* Pushes the table at `arg`'s field (raw).  Returns the string or NULL when
 * absent (nil); raises "<who>: <field>: ..." when present with another type,
 * or absent but required. */
static const char *opt_string(lua_State *L, const char *who, int arg, int key, int required,
                              size_t *len) {
  const char *name = KEYS[key - K_METHOD];
  lua_pushvalue(L, KEY(key));
  int t = lua_rawget(L, arg);
  if (t == LUA_TSTRING) return lua_tolstring(L, -1, len);
  if (t != LUA_TNIL) luaL_error(L, "%s: %s: must be a string (got %s)", who, name, lua_typename(L, t));
  if (required) luaL_error(L, "%s: %s: missing", who, name);
  if (len) *len = 0;
  return NULL;
}

/* t[key] = the value at `slot`, and t[key] = the len bytes at p (raw sets;
 * key is one of the upvalue strings above). */
static void set_slot(lua_State *L, int t, int key, int slot) {
  lua_pushvalue(L, KEY(key));
  lua_pushvalue(L, slot);
  lua_rawset(L, t);
}

static void set_lstring(lua_State *L, int t, int key, const char *p, size_t len) {
  lua_pushvalue(L, KEY(key));
  lua_pushlstring(L, p, len);
  lua_rawset(L, t);
}

/* Pushes a new table explaining a signature, as sign() returns it and
 * signer:explain() its second value: authorization (the string at auth_slot),
 * signature, signed_headers, canonical_request, string_to_sign and amz_date;
 * room for `more` fields.  Returns its index. */
static int push_explanation(lua_State *L, const sigv4_view *v, int auth_slot, const char *datebuf, int more) {
  lua_createtable(L, 0, 6 + more);
  int t = lua_gettop(L);
  set_slot(L, t, K_AUTHORIZATION, auth_slot);
  set_lstring(L, t, K_SIGNATURE, v->signature, 64);
  set_lstring(L, t, K_SIGNED_HEADERS, v->signed_headers, v->signed_headers_len);
  set_lstring(L, t, K_CANONICAL_REQUEST, v->canonical_request, v->canonical_request_len);
  set_lstring(L, t, K_STRING_TO_SIGN, v->string_to_sign, v->string_to_sign_len);
  set_lstring(L, t, K_AMZ_DATE, datebuf, 16);
  return t;
}

/* Whether two header names of length n are the same but for (ASCII) case. */
static int same_name(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
    if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
    if (x != y) return 0;
  }
  return 1;
}

/* Case-insensitive comparison with a literal. */
#define IEQ(a, al, lit) ((al) == sizeof(lit) - 1 && same_name((a), (lit), sizeof(lit) - 1))

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

/* Raises "<who>: headers[i]: <what>" (or "headers: <what>" when i == 0). */
static int header_error(lua_State *L, const char *who, lua_Integer i, const char *what) {
  if (i > 0) return luaL_error(L, "%s: headers[%I]: %s", who, i, what);
  return luaL_error(L, "%s: headers: %s", who, what);
}

/* Where read_headers puts what it reads: sign() wraps every header in a new
 * {name, value} pair of the pair array at `pairs` (which anchors the strings);
 * a signer (pairs == 0) keeps only the entries, pointing into the caller's
 * table, and anchors the strings it makes of numbers in a table it creates at
 * the stack slot `anchor` (nil until needed). */
typedef struct {
  const char *who;
  int pairs, anchor;
} reading;

/* Checks the name at stack slot ni and the value at vi (a number is converted
 * in its slot), and records them in entry n (see reading).  i is the position
 * in an array of headers, 0 for a map. */
static void take_header(lua_State *L, lctx *c, const reading *rd, size_t n, int ni, int vi, lua_Integer i) {
  if (lua_type(L, ni) != LUA_TSTRING) header_error(L, rd->who, i, "header name must be a string");
  int vt = lua_type(L, vi);
  if (vt == LUA_TNUMBER) {
    lua_pushvalue(L, vi);
    lua_tostring(L, -1);
    lua_replace(L, vi);
    if (!rd->pairs) {
      if (lua_isnil(L, rd->anchor)) {
        lua_createtable(L, 4, 0);
        lua_replace(L, rd->anchor);
      }
      lua_pushvalue(L, vi);
      lua_rawseti(L, rd->anchor, (lua_Integer)n + 1);
    }
  } else if (vt != LUA_TSTRING) {
    header_error(L, rd->who, i, "header value must be a string or number");
  }
  reserve(L, c, n + 1);
  entry *e = &c->ents[n];
  e->h.name = lua_tolstring(L, ni, &e->h.name_len);
  e->h.value = lua_tolstring(L, vi, &e->h.value_len);
  e->pair = (int)n + 1;
  if (!name_ok(e->h.name, e->h.name_len)) header_error(L, rd->who, i, "invalid header name");
  if (!value_ok(e->h.value, e->h.value_len)) header_error(L, rd->who, i, "header value has a bare line break");
  if (!rd->pairs) return;
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, ni);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, vi);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, rd->pairs, (lua_Integer)n + 1);
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

/* Reads the headers field of the table at `arg` into c->ents (see reading);
 * returns the count, and whether they came as a map in *is_map.  Leaves the
 * stack as it found it, but for the anchor table. */
static size_t read_headers(lua_State *L, lctx *c, const reading *rd, int arg, int *is_map) {
  int pairs = rd->pairs;
  *is_map = 0;
  lua_pushvalue(L, KEY(K_HEADERS));
  int t = lua_rawget(L, arg);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (t != LUA_TTABLE) luaL_error(L, "%s: headers: must be a table (got %s)", rd->who, lua_typename(L, t));
  int ht = lua_gettop(L);
  size_t n = 0;
  lua_Integer alen = (lua_Integer)lua_rawlen(L, ht);
  if (alen > 0) {
    for (lua_Integer i = 1; i <= alen; i++) {
      if (lua_rawgeti(L, ht, i) != LUA_TTABLE) header_error(L, rd->who, i, "must be a {name, value} pair");
      lua_rawgeti(L, ht + 1, 1);
      lua_rawgeti(L, ht + 1, 2);
      take_header(L, c, rd, n++, ht + 2, ht + 3, i);
      lua_settop(L, ht);
    }
    /* an array must not also carry map entries, which would be ignored */
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, ht)) {
      count++;
      lua_pop(L, 1);
    }
    if (count != alen) luaL_error(L, "%s: headers: mixes array and map entries", rd->who);
  } else {
    *is_map = 1;
    lua_pushnil(L);
    while (lua_next(L, ht)) {
      /* key at ht+1 (a string is not converted by tolstring), value at ht+2 */
      take_header(L, c, rd, n++, ht + 1, ht + 2, 0);
      lua_settop(L, ht + 1);
    }
    /* deterministic order: by name, then rebuild the pair array */
    if (n > 1 && pairs) {
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

/* The signing time, into datebuf (16 characters and a NUL): the X-Amz-Date
 * header's trimmed value when there is one (amz_date must then agree), else
 * amz_date (already checked), else the current second, formatted once per
 * second in c.  Returns 1 when it came from the clock. */
static int signing_date(lua_State *L, lctx *c, const char *who, const char *hdr_date, size_t hdr_date_len,
                        const char *amz_date, char datebuf[17]) {
  if (hdr_date) {
    while (hdr_date_len && (*hdr_date == ' ' || *hdr_date == '\t')) hdr_date++, hdr_date_len--;
    while (hdr_date_len && (hdr_date[hdr_date_len - 1] == ' ' || hdr_date[hdr_date_len - 1] == '\t'))
      hdr_date_len--;
    if (hdr_date_len != 16) luaL_error(L, "%s: headers: X-Amz-Date is malformed", who);
    memcpy(datebuf, hdr_date, 16);
    datebuf[16] = '\0';
    if (sigv4_parse_amz_date(datebuf) < 0) luaL_error(L, "%s: headers: X-Amz-Date is malformed", who);
    if (amz_date && memcmp(amz_date, datebuf, 16) != 0)
      luaL_error(L, "%s: amz_date: differs from the X-Amz-Date header", who);
    return 0;
  }
  if (amz_date) {
    memcpy(datebuf, amz_date, 17);
    return 0;
  }
  time_t now = time(NULL);
  if (now != c->date_time || !c->date_time) {
    sigv4_format_amz_date((long long)now, c->date_text);
    c->date_time = now;
  }
  memcpy(datebuf, c->date_text, 17);
  return 1;
}

/* What the headers given hold of those the signing adds: Host,
 * X-Amz-Security-Token, X-Amz-Content-Sha256, and the first X-Amz-Date's
 * value. */
typedef struct {
  int has_host, has_token, has_sha;
  const char *date;
  size_t date_len;
} given_headers;

/* Notes header h in g; returns 1, noting nothing, when it is an Authorization
 * (sign() drops it, a signer refuses it). */
static int note_header(given_headers *g, const sigv4_header *h) {
  const char *nm = h->name;
  size_t nl = h->name_len;
  if (IEQ(nm, nl, "authorization")) return 1;
  if (IEQ(nm, nl, "host")) {
    g->has_host = 1;
  } else if (IEQ(nm, nl, "x-amz-security-token")) {
    g->has_token = 1;
  } else if (IEQ(nm, nl, "x-amz-content-sha256")) {
    g->has_sha = 1;
  } else if (!g->date && IEQ(nm, nl, "x-amz-date")) {
    g->date = h->value;
    g->date_len = h->value_len;
  }
  return 0;
}

static int l_sign(lua_State *L) {
  lctx *c = getctx(L);
  luaL_checktype(L, ARG, LUA_TTABLE);
  lua_settop(L, ARG);
  char err[160];

  size_t url_len, body_len, token_len, date_len;
  const char *method = opt_string(L, SIGN, ARG, K_METHOD, 1, NULL);
  const char *url = opt_string(L, SIGN, ARG, K_URL, 1, &url_len);
  const char *body = opt_string(L, SIGN, ARG, K_BODY, 0, &body_len);
  const char *access_key = opt_string(L, SIGN, ARG, K_ACCESS_KEY, 1, NULL);
  const char *secret_key = opt_string(L, SIGN, ARG, K_SECRET_KEY, 1, NULL);
  const char *token = opt_string(L, SIGN, ARG, K_SESSION_TOKEN, 0, &token_len);
  int token_slot = lua_gettop(L);
  const char *region = opt_string(L, SIGN, ARG, K_REGION, 1, NULL);
  const char *service = opt_string(L, SIGN, ARG, K_SERVICE, 1, NULL);
  const char *amz_date = opt_string(L, SIGN, ARG, K_AMZ_DATE, 0, &date_len);
  const char *list = opt_string(L, SIGN, ARG, K_SIGNED_HEADERS, 0, NULL);
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
  reading rd = {SIGN, pairs, 0};
  int is_map;
  size_t n_in = read_headers(L, c, &rd, ARG, &is_map), n = 0;

  /* Drop an input Authorization; find Host, X-Amz-Date, X-Amz-Security-Token.
   * Compacting the pair array keeps c->ents[k].pair == k + 1. */
  given_headers g = {0};
  for (size_t i = 0; i < n_in; i++) {
    entry *e = &c->ents[i];
    if (note_header(&g, &e->h)) continue;
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

  /* the header is used as given; its trimmed value is the signing time */
  char datebuf[17];
  signing_date(L, c, SIGN, g.date, g.date_len, amz_date, datebuf);

  if (!g.has_host) {
    char host[300];
    size_t hl = sigv4_host_header(&u, host, sizeof host);
    if (!hl) luaL_error(L, "sigv4.sign: url: host too long");
    lua_pushlstring(L, host, hl);
    add_pair(L, c, pairs, n++, H_HOST, lua_gettop(L));
    lua_pop(L, 1);
  }
  int date_slot = 0;
  if (!g.date) {
    lua_pushlstring(L, datebuf, 16);
    date_slot = lua_gettop(L);
    add_pair(L, c, pairs, n++, H_X_AMZ_DATE, date_slot);
  }
  if (token && !g.has_token) add_pair(L, c, pairs, n++, H_X_AMZ_SECURITY_TOKEN, token_slot);

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

  int res = push_explanation(L, &v, auth_slot, datebuf, 1);
  set_slot(L, res, K_HEADERS, pairs);
  return 1;
}

/* ---- signers --------------------------------------------------------------- */

#define SIGNER_MT "alex.sigv4.signer"

/* A signer: credentials, region and service bound once, kept in C memory (one
 * block, wiped when the signer goes) so that no Lua value of the object holds
 * them; its own core context, whose one-entry key cache then holds the key of
 * the current date; and the last URL's parse and Host value. */
typedef struct {
  lctx x;                /* core context, scratch arrays, clock date */
  char *mem;             /* access_key \0 secret_key \0 session_token \0 region \0 service \0 */
  size_t mem_len;
  const char *access_key, *secret_key, *token, *region, *service;
  size_t token_len;
  int content_sha256;    /* add and sign X-Amz-Content-Sha256 */
  int url_ok;            /* u parses the string in user value UV_URL */
  sigv4_url u;
  unsigned long signatures;
} signer;

/* User values: the last URL (its parse points into it), its Host value, and
 * the X-Amz-Date value of the second in x.date_text. */
enum { UV_URL = 1, UV_HOST, UV_DATE, N_UV = UV_DATE };

static int signer_gc(lua_State *L) {
  signer *s = luaL_checkudata(L, 1, SIGNER_MT);
  sigv4_ctx_free(s->x.core);
  free(s->x.hdrs);
  free(s->x.ents);
  if (s->mem) OPENSSL_cleanse(s->mem, s->mem_len);
  free(s->mem);
  memset(s, 0, sizeof *s);
  return 0;
}

static int signer_tostring(lua_State *L) {
  signer *s = luaL_checkudata(L, 1, SIGNER_MT);
  if (!s->mem) {
    lua_pushliteral(L, "alex.sigv4.signer (closed)");
    return 1;
  }
  lua_pushfstring(L, "alex.sigv4.signer (%s/%s)", s->region, s->service);
  return 1;
}

/* The signer at index 1, recognized by the metatable kept as an upvalue. */
static signer *checksigner(lua_State *L, const char *who) {
  signer *s = lua_touserdata(L, 1);
  if (!s || !lua_getmetatable(L, 1) || !lua_rawequal(L, -1, lua_upvalueindex(UP_SIGNER_MT)))
    luaL_error(L, "%s: not called on a signer (use a colon: signer:method(...))", who);
  lua_pop(L, 1);
  if (!s->mem) luaL_error(L, "%s: the signer is closed", who);
  return s;
}

static int l_signer(lua_State *L) {
  static const char *const known[] = {"access_key", "secret_key", "session_token", "region", "service",
                                      "content_sha256", NULL};
  if (lua_type(L, 1) != LUA_TTABLE)
    return luaL_error(L, "sigv4.signer: expects a table {access_key=, secret_key=, session_token=, region=, "
                         "service=} (got %s)", luaL_typename(L, 1));
  lua_settop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int found = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      for (int i = 0; known[i] && !found; i++) found = strcmp(k, known[i]) == 0;
      if (!found) return luaL_error(L, "sigv4.signer: unknown option '%s'", k);
    } else {
      return luaL_error(L, "sigv4.signer: options must be named fields (got a %s key)", luaL_typename(L, -2));
    }
    lua_pop(L, 1);
  }
  /* the credential scope parts are checked here too, so that the error names the field */
  static const char WHO[] = "sigv4.signer";
  size_t al, sl, tl, rl, vl;
  const char *access_key = opt_string(L, WHO, 1, K_ACCESS_KEY, 1, &al);
  const char *secret_key = opt_string(L, WHO, 1, K_SECRET_KEY, 1, &sl);
  const char *token = opt_string(L, WHO, 1, K_SESSION_TOKEN, 0, &tl);
  const char *region = opt_string(L, WHO, 1, K_REGION, 1, &rl);
  const char *service = opt_string(L, WHO, 1, K_SERVICE, 1, &vl);
  int t = lua_getfield(L, 1, "content_sha256");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    return luaL_error(L, "sigv4.signer: content_sha256: must be a boolean (got %s)", lua_typename(L, t));
  int content_sha256 = lua_toboolean(L, -1);
  if (!sigv4_scope_part_ok(access_key, al) || strlen(access_key) != al)
    return luaL_error(L, "sigv4.signer: access_key: empty, or has blanks, control characters or / , ; =");
  if (sl == 0 || strlen(secret_key) != sl)
    return luaL_error(L, "sigv4.signer: secret_key: empty or contains a NUL byte");
  if (token && (strlen(token) != tl || memchr(token, '\r', tl) || memchr(token, '\n', tl)))
    return luaL_error(L, "sigv4.signer: session_token: contains a line break or NUL byte");
  if (!sigv4_scope_part_ok(region, rl) || strlen(region) != rl)
    return luaL_error(L, "sigv4.signer: region: empty, or has blanks, control characters or / , ; =");
  if (!sigv4_scope_part_ok(service, vl) || strlen(service) != vl)
    return luaL_error(L, "sigv4.signer: service: empty, or has blanks, control characters or / , ; =");
  /* S3 signs its paths unnormalized and encoded once: not what the core does */
  if (vl == 2 && (service[0] == 's' || service[0] == 'S') && service[1] == '3')
    return luaL_error(L, "sigv4.signer: service: s3 needs S3's own canonical path rules, which alex.sigv4 "
                         "does not implement");
  if (tl == 0) token = NULL;

  signer *s = lua_newuserdatauv(L, sizeof *s, N_UV);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, SIGNER_MT);
  size_t total = al + sl + (token ? tl : 0) + rl + vl + 5;
  s->mem = malloc(total);
  if (!s->mem) return luaL_error(L, "sigv4.signer: out of memory");
  s->mem_len = total;
  char *p = s->mem;
#define KEEP(field, src, n)  \
  do {                       \
    memcpy(p, (src), (n));   \
    p[(n)] = '\0';           \
    s->field = p;            \
    p += (n) + 1;            \
  } while (0)
  KEEP(access_key, access_key, al);
  KEEP(secret_key, secret_key, sl);
  KEEP(token, token ? token : "", token ? tl : 0);
  KEEP(region, region, rl);
  KEEP(service, service, vl);
#undef KEEP
  if (!token) s->token = NULL;
  s->token_len = token ? tl : 0;
  s->content_sha256 = content_sha256;
  s->x.core = sigv4_ctx_new();
  if (!s->x.core) return luaL_error(L, "sigv4.signer: out of memory");
  return 1;
}

/* Adds entry n {name (the upvalue string), value} to the signer's list. */
static void signer_add(lua_State *L, lctx *c, size_t n, int name_key, const char *v, size_t vl) {
  reserve(L, c, n + 1);
  entry *e = &c->ents[n];
  e->h.name = lua_tolstring(L, KEY(name_key), &e->h.name_len);
  e->h.value = v;
  e->h.value_len = vl;
}

/* signer:sign(request [, into]) -> headers; signer:explain(request) -> headers, details.
 * Stack: 1 signer, 2 request, 3 into (nil: a new table), 4 anchor. */
static int signer_run(lua_State *L, const char *who, int explain) {
  signer *s = checksigner(L, who);
  lctx *c = &s->x;
  const int req_arg = 2, into_arg = 3;
  luaL_checkstack(L, 30, who);
  if (lua_type(L, req_arg) != LUA_TTABLE)
    return luaL_error(L, "%s: expects a request table {method=, url=, headers=, body=, amz_date=} (got %s)",
                      who, luaL_typename(L, req_arg));
  if (explain) {
    lua_settop(L, 2);
    lua_pushnil(L);
  } else {
    lua_settop(L, 3);
    if (!lua_isnil(L, into_arg) && !lua_istable(L, into_arg))
      return luaL_error(L, "%s: into: must be a table (got %s)", who, luaL_typename(L, into_arg));
  }
  lua_pushnil(L); /* 4: anchor for header values made of numbers */
  const int anchor = 4;
  char err[160];

  size_t url_len, body_len, date_len;
  const char *method = opt_string(L, who, req_arg, K_METHOD, 1, NULL);
  const char *url = opt_string(L, who, req_arg, K_URL, 1, &url_len);
  int url_slot = lua_gettop(L);
  const char *body = opt_string(L, who, req_arg, K_BODY, 0, &body_len);
  const char *amz_date = opt_string(L, who, req_arg, K_AMZ_DATE, 0, &date_len);
  int amz_date_slot = lua_gettop(L);
  if (!*method) luaL_error(L, "%s: method: empty", who);
  if (amz_date && (date_len != 16 || sigv4_parse_amz_date(amz_date) < 0))
    luaL_error(L, "%s: amz_date: malformed (want YYYYMMDDTHHMMSSZ)", who);

  /* the URL: parsed again only when it is another string than last time */
  lua_getiuservalue(L, 1, UV_URL);
  if (!s->url_ok || !lua_rawequal(L, -1, url_slot)) {
    s->url_ok = 0;
    if (sigv4_parse_url(url, url_len, &s->u, err, sizeof err) != 0) luaL_error(L, "%s: %s", who, err);
    char host[300];
    size_t hl = sigv4_host_header(&s->u, host, sizeof host);
    if (!hl) luaL_error(L, "%s: url: host too long", who);
    lua_pushvalue(L, url_slot);
    lua_setiuservalue(L, 1, UV_URL);
    lua_pushlstring(L, host, hl);
    lua_setiuservalue(L, 1, UV_HOST);
    s->url_ok = 1;
  }
  lua_pop(L, 1);

  reading rd = {who, 0, anchor};
  int is_map;
  size_t n = read_headers(L, c, &rd, req_arg, &is_map);
  if (!lua_isnil(L, into_arg)) {
    lua_pushvalue(L, KEY(K_HEADERS));
    lua_rawget(L, req_arg);
    if (lua_rawequal(L, -1, into_arg))
      luaL_error(L, "%s: into: is the request's headers table; give another one (the signer must not read back "
                    "what it wrote)", who);
    lua_pop(L, 1);
  }
  given_headers g = {0};
  for (size_t i = 0; i < n; i++) {
    const char *nm = c->ents[i].h.name;
    size_t nl = c->ents[i].h.name_len;
    if (note_header(&g, &c->ents[i].h)) luaL_error(L, "%s: headers: has Authorization, which the signer makes", who);
    /* A map's order is not the order the HTTP client sends it in, and the
     * values of one name are signed joined in sending order. */
    if (is_map) {
      for (size_t k = 0; k < i; k++)
        if (c->ents[k].h.name_len == nl && same_name(c->ents[k].h.name, nm, nl))
          luaL_error(L, "%s: headers: two names for one header (%s); give repeated headers as an array of "
                        "{name, value} pairs", who, nm);
    }
  }

  char datebuf[17];
  signing_date(L, c, who, g.date, g.date_len, amz_date, datebuf);
  int date_slot = 0;
  if (!g.date) {
    if (amz_date) {
      date_slot = amz_date_slot;
    } else {
      /* one string per second, kept in the signer */
      lua_getiuservalue(L, 1, UV_DATE);
      size_t dl;
      const char *d = lua_tolstring(L, -1, &dl);
      if (!d || dl != 16 || memcmp(d, datebuf, 16) != 0) {
        lua_pop(L, 1);
        lua_pushlstring(L, datebuf, 16);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, UV_DATE);
      }
      date_slot = lua_gettop(L);
    }
  }

  int host_slot = 0;
  if (!g.has_host) {
    lua_getiuservalue(L, 1, UV_HOST);
    host_slot = lua_gettop(L);
    size_t hl;
    const char *h = lua_tolstring(L, host_slot, &hl);
    signer_add(L, c, n++, H_HOST, h, hl);
  }
  if (date_slot) {
    size_t dl;
    const char *d = lua_tolstring(L, date_slot, &dl);
    signer_add(L, c, n++, H_X_AMZ_DATE, d, dl);
  }
  int add_token = s->token && !g.has_token;
  if (add_token) signer_add(L, c, n++, H_X_AMZ_SECURITY_TOKEN, s->token, s->token_len);
  char payload_hash[65];
  int add_sha = s->content_sha256 && !g.has_sha;
  if (add_sha) {
    sigv4_sha256_hex(body, body_len, payload_hash);
    signer_add(L, c, n++, H_X_AMZ_CONTENT_SHA256, payload_hash, 64);
  }

  for (size_t i = 0; i < n; i++) c->hdrs[i] = c->ents[i].h;
  sigv4_request req = {
      .method = method,
      .path = s->u.path,
      .path_len = s->u.path_len,
      .query = s->u.query,
      .query_len = s->u.query_len,
      .headers = c->hdrs,
      .n_headers = n,
      .body = body,
      .body_len = body_len,
      .access_key = s->access_key,
      .secret_key = s->secret_key,
      .session_token = s->token,
      .region = s->region,
      .service = s->service,
      .amz_date = datebuf,
      .signed_header_list = NULL,
  };
  sigv4_view v;
  if (sigv4_sign_ctx(c->core, &req, &v, err, sizeof err) != 0) luaL_error(L, "%s: %s", who, err);
  s->signatures++;

  int res = into_arg;
  if (lua_isnil(L, into_arg)) {
    lua_createtable(L, 0, 4);
    res = lua_gettop(L);
  }
  if (host_slot) set_slot(L, res, H_HOST, host_slot);
  if (date_slot) set_slot(L, res, H_X_AMZ_DATE, date_slot);
  if (add_token) set_lstring(L, res, H_X_AMZ_SECURITY_TOKEN, s->token, s->token_len);
  if (add_sha) set_lstring(L, res, H_X_AMZ_CONTENT_SHA256, payload_hash, 64);
  lua_pushvalue(L, KEY(H_AUTHORIZATION));
  lua_pushlstring(L, v.authorization, v.authorization_len);
  if (!explain) {
    lua_rawset(L, res);
    lua_pushvalue(L, res);
    return 1;
  }
  int auth_slot = lua_gettop(L);
  set_slot(L, res, H_AUTHORIZATION, auth_slot);
  int d = push_explanation(L, &v, auth_slot, datebuf, 0);
  lua_pushvalue(L, res);
  lua_pushvalue(L, d);
  return 2;
}

static int l_signer_sign(lua_State *L) { return signer_run(L, SIGNER_SIGN, 0); }
static int l_signer_explain(lua_State *L) { return signer_run(L, "signer:explain", 1); }

/* signer:stats() -> {signatures =, key_derivations =} */
static int l_signer_stats(lua_State *L) {
  signer *s = checksigner(L, "signer:stats");
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)s->signatures);
  lua_setfield(L, -2, "signatures");
  lua_pushinteger(L, (lua_Integer)sigv4_ctx_key_derivations(s->x.core));
  lua_setfield(L, -2, "key_derivations");
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
  const struct {
    const char *name, *value;
  } fields[] = {
      {"access_key", a.access_key}, {"date", a.date}, {"region", a.region},
      {"service", a.service}, {"signed_headers", a.signed_headers}, {"signature", a.signature},
  };
  lua_createtable(L, 0, 6);
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    lua_pushstring(L, fields[i].value);
    lua_setfield(L, -2, fields[i].name);
  }
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

/* Pushes the upvalues every function shares: the state userdata at index ud,
 * the key strings, and the signers' metatable at index mt. */
static void push_upvalues(lua_State *L, int ud, int mt) {
  lua_pushvalue(L, ud);
  for (int k = K_METHOD; k < K_LAST; k++) lua_pushstring(L, KEYS[k - K_METHOD]);
  lua_pushvalue(L, mt);
}

int luaopen_alex_sigv4(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"sign", l_sign},
      {"signer", l_signer},
      {"sha256_hex", l_sha256_hex},
      {"hmac_sha256", l_hmac_sha256},
      {"parse_authorization", l_parse_authorization},
      {"signature_equal", l_signature_equal},
      {NULL, NULL},
  };
  static const luaL_Reg methods[] = {
      {"sign", l_signer_sign},
      {"explain", l_signer_explain},
      {"stats", l_signer_stats},
      {NULL, NULL},
  };
  lua_newtable(L);
  int mod = lua_gettop(L);
  lctx *c = lua_newuserdatauv(L, sizeof *c, 0);
  int ud = lua_gettop(L);
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

  /* the signers' metatable: methods, no way to the fields, a name */
  luaL_newmetatable(L, SIGNER_MT);
  int mt = lua_gettop(L);
  lua_pushcfunction(L, signer_gc);
  lua_setfield(L, mt, "__gc");
  lua_pushcfunction(L, signer_tostring);
  lua_setfield(L, mt, "__tostring");
  lua_pushliteral(L, "private");
  lua_setfield(L, mt, "__metatable");
  lua_createtable(L, 0, 3);
  push_upvalues(L, ud, mt);
  luaL_setfuncs(L, methods, N_UPVALUES);
  lua_setfield(L, mt, "__index");

  lua_pushvalue(L, mod);
  push_upvalues(L, ud, mt);
  luaL_setfuncs(L, fns, N_UPVALUES);
  lua_settop(L, mod);
  return 1;
}
