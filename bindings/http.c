/*
 * alex.http: an HTTPS client for Lua on libcurl.
 *
 *   local http = require "alex.http"
 *   local client = http.new{ connect_timeout = 10, timeout = 60, ca_bundle = nil, verbose = false }
 *   local res, err, kind = client:request{ method = "POST", url = "https://...",
 *                                          headers = {...}, body = "...",
 *                                          connect_timeout = 5, timeout = 30 }
 *   client:close()
 *   http.request(opts)   -- on a default client kept in the registry
 *
 *   -- the same request in two halves, so that the caller can work while the
 *   -- server answers: send returns once the request is on its way
 *   local ok, err, kind = client:send{ ... }     -- true, or what request fails with
 *   local res, err, kind = client:receive()      -- what request returns
 * One request at a time per client: request or send while one is in flight is
 * an error (a bug in the caller), as is receive with none.
 *
 * Success: res = { status, headers (lower-case names, repeats joined with ", "),
 * body, new_connections (connections opened for this request: 0 when an open
 * one was reused), time (seconds) }.  Any HTTP status counts as success.
 * Failure: nil, message naming the host, kind; kind is one of
 *   dns          the host name did not resolve (or resolving timed out)
 *   connect      no connection: refused, unreachable, or the connect/TLS
 *                handshake phase timed out or was cut (the request was not sent)
 *   timeout      the request was sent and the answer did not come in time
 *   reset        the connection was lost after the request was sent
 *   tls          certificate verification or TLS negotiation failed
 *   interrupted  Ctrl-C (the host's interrupt flag) stopped the transfer
 *   protocol     the server's answer was not valid HTTP, or too large
 *   other        anything else
 * Whether the request was sent is known exactly: a PREREQFUNCTION marks the
 * moment libcurl is about to write it.
 *
 * Each client owns one multi handle (its connection cache) and one easy
 * handle, reused for every request, so consecutive requests to one host reuse
 * the TCP/TLS connection.  The transfer runs in our own multi loop that waits
 * at most POLL_MS at a time and checks the interrupt flag after every wait (a
 * signal also cuts the wait short), so Ctrl-C stops a request within
 * milliseconds even while a host name resolves or a server stays silent.
 *
 * All C resources of a request (header list, parsed URL, buffers) hang off the
 * client userdata and are released by the next request, close or __gc, so a
 * Lua error at any point leaks nothing.  No Lua code runs during a transfer
 * and libcurl callbacks never raise.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "curl_dl.h"
#include "host.h"

#ifndef ALEX_VERSION
#define ALEX_VERSION "dev"
#endif

#define CLIENT_MT "alex.http.client"
#define GLOBAL_KEY "alex.http.curl_global"
#define DEFAULT_CLIENT_KEY "alex.http.default_client"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_TIMEOUT_MS 60000L
#define MAX_SECONDS 604800.0                /* a week: beyond that a timeout is a bug */
#define MAX_RESPONSE_BYTES (256u << 20)     /* a larger answer is refused, not buffered */
#define KEEP_BUFFER_BYTES (256u << 10)      /* buffers above this are freed after a request */
#define POLL_MS 100

struct buf {
  char *data;
  size_t len, cap;
};

enum phase { PHASE_RESOLVING, PHASE_CONNECTING, PHASE_SENT };

struct client {
  CURLM *multi;
  CURL *easy;
  long connect_timeout_ms, timeout_ms;
  char *ca_bundle; /* NULL: libcurl's default trust only */
  int verbose;
  int closed;

  /* per-request state, owned here so that a Lua error leaks nothing */
  struct curl_slist *req_headers;
  CURLU *url;
  struct buf body, head, scratch;
  volatile sig_atomic_t *interrupt; /* NULL when the host has no flag */
  enum phase phase;
  int interrupted, oom, too_large;
  /* the request body, handed to libcurl by on_upload_read so that it cannot be
   * sent twice: see on_upload_seek */
  const char *upload;
  size_t upload_len, upload_pos;
  char host[300];                   /* "host:port", for messages */
  char errbuf[CURL_ERROR_SIZE];
  char method[33];                  /* for the verbose line */
  int pending;                      /* sent by send, not received yet */
  CURLMcode send_mc;                /* what send's first step of the transfer said */
};

/* ---------- buffers ---------- */

/* Makes room for `more` bytes after len; 0 on success, -1 when the size would
 * pass `limit` (too_large) or memory runs out. */
static int buf_reserve(struct buf *b, size_t more, size_t limit, int *too_large) {
  if (more > limit || b->len > limit - more) {
    if (too_large) *too_large = 1;
    return -1;
  }
  size_t need = b->len + more;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap = (cap > limit / 2) ? limit : cap * 2;
  char *p = realloc(b->data, cap);
  if (!p) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

static void buf_free(struct buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* Empties b, giving the memory back when it grew large. */
static void buf_reset(struct buf *b) {
  if (b->cap > KEEP_BUFFER_BYTES) buf_free(b);
  b->len = 0;
}

/* ---------- redaction for verbose output ---------- */

static int contains_ci(const char *s, size_t n, const char *word) {
  size_t w = strlen(word);
  for (size_t i = 0; i + w <= n; i++) {
    size_t j = 0;
    while (j < w && tolower((unsigned char)s[i + j]) == word[j]) j++;
    if (j == w) return 1;
  }
  return 0;
}

static int equals_ci(const char *s, size_t n, const char *word) {
  size_t w = strlen(word);
  if (n != w) return 0;
  for (size_t i = 0; i < n; i++)
    if (tolower((unsigned char)s[i]) != word[i]) return 0;
  return 1;
}

/* Header names whose values are credentials. */
static int sensitive_header(const char *name, size_t n) {
  return equals_ci(name, n, "authorization") || equals_ci(name, n, "proxy-authorization") ||
         equals_ci(name, n, "cookie") || equals_ci(name, n, "set-cookie") ||
         contains_ci(name, n, "token") || contains_ci(name, n, "secret");
}

/* Query/text parameter names whose values are credentials (presigned URLs). */
static int sensitive_param(const char *name, size_t n) {
  return contains_ci(name, n, "token") || contains_ci(name, n, "secret") ||
         contains_ci(name, n, "signature") || contains_ci(name, n, "credential") ||
         contains_ci(name, n, "password");
}

/* Writes one line of free text (a request line, a libcurl note) to stderr,
 * with the value of every `name=value` whose name looks secret replaced. */
static void print_text_redacted(const char *prefix, const char *s, size_t n) {
  fputs(prefix, stderr);
  size_t start = 0; /* where the current parameter name begins */
  size_t i = 0;
  while (i < n) {
    char ch = s[i];
    if (ch == '=' && sensitive_param(s + start, i - start)) {
      fwrite(s, 1, i + 1, stderr);
      fputs("<redacted>", stderr);
      size_t j = i + 1;
      while (j < n && s[j] != '&' && s[j] != ' ' && s[j] != '\'' && s[j] != '"' && s[j] != ';' &&
             s[j] != ',')
        j++;
      s += j;
      n -= j;
      i = 0;
      start = 0;
      continue;
    }
    if (ch == '?' || ch == '&' || ch == ' ' || ch == '\'' || ch == '"' || ch == ';' || ch == ',' ||
        ch == '/')
      start = i + 1;
    i++;
  }
  fwrite(s, 1, n, stderr);
  fputc('\n', stderr);
}

/* Writes a block of header lines; the first line of a request block is the
 * request line. */
static void print_headers_redacted(const char *prefix, const char *s, size_t n, int first_is_request) {
  size_t i = 0;
  int first = 1;
  while (i < n) {
    size_t e = i;
    while (e < n && s[e] != '\n') e++;
    size_t len = e - i;
    if (len > 0 && s[i + len - 1] == '\r') len--;
    if (len > 0) {
      const char *line = s + i;
      const char *colon = memchr(line, ':', len);
      if (first && first_is_request) {
        print_text_redacted(prefix, line, len);
      } else if (colon && line[0] != ' ' && line[0] != '\t' &&
                 sensitive_header(line, (size_t)(colon - line))) {
        fprintf(stderr, "%s%.*s: <redacted>\n", prefix, (int)(colon - line), line);
      } else if (!colon && (line[0] == ' ' || line[0] == '\t')) {
        fprintf(stderr, "%s <folded line omitted>\n", prefix);
      } else {
        print_text_redacted(prefix, line, len);
      }
      first = 0;
    }
    i = e + 1;
  }
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud) {
  (void)h;
  (void)ud;
  switch (type) {
  case CURLINFO_TEXT: {
    size_t n = size;
    while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r')) n--;
    print_text_redacted("alex.http: * ", data, n);
    break;
  }
  case CURLINFO_HEADER_OUT:
    print_headers_redacted("alex.http: > ", data, size, 1);
    break;
  case CURLINFO_HEADER_IN:
    print_headers_redacted("alex.http: < ", data, size, 0);
    break;
  default: /* bodies and TLS records are never printed */
    break;
  }
  return 0;
}

/* ---------- libcurl callbacks (never raise) ---------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct client *c = ud;
  size_t n = size * nmemb;
  if (c->body.cap == 0) { /* first chunk: reserve the announced length at once */
    curl_off_t cl = -1;
    if (curl_easy_getinfo(c->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl > 0 &&
        (curl_off_t)MAX_RESPONSE_BYTES >= cl && (size_t)cl > n) {
      if (buf_reserve(&c->body, (size_t)cl, MAX_RESPONSE_BYTES, &c->too_large) != 0) {
        c->oom = !c->too_large;
        return 0;
      }
    }
  }
  if (buf_reserve(&c->body, n, MAX_RESPONSE_BYTES, &c->too_large) != 0) {
    c->oom = !c->too_large;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  memcpy(c->body.data + c->body.len, ptr, n);
  c->body.len += n;
  return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct client *c = ud;
  size_t n = size * nmemb;
  /* A new status line starts a new response (after a 1xx): keep only the last. */
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
    c->head.len = 0;
    c->body.len = 0;
  }
  if (buf_reserve(&c->head, n, 1u << 20, &c->too_large) != 0) {
    c->oom = !c->too_large;
    return 0;
  }
  memcpy(c->head.data + c->head.len, ptr, n);
  c->head.len += n;
  return n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  struct client *c = ud;
  (void)dltotal;
  (void)dlnow;
  (void)ultotal;
  (void)ulnow;
  if (c->interrupt && *c->interrupt) {
    c->interrupted = 1;
    return 1; /* CURLE_ABORTED_BY_CALLBACK */
  }
  return 0;
}

/* Called for every new socket: the name has resolved. */
static int on_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose) {
  struct client *c = ud;
  (void)fd;
  (void)purpose;
  if (c->phase < PHASE_CONNECTING) c->phase = PHASE_CONNECTING;
  return CURL_SOCKOPT_OK;
}

/* Called once connected (TLS included) or reused, before the request is sent. */
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port) {
  struct client *c = ud;
  (void)primary_ip;
  (void)local_ip;
  (void)primary_port;
  (void)local_port;
  c->phase = PHASE_SENT;
  return CURL_PREREQFUNC_OK;
}

/* libcurl silently sends a request again on a fresh connection when a reused
 * one closes without an answer.  For a Data API call that is wrong: the server
 * may have run the statement before the connection died, and running it again
 * could apply it twice.  Refusing to rewind the body once any of it was read
 * makes libcurl fail instead (CURLE_SEND_FAIL_REWIND, kind "reset": outcome
 * unknown), and the caller decides whether a retry is safe. */
static size_t on_upload_read(char *dest, size_t size, size_t nitems, void *ud) {
  struct client *c = ud;
  size_t room = size * nitems, left = c->upload_len - c->upload_pos;
  size_t n = left < room ? left : room;
  if (n) memcpy(dest, c->upload + c->upload_pos, n);
  c->upload_pos += n;
  return n;
}

static int on_upload_seek(void *ud, curl_off_t offset, int origin) {
  struct client *c = ud;
  if (origin == SEEK_SET && offset == 0 && c->upload_pos == 0) return CURL_SEEKFUNC_OK; /* nothing sent yet */
  return CURL_SEEKFUNC_FAIL;
}

/* ---------- client userdata ---------- */

static void release_request_state(struct client *c) {
  curl_slist_free_all(c->req_headers);
  c->req_headers = NULL;
  curl_url_cleanup(c->url);
  c->url = NULL;
  buf_reset(&c->body);
  buf_reset(&c->head);
  buf_reset(&c->scratch);
}

static void client_release(struct client *c) {
  if (c->closed) return;
  c->closed = 1;
  c->pending = 0;
  if (c->multi && c->easy) curl_multi_remove_handle(c->multi, c->easy); /* harmless when not added */
  if (c->easy) curl_easy_cleanup(c->easy);
  if (c->multi) curl_multi_cleanup(c->multi);
  c->easy = NULL;
  c->multi = NULL;
  release_request_state(c);
  buf_free(&c->body);
  buf_free(&c->head);
  buf_free(&c->scratch);
  free(c->ca_bundle);
  c->ca_bundle = NULL;
}

static struct client *check_client(lua_State *L, int idx) {
  struct client *c = luaL_checkudata(L, idx, CLIENT_MT);
  if (c->closed) luaL_error(L, "alex.http: the client is closed");
  return c;
}

/* Reads field `name` of the table at t as seconds; returns milliseconds, or
 * dflt when absent.  Raises naming the field when it is not a positive number. */
static long field_ms(lua_State *L, int t, const char *name, long dflt) {
  int ty = lua_getfield(L, t, name);
  long ms = dflt;
  if (ty != LUA_TNIL) {
    if (ty != LUA_TNUMBER)
      luaL_error(L, "alex.http: field '%s' must be a number of seconds (got %s)", name, luaL_typename(L, -1));
    double s = lua_tonumber(L, -1);
    if (!(s > 0) || s > MAX_SECONDS)
      luaL_error(L, "alex.http: field '%s' must be more than 0 and at most %d seconds", name, (int)MAX_SECONDS);
    ms = (long)ceil(s * 1000.0);
  }
  lua_pop(L, 1);
  return ms;
}

/* http.new([opts]) */
static int l_new(lua_State *L) {
  int has_opts = !lua_isnoneornil(L, 1);
  if (has_opts) luaL_argexpected(L, lua_istable(L, 1), 1, "table of options");
  lua_settop(L, 1);
  long connect_ms = DEFAULT_CONNECT_TIMEOUT_MS, total_ms = DEFAULT_TIMEOUT_MS;
  int verbose = 0;
  const char *ca = NULL;
  int ca_from_env = 1;
  if (has_opts) {
    connect_ms = field_ms(L, 1, "connect_timeout", connect_ms);
    total_ms = field_ms(L, 1, "timeout", total_ms);
    int ty = lua_getfield(L, 1, "verbose");
    if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
      return luaL_error(L, "alex.http: field 'verbose' must be a boolean (got %s)", luaL_typename(L, -1));
    verbose = lua_toboolean(L, -1);
    lua_pop(L, 1);
    ty = lua_getfield(L, 1, "ca_bundle"); /* stays on the stack while ca is used */
    if (ty == LUA_TSTRING) {
      ca = lua_tostring(L, -1);
      ca_from_env = 0;
    } else if (ty == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
      ca_from_env = 0; /* false: no extra trust, whatever AWS_CA_BUNDLE says */
    } else if (ty != LUA_TNIL) {
      return luaL_error(L, "alex.http: field 'ca_bundle' must be a file name or false (got %s)",
                        luaL_typename(L, -1));
    }
  }
  if (ca_from_env) ca = getenv("AWS_CA_BUNDLE");
  if (ca && *ca == '\0') ca = NULL;
  if (ca && strlen(ca) > 4096) return luaL_error(L, "alex.http: field 'ca_bundle' is too long");

  /* user value 1: the body of a request in flight (send to receive) */
  struct client *c = lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c); /* __gc copes with any handle still NULL */
  luaL_setmetatable(L, CLIENT_MT);
  c->connect_timeout_ms = connect_ms;
  c->timeout_ms = total_ms;
  c->verbose = verbose;
  if (ca) {
    size_t n = strlen(ca) + 1;
    c->ca_bundle = malloc(n);
    if (!c->ca_bundle) return luaL_error(L, "alex.http: not enough memory");
    memcpy(c->ca_bundle, ca, n);
  }
  c->multi = curl_multi_init();
  c->easy = curl_easy_init();
  if (!c->multi || !c->easy) return luaL_error(L, "alex.http: cannot create a libcurl handle (out of memory?)");
  return 1;
}

static int l_close(lua_State *L) {
  struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
  client_release(c);
  return 0;
}

static int l_gc(lua_State *L) {
  struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
  client_release(c);
  return 0;
}

static int l_tostring(lua_State *L) {
  struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
  lua_pushfstring(L, "alex.http.client (%s%p)", c->closed ? "closed, " : "", (void *)c);
  return 1;
}

/* ---------- request ---------- */

static int is_token_char(unsigned char ch) {
  return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static void append_header_line(lua_State *L, struct client *c, const char *line) {
  struct curl_slist *l = curl_slist_append(c->req_headers, line);
  if (!l) luaL_error(L, "alex.http: not enough memory");
  c->req_headers = l;
}

/* Adds "name: value" to the request headers; raises on bad names or values. */
static void add_header(lua_State *L, struct client *c, const char *name, size_t nlen, const char *value,
                       size_t vlen, int *has_ct, int *has_expect) {
  if (nlen == 0) luaL_error(L, "alex.http: field 'headers' has an empty header name");
  for (size_t i = 0; i < nlen; i++)
    if (!is_token_char((unsigned char)name[i]))
      luaL_error(L, "alex.http: field 'headers' has an invalid header name '%s'", name);
  for (size_t i = 0; i < vlen; i++)
    if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
      luaL_error(L, "alex.http: field 'headers': the value of '%s' contains a line break or NUL", name);
  if (equals_ci(name, nlen, "content-type")) *has_ct = 1;
  if (equals_ci(name, nlen, "expect")) *has_expect = 1;
  c->scratch.len = 0;
  if (buf_reserve(&c->scratch, nlen + vlen + 3, SIZE_MAX / 2, NULL) != 0)
    luaL_error(L, "alex.http: not enough memory");
  char *p = c->scratch.data;
  memcpy(p, name, nlen);
  if (vlen == 0) { /* "Name;" is libcurl's spelling of a header with an empty value */
    p[nlen] = ';';
    p[nlen + 1] = '\0';
  } else {
    p[nlen] = ':';
    p[nlen + 1] = ' ';
    memcpy(p + nlen + 2, value, vlen);
    p[nlen + 2 + vlen] = '\0';
  }
  append_header_line(L, c, p);
}

/* Header value at the top of the stack as a string (numbers are converted);
 * leaves the stack unchanged. */
static const char *header_value(lua_State *L, const char *name, size_t *len) {
  int ty = lua_type(L, -1);
  if (ty == LUA_TSTRING) return lua_tolstring(L, -1, len);
  if (ty == LUA_TNUMBER) {
    /* convert a copy: converting in place would disturb lua_next */
    lua_pushvalue(L, -1);
    const char *s = lua_tolstring(L, -1, len);
    lua_replace(L, -2); /* the string stays alive on the stack slot */
    return s;
  }
  luaL_error(L, "alex.http: field 'headers': the value of '%s' must be a string (got %s)", name,
             luaL_typename(L, -1));
  return NULL;
}

/* Builds c->req_headers from the table at index t (map or array of pairs). */
static void build_headers(lua_State *L, struct client *c, int t) {
  int has_ct = 0, has_expect = 0;
  if (!lua_isnil(L, t)) {
    if (!lua_istable(L, t))
      luaL_error(L, "alex.http: field 'headers' must be a table (got %s)", luaL_typename(L, t));
    lua_Unsigned n = lua_rawlen(L, t);
    if (n > 0) { /* array of {name, value} */
      for (lua_Unsigned i = 1; i <= n; i++) {
        if (lua_rawgeti(L, t, (lua_Integer)i) != LUA_TTABLE)
          luaL_error(L, "alex.http: field 'headers' entry %d must be a {name, value} pair (got %s)", (int)i,
                     luaL_typename(L, -1));
        size_t nlen, vlen;
        if (lua_rawgeti(L, -1, 1) != LUA_TSTRING)
          luaL_error(L, "alex.http: field 'headers' entry %d: the name must be a string", (int)i);
        const char *name = lua_tolstring(L, -1, &nlen);
        lua_rawgeti(L, -2, 2);
        const char *value = header_value(L, name, &vlen);
        add_header(L, c, name, nlen, value, vlen, &has_ct, &has_expect);
        lua_pop(L, 3);
      }
      lua_pushnil(L);
      while (lua_next(L, t)) {
        if (!lua_isinteger(L, -2))
          luaL_error(L, "alex.http: field 'headers' mixes a list of pairs with named entries");
        lua_pop(L, 1);
      }
    } else { /* map name -> value */
      lua_pushnil(L);
      while (lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING)
          luaL_error(L, "alex.http: field 'headers' must map header names (strings) to values");
        size_t nlen, vlen;
        const char *name = lua_tolstring(L, -2, &nlen);
        const char *value = header_value(L, name, &vlen);
        add_header(L, c, name, nlen, value, vlen, &has_ct, &has_expect);
        lua_pop(L, 1);
      }
    }
  }
  /* libcurl's own defaults that would change the request: a form content type
   * on POST bodies, and "Expect: 100-continue" (a round trip) on large ones.
   * "Name:" with nothing after it makes libcurl drop its own header. */
  if (!has_ct) append_header_line(L, c, "Content-Type:");
  if (!has_expect) append_header_line(L, c, "Expect:");
}

/* Pushes the response headers (from c->head) as a table. */
static void push_response_headers(lua_State *L, struct client *c) {
  lua_newtable(L);
  int t = lua_gettop(L);
  const char *s = c->head.data;
  size_t n = c->head.len, i = 0;
  int have_last = 0; /* the last header's name is on the stack */
  while (i < n) {
    size_t e = i;
    while (e < n && s[e] != '\n') e++;
    size_t len = e - i;
    if (len > 0 && s[i + len - 1] == '\r') len--;
    const char *line = s + i;
    i = e + 1;
    if (len == 0 || (len >= 5 && memcmp(line, "HTTP/", 5) == 0)) continue;
    if (line[0] == ' ' || line[0] == '\t') { /* obsolete folding: continues the last value */
      if (!have_last) continue;
      size_t a = 0;
      while (a < len && (line[a] == ' ' || line[a] == '\t')) a++;
      lua_pushvalue(L, -1);
      lua_rawget(L, t);
      lua_pushliteral(L, " ");
      lua_pushlstring(L, line + a, len - a);
      lua_concat(L, 3);
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, t);
      continue;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line) continue;
    size_t nlen = (size_t)(colon - line);
    if (have_last) lua_pop(L, 1);
    have_last = 0;
    /* lower-case name */
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, nlen);
    for (size_t k = 0; k < nlen; k++) p[k] = (char)tolower((unsigned char)line[k]);
    luaL_pushresultsize(&b, nlen);
    size_t a = nlen + 1, z = len;
    while (a < z && (line[a] == ' ' || line[a] == '\t')) a++;
    while (z > a && (line[z - 1] == ' ' || line[z - 1] == '\t')) z--;
    lua_pushvalue(L, -1);
    if (lua_rawget(L, t) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, line + a, z - a);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, line + a, z - a);
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, t);
    have_last = 1;
  }
  if (have_last) lua_pop(L, 1);
}

static const char *classify(struct client *c, CURLcode rc, const char **what) {
  switch (rc) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    *what = "could not resolve";
    return "dns";
  case CURLE_COULDNT_CONNECT:
    *what = "could not connect to";
    return "connect";
  case CURLE_OPERATION_TIMEDOUT:
    if (c->phase == PHASE_RESOLVING) {
      *what = "timed out resolving";
      return "dns";
    }
    if (c->phase == PHASE_CONNECTING) {
      *what = "timed out connecting to";
      return "connect";
    }
    *what = "timed out waiting for";
    return "timeout";
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CLIENTCERT:
  case CURLE_USE_SSL_FAILED:
    *what = "TLS failure with";
    return "tls";
  case CURLE_SEND_FAIL_REWIND: /* a reused connection died after the body went out: see on_upload_seek */
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
    if (c->phase < PHASE_SENT) {
      *what = "connection failed to";
      return "connect";
    }
    *what = "connection lost to";
    return "reset";
  case CURLE_ABORTED_BY_CALLBACK:
    if (c->interrupted) {
      *what = "interrupted request to";
      return "interrupted";
    }
    break;
  case CURLE_WRITE_ERROR:
    if (c->too_large) {
      *what = "response too large from";
      return "protocol";
    }
    break;
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_HTTP3:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_TOO_MANY_REDIRECTS:
  case CURLE_RANGE_ERROR:
    *what = "bad response from";
    return "protocol";
  case CURLE_UNSUPPORTED_PROTOCOL: /* e.g. an HTTP/0.9 answer */
    if (c->phase == PHASE_SENT) {
      *what = "bad response from";
      return "protocol";
    }
    break;
  default:
    break;
  }
  *what = "request failed to";
  return "other";
}

/* Sets an easy option; on failure raises, naming the option. */
#define SETOPT(opt, val)                                                                             \
  do {                                                                                               \
    CURLcode set_rc_ = curl_easy_setopt(c->easy, opt, val);                                          \
    if (set_rc_ != CURLE_OK) {                                                                       \
      if (set_rc_ == CURLE_OUT_OF_MEMORY) luaL_error(L, "alex.http: not enough memory");             \
      luaL_error(L, "alex.http: cannot set %s: %s", #opt, curl_easy_strerror(set_rc_));              \
    }                                                                                                \
  } while (0)

/* What one client:request was asked for.  The strings live on the Lua stack
 * (url at index 3, method at 4, body at 5) until the request returns. */
struct request_opts {
  const char *url, *method, *body;
  size_t body_len;
  long connect_ms, total_ms;
  int is_head;
};

/* Reads and checks the options table at index 2; raises naming the field. */
static void read_request_opts(lua_State *L, struct client *c, struct request_opts *o) {
  if (!lua_istable(L, 2))
    luaL_error(L, "alex.http: request options must be a table (got %s)", luaL_typename(L, 2));
  lua_settop(L, 2);
  if (lua_getfield(L, 2, "url") != LUA_TSTRING)
    luaL_error(L, "alex.http: field 'url' must be a string (got %s)", luaL_typename(L, 3));
  o->url = lua_tostring(L, 3);
  int ty = lua_getfield(L, 2, "method");
  o->method = "GET";
  if (ty == LUA_TSTRING) {
    size_t mlen;
    o->method = lua_tolstring(L, 4, &mlen);
    if (mlen == 0 || mlen > 32) luaL_error(L, "alex.http: field 'method' is not a valid HTTP method");
    for (size_t i = 0; i < mlen; i++)
      if (!is_token_char((unsigned char)o->method[i]))
        luaL_error(L, "alex.http: field 'method' is not a valid HTTP method");
  } else if (ty != LUA_TNIL) {
    luaL_error(L, "alex.http: field 'method' must be a string (got %s)", luaL_typename(L, 4));
  }
  ty = lua_getfield(L, 2, "body");
  o->body_len = 0;
  o->body = NULL;
  if (ty == LUA_TSTRING) o->body = lua_tolstring(L, 5, &o->body_len);
  else if (ty != LUA_TNIL)
    luaL_error(L, "alex.http: field 'body' must be a string (got %s)", luaL_typename(L, 5));
  o->connect_ms = field_ms(L, 2, "connect_timeout", c->connect_timeout_ms);
  o->total_ms = field_ms(L, 2, "timeout", c->timeout_ms);
  o->is_head = strcmp(o->method, "HEAD") == 0;
  if (o->is_head && o->body) luaL_error(L, "alex.http: field 'body' is not allowed with method HEAD");
}

/* Parses the URL into c->url, rejecting bad ones, and keeps "host:port" in
 * c->host for messages. */
static void parse_url(lua_State *L, struct client *c, const char *url) {
  c->url = curl_url();
  if (!c->url) luaL_error(L, "alex.http: not enough memory");
  CURLUcode uc = curl_url_set(c->url, CURLUPART_URL, url, 0);
  if (uc != CURLUE_OK) {
    if (uc == CURLUE_OUT_OF_MEMORY) luaL_error(L, "alex.http: not enough memory");
    luaL_error(L, "alex.http: field 'url' is not a valid URL (%s)", curl_url_strerror(uc));
  }
  char *scheme = NULL, *host = NULL, *port = NULL;
  uc = curl_url_get(c->url, CURLUPART_SCHEME, &scheme, 0);
  if (uc == CURLUE_OK) uc = curl_url_get(c->url, CURLUPART_HOST, &host, 0);
  if (uc == CURLUE_OK) uc = curl_url_get(c->url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
  int scheme_ok = uc == CURLUE_OK && (strcmp(scheme, "https") == 0 || strcmp(scheme, "http") == 0);
  if (uc == CURLUE_OK) snprintf(c->host, sizeof c->host, "%s:%s", host, port);
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  if (uc == CURLUE_OUT_OF_MEMORY) luaL_error(L, "alex.http: not enough memory");
  if (uc != CURLUE_OK) luaL_error(L, "alex.http: field 'url' is not a valid URL (%s)", curl_url_strerror(uc));
  if (!scheme_ok) luaL_error(L, "alex.http: field 'url' must be an http:// or https:// URL");
}

/* Method and body: libcurl's POST with our read callback for a body, so that
 * a body is never sent twice (on_upload_seek). */
static void set_method_and_body(lua_State *L, struct client *c, struct request_opts *o) {
  int sends_body = strcmp(o->method, "POST") == 0 || strcmp(o->method, "PUT") == 0 || strcmp(o->method, "PATCH") == 0;
  if (!o->body && sends_body) o->body = ""; /* send Content-Length: 0 */
  if (o->is_head) {
    SETOPT(CURLOPT_NOBODY, 1L);
  } else if (o->body) {
    /* the body string stays on the Lua stack (index 5) until the transfer ends */
    c->upload = o->body;
    c->upload_len = o->body_len;
    c->upload_pos = 0;
    SETOPT(CURLOPT_POST, 1L);
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
    SETOPT(CURLOPT_READFUNCTION, on_upload_read);
    SETOPT(CURLOPT_READDATA, (void *)c);
    SETOPT(CURLOPT_SEEKFUNCTION, on_upload_seek);
    SETOPT(CURLOPT_SEEKDATA, (void *)c);
    if (strcmp(o->method, "POST") != 0) SETOPT(CURLOPT_CUSTOMREQUEST, o->method);
  } else if (strcmp(o->method, "GET") == 0) {
    SETOPT(CURLOPT_HTTPGET, 1L);
  } else {
    SETOPT(CURLOPT_CUSTOMREQUEST, o->method);
  }
}

/* Makes the easy handle ready for this request: headers, URL, timeouts, TLS,
 * callbacks, method and body.  The previous request's state is released first. */
static void prepare_transfer(lua_State *L, struct client *c, struct request_opts *o) {
  if (c->pending) luaL_error(L, "alex.http: a request is in flight on this client (receive it first)");
  release_request_state(c);
  snprintf(c->method, sizeof c->method, "%s", o->method);
  c->upload = NULL;
  c->upload_len = c->upload_pos = 0;
  c->phase = PHASE_RESOLVING;
  c->interrupted = c->oom = c->too_large = 0;
  c->errbuf[0] = '\0';

  lua_getfield(L, 2, "headers"); /* index 6 */
  build_headers(L, c, 6);
  parse_url(L, c, o->url);

  /* the interrupt flag, when the host provides one */
  lua_getfield(L, LUA_REGISTRYINDEX, ALEX_INTERRUPT_KEY);
  c->interrupt = lua_islightuserdata(L, -1) ? (volatile sig_atomic_t *)lua_touserdata(L, -1) : NULL;
  lua_pop(L, 1);

  curl_easy_reset(c->easy); /* keeps the connection cache (in the multi handle) */
  SETOPT(CURLOPT_CURLU, c->url);
  SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
  SETOPT(CURLOPT_NOSIGNAL, 1L);
  SETOPT(CURLOPT_QUICK_EXIT, 1L); /* never wait for a hung resolver thread */
  SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  SETOPT(CURLOPT_CONNECTTIMEOUT_MS, o->connect_ms);
  SETOPT(CURLOPT_TIMEOUT_MS, o->total_ms);
  SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
  SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
  SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  if (c->ca_bundle) SETOPT(CURLOPT_CAINFO, c->ca_bundle);
  SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
  SETOPT(CURLOPT_USERAGENT, "alexlua/" ALEX_VERSION);
  SETOPT(CURLOPT_HTTPHEADER, c->req_headers);
  SETOPT(CURLOPT_ERRORBUFFER, c->errbuf);
  SETOPT(CURLOPT_WRITEFUNCTION, on_body);
  SETOPT(CURLOPT_WRITEDATA, (void *)c);
  SETOPT(CURLOPT_HEADERFUNCTION, on_header);
  SETOPT(CURLOPT_HEADERDATA, (void *)c);
  SETOPT(CURLOPT_NOPROGRESS, 0L);
  SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
  SETOPT(CURLOPT_XFERINFODATA, (void *)c);
  SETOPT(CURLOPT_SOCKOPTFUNCTION, on_sockopt);
  SETOPT(CURLOPT_SOCKOPTDATA, (void *)c);
  SETOPT(CURLOPT_PREREQFUNCTION, on_prereq);
  SETOPT(CURLOPT_PREREQDATA, (void *)c);
  if (c->verbose) {
    SETOPT(CURLOPT_DEBUGFUNCTION, on_debug);
    SETOPT(CURLOPT_VERBOSE, 1L);
  }
  set_method_and_body(L, c, o);
}

/* Whether Ctrl-C was pressed; remembers it for the error kind. */
static int interrupt_pending(struct client *c) {
  if (c->interrupt && *c->interrupt) {
    c->interrupted = 1;
    return 1;
  }
  return 0;
}

/* Starts the prepared transfer: the easy handle joins the multi handle. */
static CURLcode start_transfer(struct client *c, CURLMcode *mc) {
  *mc = CURLM_OK;
  if (interrupt_pending(c)) return CURLE_ABORTED_BY_CALLBACK;
  *mc = curl_multi_add_handle(c->multi, c->easy);
  return CURLE_OK;
}

/* Runs the started transfer to its end in our own multi loop, waiting at most
 * POLL_MS at a time and checking the interrupt flag after every wait.
 * Returns the transfer's result; *mc gets the multi interface's own failure,
 * if any. */
static CURLcode finish_transfer(struct client *c, CURLMcode *mc) {
  CURLcode rc = CURLE_OK;
  int done = 0;
  while (*mc == CURLM_OK && !done) {
    int running = 0;
    *mc = curl_multi_perform(c->multi, &running);
    if (*mc != CURLM_OK) break;
    int queued;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->easy) {
        rc = msg->data.result;
        done = 1;
      }
    }
    if (done) break;
    if (!running) { /* cannot happen without a DONE message; do not spin */
      rc = CURLE_FAILED_INIT;
      break;
    }
    if (interrupt_pending(c)) {
      rc = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    *mc = curl_multi_poll(c->multi, NULL, 0, POLL_MS, NULL); /* a signal ends it early */
    if (interrupt_pending(c)) {
      rc = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
  }
  curl_multi_remove_handle(c->multi, c->easy);
  return rc;
}

/* Pushes nil, a message naming the host, and the failure's kind; returns 3. */
static int push_failure(lua_State *L, struct client *c, CURLMcode mc, CURLcode rc) {
  const char *what;
  const char *kind = mc != CURLM_OK ? "other" : classify(c, rc, &what);
  if (mc != CURLM_OK) {
    lua_pushfstring(L, "request failed to %s: %s", c->host, curl_multi_strerror(mc));
  } else if (rc == CURLE_ABORTED_BY_CALLBACK && c->interrupted) {
    lua_pushfstring(L, "%s %s", what, c->host);
  } else if (c->too_large) {
    lua_pushfstring(L, "%s %s: more than %d MiB", what, c->host, (int)(MAX_RESPONSE_BYTES >> 20));
  } else if (rc == CURLE_SEND_FAIL_REWIND) {
    lua_pushfstring(L, "%s %s: the connection closed without an answer after the request was sent", what, c->host);
  } else {
    const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    size_t dl = strlen(detail);
    while (dl > 0 && (detail[dl - 1] == '\n' || detail[dl - 1] == ' ')) dl--;
    lua_pushfstring(L, "%s %s: ", what, c->host);
    lua_pushlstring(L, detail, dl);
    if (rc == CURLE_SSL_CACERT_BADFILE && c->ca_bundle) {
      lua_pushfstring(L, " (CA bundle %s)", c->ca_bundle);
      lua_concat(L, 3);
    } else {
      lua_concat(L, 2);
    }
  }
  if (c->verbose) {
    const char *m = lua_tostring(L, -1);
    print_text_redacted("alex.http: error: ", m, strlen(m));
  }
  release_request_state(c);
  lua_pushnil(L);
  lua_insert(L, -2);
  lua_pushstring(L, kind);
  return 3;
}

/* Pushes the result table { status, headers, body, new_connections, time }; returns 1. */
static int push_response(lua_State *L, struct client *c) {
  long status = 0, connects = 0;
  curl_off_t total_us = 0;
  curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &connects);
  curl_easy_getinfo(c->easy, CURLINFO_TOTAL_TIME_T, &total_us);
  if (c->verbose)
    fprintf(stderr, "alex.http: %s %s: HTTP %ld, sent %zu body bytes, received %zu, %.1f ms, %ld new connection(s)\n",
            c->method, c->host, status, c->upload_len, c->body.len, (double)total_us / 1000.0, connects);

  lua_createtable(L, 0, 5);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  push_response_headers(L, c);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, c->body.data ? c->body.data : "", c->body.len);
  lua_setfield(L, -2, "body");
  lua_pushinteger(L, connects);
  lua_setfield(L, -2, "new_connections");
  lua_pushnumber(L, (lua_Number)total_us / 1e6);
  lua_setfield(L, -2, "time");
  release_request_state(c);
  return 1;
}

/* The end of a transfer: the response, or nil, message, kind. */
static int push_result(lua_State *L, struct client *c, CURLMcode mc, CURLcode rc) {
  if (mc == CURLM_OUT_OF_MEMORY || rc == CURLE_OUT_OF_MEMORY || c->oom) {
    release_request_state(c);
    return luaL_error(L, "alex.http: not enough memory");
  }
  if (mc != CURLM_OK || rc != CURLE_OK) return push_failure(L, c, mc, rc);
  return push_response(L, c);
}

/* client:send(opts) -> true | nil, message, kind.  The transfer goes as far
 * as it can without waiting (a small request is on the wire when it
 * returns); receive runs it to its end. */
static int l_send(lua_State *L) {
  struct client *c = check_client(L, 1);
  struct request_opts o;
  read_request_opts(L, c, &o);
  prepare_transfer(L, c, &o);
  CURLMcode mc;
  CURLcode rc = start_transfer(c, &mc);
  if (mc != CURLM_OK || rc != CURLE_OK) return push_result(L, c, mc, rc);
  int running = 0;
  c->send_mc = curl_multi_perform(c->multi, &running);
  c->pending = 1;
  lua_pushvalue(L, 5); /* the body (or nil) stays referenced until receive: libcurl reads it from there */
  lua_setiuservalue(L, 1, 1);
  lua_pushboolean(L, 1);
  return 1;
}

/* client:receive() -> res | nil, message, kind, for the request send began. */
static int l_receive(lua_State *L) {
  struct client *c = check_client(L, 1);
  if (!c->pending) return luaL_error(L, "alex.http: receive without a request sent");
  c->pending = 0;
  CURLMcode mc = c->send_mc;
  CURLcode rc = CURLE_OK;
  if (mc == CURLM_OK) rc = finish_transfer(c, &mc);
  else curl_multi_remove_handle(c->multi, c->easy);
  int n = push_result(L, c, mc, rc);
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 1);
  return n;
}

/* client:request(opts) -> res | nil, message, kind: send, then receive. */
static int l_request(lua_State *L) {
  int n = l_send(L);
  if (!lua_toboolean(L, -n)) return n; /* nil, message, kind */
  lua_settop(L, 1);
  return l_receive(L);
}

/* ---------- module ---------- */

/* The default client of this Lua state, made on first use. */
static int l_default_request(lua_State *L) {
  lua_settop(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, DEFAULT_CLIENT_KEY) == LUA_TUSERDATA) {
    struct client *c = luaL_checkudata(L, -1, CLIENT_MT);
    if (c->closed) {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushcfunction(L, l_new);
    lua_call(L, 0, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, DEFAULT_CLIENT_KEY);
  }
  lua_insert(L, 1); /* client, opts */
  return l_request(L);
}

static int global_gc(lua_State *L) {
  (void)L;
  curl_global_cleanup();
  return 0;
}

int luaopen_alex_http(lua_State *L) {
  /* curl_global_init once per Lua state; the sentinel's __gc balances it at
   * lua_close, after every client (finalizers run newest first). */
  char load_err[256];
  if (!alex_curl_load(load_err, sizeof load_err)) return luaL_error(L, "alex.http: %s", load_err);
  if (lua_getfield(L, LUA_REGISTRYINDEX, GLOBAL_KEY) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newuserdatauv(L, 1, 0);
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) return luaL_error(L, "alex.http: cannot initialise libcurl: %s", curl_easy_strerror(rc));
    lua_newtable(L);
    lua_pushcfunction(L, global_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, GLOBAL_KEY);
  } else {
    lua_pop(L, 1);
  }

  if (luaL_newmetatable(L, CLIENT_MT)) {
    static const luaL_Reg methods[] = {
        {"request", l_request},
        {"send", l_send},
        {"receive", l_receive},
        {"close", l_close},
        {NULL, NULL},
    };
    static const luaL_Reg metamethods[] = {
        {"__gc", l_gc},
        {"__close", l_close},
        {"__tostring", l_tostring},
        {NULL, NULL},
    };
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    luaL_setfuncs(L, metamethods, 0);
  }
  lua_pop(L, 1);

  static const luaL_Reg funcs[] = {
      {"new", l_new},
      {"request", l_default_request},
      {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
  lua_pushfstring(L, "libcurl/%s %s", vi->version, vi->ssl_version ? vi->ssl_version : "no-TLS");
  lua_setfield(L, -2, "curl_version");
  return 1;
}
