/* The five Data API operations: request validation, parameter binding,
 * statement execution (with the call time limit) and result encoding. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"
#include "sqlscan.h"

#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_JSON 114
#define OID_FLOAT8 701
#define OID_VARCHAR 1043
#define OID_DATE 1082
#define OID_TIME 1083
#define OID_TIMESTAMP 1114
#define OID_NUMERIC 1700
#define OID_UUID 2950

static int stopping(server *s);

/* ---- request members ---- */

static size_t utf8_chars(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
  return c;
}

/* A string member: absent/null gives *out = NULL (an error when required). */
static int get_str(json_t *req, const char *key, int required, size_t minlen, size_t maxlen,
                   const char **out, apierr *err) {
  json_t *v = json_object_get(req, key);
  *out = NULL;
  if (!v || json_is_null(v)) {
    if (required) {
      VALIDATION(err, "1 validation error detected: Value null at '%s' failed to satisfy constraint: "
                      "Member must not be null", key);
      return -1;
    }
    return 0;
  }
  if (!json_is_string(v)) {
    VALIDATION(err, "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                    "Member must be a string", key);
    return -1;
  }
  size_t n = utf8_chars(json_string_value(v), json_string_length(v));
  if (n < minlen || n > maxlen) {
    if (minlen)
      VALIDATION(err, "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                      "Member must have length between %zu and %zu", key, minlen, maxlen);
    else
      VALIDATION(err, "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                      "Member must have length less than or equal to %zu", key, maxlen);
    return -1;
  }
  *out = json_string_value(v);
  return 0;
}

static int get_bool(json_t *req, const char *key, int *out, apierr *err) {
  json_t *v = json_object_get(req, key);
  *out = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) {
    VALIDATION(err, "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                    "Member must be a boolean", key);
    return -1;
  }
  *out = json_is_true(v);
  return 0;
}

/* An enum member: index into values, or def when absent. */
static int get_enum(json_t *v, const char *path, const char *const *values, int def, int *out, apierr *err) {
  *out = def;
  if (!v || json_is_null(v)) return 0;
  if (json_is_string(v)) {
    for (int i = 0; values[i]; i++)
      if (strcmp(json_string_value(v), values[i]) == 0) {
        *out = i;
        return 0;
      }
  }
  sbuf b = {0};
  for (int i = 0; values[i]; i++) sb_printf(&b, "%s%s", i ? ", " : "", values[i]);
  sb_putc(&b, '\0');
  VALIDATION(err, "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must "
                  "satisfy enum value set: [%s]", path, b.p ? b.p : "");
  sb_free(&b);
  return -1;
}

typedef struct {
  const char *resource_arn, *secret_arn, *database, *transaction_id, *sql;
} common;

/* The members every operation shares, then the schema/ARN/secret checks. */
static int check_common(server *s, json_t *req, int want_sql, int want_tx, common *c, apierr *err) {
  memset(c, 0, sizeof *c);
  const char *schema;
  if (get_str(req, "resourceArn", 1, 11, 570, &c->resource_arn, err) ||
      get_str(req, "secretArn", 1, 11, 570, &c->secret_arn, err) ||
      get_str(req, "database", 0, 0, 64, &c->database, err) ||
      get_str(req, "schema", 0, 0, 64, &schema, err) ||
      get_str(req, "transactionId", want_tx == 2, 0, 192, &c->transaction_id, err) ||
      (want_sql && get_str(req, "sql", 1, 0, 65536, &c->sql, err)))
    return -1;
  if (!want_tx) c->transaction_id = NULL;
  if (schema) {
    VALIDATION(err, "The schema parameter isn't supported");
    return -1;
  }
  if (strcmp(c->resource_arn, s->cfg.cluster_arn) != 0) {
    apierr_set(err, 400, "HttpEndpointNotEnabledException", "HttpEndpoint isn't enabled for cluster %s",
               c->resource_arn);
    return -1;
  }
  if (strcmp(c->secret_arn, s->cfg.secret_arn) != 0) {
    apierr_set(err, 400, "SecretsErrorException", "Secrets Manager can't find the specified secret.");
    return -1;
  }
  if (!c->database || !*c->database) c->database = s->cfg.default_database;
  return 0;
}

/* ---- parameters ---- */

typedef struct {
  size_t n;
  Oid *types;
  const char **values;
  int *lengths, *formats;
  char (*num)[40];
  unsigned char **blobs;
  char *filled;
} binds;

static int binds_init(binds *b, size_t n) {
  memset(b, 0, sizeof *b);
  b->n = n;
  if (n == 0) return 0;
  b->types = calloc(n, sizeof *b->types);
  b->values = calloc(n, sizeof *b->values);
  b->lengths = calloc(n, sizeof *b->lengths);
  b->formats = calloc(n, sizeof *b->formats);
  b->num = calloc(n, sizeof *b->num);
  b->blobs = calloc(n, sizeof *b->blobs);
  b->filled = calloc(n, 1);
  return b->types && b->values && b->lengths && b->formats && b->num && b->blobs && b->filled ? 0 : -1;
}

static void binds_reset(binds *b) {
  for (size_t i = 0; i < b->n; i++) {
    free(b->blobs[i]);
    b->blobs[i] = NULL;
    b->filled[i] = 0;
  }
}

static void binds_free(binds *b) {
  if (b->blobs) binds_reset(b);
  free(b->types);
  free(b->values);
  free(b->lengths);
  free(b->formats);
  free(b->num);
  free(b->blobs);
  free(b->filled);
  memset(b, 0, sizeof *b);
}

static const char *const HINTS[] = {"DATE", "TIME", "TIMESTAMP", "UUID", "JSON", "DECIMAL", NULL};
static const Oid HINT_OIDS[] = {OID_DATE, OID_TIME, OID_TIMESTAMP, OID_UUID, OID_JSON, OID_NUMERIC};

/* Where a parameter is, for messages: "parameters.2.member" or "parameterSets.3.2.member".
 * Built only when something is wrong (batches have thousands of parameters). */
typedef struct {
  const char *list; /* "parameters" or "parameterSets" */
  size_t set;       /* 1-based set number, 0 for parameters */
  size_t index;     /* 1-based parameter number, 0 for the list itself */
  char buf[96];
} param_pos;

static const char *pos_str(param_pos *w, const char *suffix) {
  int n = w->set ? snprintf(w->buf, sizeof w->buf, "%s.%zu", w->list, w->set)
                 : snprintf(w->buf, sizeof w->buf, "%s", w->list);
  if (w->index && n > 0 && (size_t)n < sizeof w->buf)
    n += snprintf(w->buf + n, sizeof w->buf - (size_t)n, ".%zu.member", w->index);
  if (suffix && n > 0 && (size_t)n < sizeof w->buf) snprintf(w->buf + n, sizeof w->buf - (size_t)n, "%s", suffix);
  return w->buf;
}

/* Checks one SqlParameter; with slot >= 0 also binds it there. */
static int bind_one(json_t *p, param_pos *pos, binds *b, long slot, apierr *err) {
  const char *where;
  json_t *value = json_object_get(p, "value");
  int hint = -1;
  json_t *th = json_object_get(p, "typeHint");
  if (th && !json_is_null(th)) {
    for (int i = 0; HINTS[i] && json_is_string(th); i++)
      if (strcmp(json_string_value(th), HINTS[i]) == 0) hint = i;
    if (hint < 0) {
      get_enum(th, pos_str(pos, ".typeHint"), HINTS, -1, &hint, err);
      return -1;
    }
  }
  if (!value || json_is_null(value)) {
    where = pos_str(pos, NULL);
    VALIDATION(err, "1 validation error detected: Value null at '%s.value' failed to satisfy constraint: "
                    "Member must not be null", where);
    return -1;
  }
  if (!json_is_object(value) || json_object_size(value) != 1) {
    where = pos_str(pos, NULL);
    VALIDATION(err, "Value at '%s.value' must be an object with exactly one member "
                    "(isNull, booleanValue, longValue, doubleValue, stringValue, blobValue)", where);
    return -1;
  }
  const char *key = json_object_iter_key(json_object_iter(value));
  json_t *v = json_object_iter_value(json_object_iter(value));
  Oid type = 0;
  const char *text = NULL;
  int len = 0, format = 0;
  if (strcmp(key, "arrayValue") == 0) {
    VALIDATION(err, "Array parameters are not supported.");
    return -1;
  } else if (strcmp(key, "isNull") == 0) {
    if (!json_is_boolean(v)) goto badtype;
  } else if (strcmp(key, "booleanValue") == 0) {
    if (!json_is_boolean(v)) goto badtype;
    type = OID_BOOL;
    text = json_is_true(v) ? "true" : "false";
  } else if (strcmp(key, "longValue") == 0) {
    if (!json_is_integer(v)) goto badtype;
    type = OID_INT8;
    if (slot >= 0) {
      snprintf(b->num[slot], sizeof b->num[slot], "%" JSON_INTEGER_FORMAT, json_integer_value(v));
      text = b->num[slot];
    }
  } else if (strcmp(key, "doubleValue") == 0) {
    if (!json_is_number(v)) goto badtype;
    type = OID_FLOAT8;
    if (slot >= 0) {
      if (json_is_integer(v)) {
        snprintf(b->num[slot], sizeof b->num[slot], "%" JSON_INTEGER_FORMAT, json_integer_value(v));
      } else {
        double d = json_real_value(v);
        for (int prec = 15; prec <= 17; prec++) {
          snprintf(b->num[slot], sizeof b->num[slot], "%.*g", prec, d);
          if (strtod(b->num[slot], NULL) == d) break;
        }
      }
      text = b->num[slot];
    }
  } else if (strcmp(key, "stringValue") == 0) {
    if (!json_is_string(v)) goto badtype;
    type = hint >= 0 ? HINT_OIDS[hint] : OID_VARCHAR;
    text = json_string_value(v);
  } else if (strcmp(key, "blobValue") == 0) {
    if (!json_is_string(v)) goto badtype;
    type = OID_BYTEA;
    format = 1;
    size_t n = 0;
    int bad = 0;
    unsigned char *raw = b64_decode(json_string_value(v), json_string_length(v), &n, &bad);
    if (!raw) {
      where = pos_str(pos, NULL);
      if (bad) VALIDATION(err, "Value at '%s.value.blobValue' is not valid base64", where);
      else apierr_set(err, 500, "InternalServerErrorException", "out of memory");
      return -1;
    }
    if (n > 0x7fffffff) {
      free(raw);
      where = pos_str(pos, NULL);
      VALIDATION(err, "Value at '%s.value.blobValue' is too large", where);
      return -1;
    }
    if (slot < 0) {
      free(raw);
    } else {
      b->blobs[slot] = raw;
      text = (const char *)raw;
      len = (int)n;
    }
  } else {
    where = pos_str(pos, NULL);
    VALIDATION(err, "Unknown member '%s' in '%s.value'", key, where);
    return -1;
  }
  if (slot >= 0) {
    b->types[slot] = type;
    b->values[slot] = text;
    b->lengths[slot] = len;
    b->formats[slot] = format;
    b->filled[slot] = 1;
  }
  return 0;
badtype:
  where = pos_str(pos, NULL);
  VALIDATION(err, "1 validation error detected: Value at '%s.value.%s' has the wrong type", where, key);
  return -1;
}

/* Validates every parameter of `params` and binds those the SQL names. */
static int bind_set(json_t *params, const char *list, size_t set, const sql_scan *scan, binds *b, apierr *err) {
  param_pos pos = {list, set, 0, {0}};
  binds_reset(b);
  if (params && !json_is_null(params)) {
    if (!json_is_array(params)) {
      VALIDATION(err, "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                      "Member must be a list", pos_str(&pos, NULL));
      return -1;
    }
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p) {
      pos.index = i + 1;
      if (!json_is_object(p)) {
        VALIDATION(err, "Value at '%s' must be an object", pos_str(&pos, NULL));
        return -1;
      }
      json_t *name = json_object_get(p, "name");
      if (name && !json_is_null(name) && !json_is_string(name)) {
        VALIDATION(err, "1 validation error detected: Value at '%s.name' failed to satisfy constraint: "
                        "Member must be a string", pos_str(&pos, NULL));
        return -1;
      }
      long slot = -1;
      if (name && json_is_string(name)) {
        for (size_t k = 0; k < scan->nnames; k++) {
          if (!b->filled[k] && strcmp(scan->names[k], json_string_value(name)) == 0) {
            slot = (long)k;
            break;
          }
        }
      }
      if (bind_one(p, &pos, b, slot, err) != 0) return -1;
    }
  }
  for (size_t k = 0; k < scan->nnames; k++) {
    if (!b->filled[k]) {
      VALIDATION(err, "Cannot find parameter: %s", scan->names[k]);
      return -1;
    }
  }
  return 0;
}

/* ---- waiting on PostgreSQL ---- */

/* Consumes input until a result is ready.  0 ready, 1 deadline passed, -1 connection trouble. */
static int wait_ready(PGconn *pg, double deadline) {
  while (PQisBusy(pg)) {
    double left = deadline - mono_now();
    if (left <= 0) return 1;
    struct pollfd pfd = {PQsocket(pg), POLLIN, 0};
    int ms = left > 1 ? 1000 : (int)(left * 1000) + 1;
    int r = poll(&pfd, 1, ms);
    if (r < 0 && errno != EINTR) return -1;
    if (r > 0 && !PQconsumeInput(pg)) return -1;
  }
  return 0;
}

/* ---- result encoding ---- */

typedef struct {
  int long_as_string, decimal_dl, json, meta;
} result_opts;

typedef struct {
  server *s;
  const char *db;
  result_opts o;
  sbuf *out;         /* the response body (records go straight in) */
  sbuf inner;        /* formattedRecords before escaping */
  sbuf tmp;          /* array element scratch */
  unsigned char *bin;
  size_t bin_cap;
  int started, ncols, nrows_enc;
  typeinfo *types;
  int *typmods;
  char **labels;
  Oid *tables;
  int *tablecols;
  unsigned long long size;
  apierr fail;
} encoder;

static void enc_free(encoder *e) {
  for (int i = 0; i < e->ncols && e->labels; i++) free(e->labels[i]);
  free(e->labels);
  free(e->types);
  free(e->typmods);
  free(e->tables);
  free(e->tablecols);
  free(e->bin);
  sb_free(&e->inner);
  sb_free(&e->tmp);
  apierr_clear(&e->fail);
}

static int enc_start(encoder *e, const PGresult *r) {
  e->started = 1;
  int n = PQnfields(r);
  e->ncols = n;
  size_t cnt = n > 0 ? (size_t)n : 1;
  e->types = calloc(cnt, sizeof *e->types);
  e->typmods = calloc(cnt, sizeof *e->typmods);
  e->labels = calloc(cnt, sizeof *e->labels);
  e->tables = calloc(cnt, sizeof *e->tables);
  e->tablecols = calloc(cnt, sizeof *e->tablecols);
  Oid *oids = calloc(cnt, sizeof *oids);
  if (!e->types || !e->typmods || !e->labels || !e->tables || !e->tablecols || !oids) {
    free(oids);
    apierr_set(&e->fail, 500, "InternalServerErrorException", "out of memory");
    return -1;
  }
  for (int i = 0; i < n; i++) {
    oids[i] = PQftype(r, i);
    e->typmods[i] = PQfmod(r, i);
    e->labels[i] = xstrdup(PQfname(r, i));
    e->tables[i] = PQftable(r, i);
    e->tablecols[i] = PQftablecol(r, i);
    if (!e->labels[i]) {
      free(oids);
      apierr_set(&e->fail, 500, "InternalServerErrorException", "out of memory");
      return -1;
    }
  }
  types_resolve(e->s, e->db, oids, n, e->types);
  free(oids);
  for (int i = 0; i < n; i++) {
    if (e->types[i].kind == K_UNSUPPORTED) {
      const char *name = e->types[i].name;
      if (name[0] == '_') name++; /* arrays of an unsupported type name the element type */
      apierr_set(&e->fail, 400, "UnsupportedResultException", "The result contains the unsupported data type %s",
                 name);
      return -1;
    }
  }
  if (e->o.json) {
    for (int i = 0; i < n; i++)
      for (int j = 0; j < i; j++)
        if (strcmp(e->labels[i], e->labels[j]) == 0) {
          apierr_set(&e->fail, 400, "UnsupportedResultException",
                     "The result contains duplicate column names (%s); use column aliases with formatRecordsAs JSON",
                     e->labels[i]);
          return -1;
        }
    sb_putc(&e->inner, '[');
  } else {
    sb_puts(e->out, "{\"records\":[");
  }
  return 0;
}

static int is_json_number(const char *v) {
  const char *p = v;
  if (*p == '-') p++;
  return *p >= '0' && *p <= '9';
}

/* PostgreSQL's text of a numeric, as the DOUBLE_OR_LONG option wants it. */
static void put_numeric_dl(sbuf *b, const char *v, int field) {
  if (!is_json_number(v)) { /* NaN, Infinity */
    if (field) sb_puts(b, "{\"stringValue\":");
    sb_json_str(b, v, strlen(v));
    if (field) sb_putc(b, '}');
    return;
  }
  if (!strchr(v, '.') && !strchr(v, 'e') && !strchr(v, 'E')) {
    errno = 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (!errno && !*end) {
      sb_printf(b, field ? "{\"longValue\":%lld}" : "%lld", n);
      return;
    }
  }
  double d = strtod(v, NULL);
  if (field) sb_puts(b, "{\"doubleValue\":");
  if (isfinite(d)) sb_double(b, d);
  else sb_json_str(b, v, strlen(v));
  if (field) sb_putc(b, '}');
}

static const unsigned char *hex_bytes(encoder *e, const char *v, size_t len, size_t *n) {
  if (len < 2 || v[0] != '\\' || v[1] != 'x') {
    *n = len; /* escape format would need more; the session forces hex */
    return (const unsigned char *)v;
  }
  size_t need = (len - 2) / 2 + 1;
  if (need > e->bin_cap) {
    unsigned char *p = realloc(e->bin, need);
    if (!p) return NULL;
    e->bin = p;
    e->bin_cap = need;
  }
  size_t o = 0;
  for (size_t i = 2; i + 1 < len; i += 2) {
    int hi = v[i] <= '9' ? v[i] - '0' : (v[i] | 0x20) - 'a' + 10;
    int lo = v[i + 1] <= '9' ? v[i + 1] - '0' : (v[i + 1] | 0x20) - 'a' + 10;
    e->bin[o++] = (unsigned char)(hi << 4 | lo);
  }
  *n = o;
  return e->bin;
}

/* Writes a timestamptz as a JSON string without the "+00" offset (the session is UTC). */
static void put_tstz(sbuf *b, const char *v, size_t n) {
  size_t end = n, bc = 0;
  if (n >= 3 && memcmp(v + n - 3, " BC", 3) == 0) end = n - 3, bc = 1;
  sb_putc(b, '"');
  if (end >= 3 && memcmp(v + end - 3, "+00", 3) == 0) {
    sb_json_esc(b, v, end - 3);
    if (bc) sb_puts(b, " BC");
  } else {
    sb_json_esc(b, v, n);
  }
  sb_putc(b, '"');
}

/* One scalar value (not an array) of kind k.  field: as a Field object, else plain JSON. */
static int put_scalar(encoder *e, sbuf *b, enum vkind k, const char *v, size_t len, int field, int in_array) {
  switch (k) {
  case K_INT:
    if (e->o.long_as_string) {
      if (field) sb_puts(b, "{\"stringValue\":");
      sb_putc(b, '"');
      sb_put(b, v, len);
      sb_putc(b, '"');
    } else {
      if (field) sb_puts(b, "{\"longValue\":");
      sb_put(b, v, len);
    }
    break;
  case K_NUMERIC:
    if (e->o.decimal_dl && !in_array) {
      put_numeric_dl(b, v, field);
      return 0;
    }
    if (field) sb_puts(b, "{\"stringValue\":");
    sb_json_str(b, v, len);
    break;
  case K_FLOAT4:
  case K_FLOAT8: {
    double d = k == K_FLOAT4 ? (double)strtof(v, NULL) : strtod(v, NULL);
    if (!is_json_number(v) || !isfinite(d)) {
      if (in_array) {
        sb_puts(b, "null");
        return 0;
      }
      if (field) sb_puts(b, "{\"stringValue\":");
      sb_json_str(b, v, len);
    } else {
      if (field) sb_puts(b, "{\"doubleValue\":");
      if (k == K_FLOAT8) sb_put(b, v, len); /* already the shortest exact text */
      else sb_double(b, d);
    }
    break;
  }
  case K_BOOL:
    if (field) sb_puts(b, "{\"booleanValue\":");
    sb_puts(b, v[0] == 't' ? "true" : "false");
    break;
  case K_BYTEA: {
    size_t n;
    const unsigned char *raw = hex_bytes(e, v, len, &n);
    if (!raw) {
      apierr_set(&e->fail, 500, "InternalServerErrorException", "out of memory");
      return -1;
    }
    if (field) sb_puts(b, "{\"blobValue\":");
    sb_putc(b, '"');
    sb_b64(b, raw, n);
    sb_putc(b, '"');
    break;
  }
  case K_TEMPORAL:
  case K_TSTZ:
    /* 'infinity' and '-infinity' come through as PostgreSQL writes them: a
     * 500 with an empty message (what Aurora was seen to answer) is retried
     * by every SDK, and the real answer is not documented. */
    if (field) sb_puts(b, "{\"stringValue\":");
    if (k == K_TSTZ) put_tstz(b, v, len);
    else sb_json_str(b, v, len);
    break;
  case K_VOID:
    if (field) sb_puts(b, "{\"stringValue\":");
    sb_puts(b, "\"\"");
    break;
  default:
    if (field) sb_puts(b, "{\"stringValue\":");
    sb_json_str(b, v, len);
    break;
  }
  if (field) sb_putc(b, '}');
  return 0;
}

/* A 1-D PostgreSQL array literal as an ArrayValue (field) or a JSON array. */
static int put_array(encoder *e, sbuf *b, enum vkind k, const char *v, int field) {
  const char *p = v;
  if (*p == '[') { /* explicit bounds: "[0:2]={...}" */
    p = strchr(p, '=');
    if (!p) goto malformed;
    p++;
  }
  if (*p != '{') goto malformed;
  p++;
  while (*p == ' ') p++;
  if (*p == '{') {
    apierr_set(&e->fail, 400, "UnsupportedResultException", "The result contains a multidimensional array");
    return -1;
  }
  if (field) {
    const char *list = "stringValues";
    if (k == K_INT && !e->o.long_as_string) list = "longValues";
    else if (k == K_FLOAT4 || k == K_FLOAT8) list = "doubleValues";
    else if (k == K_BOOL) list = "booleanValues";
    sb_printf(b, "{\"arrayValue\":{\"%s\":[", list);
  } else {
    sb_putc(b, '[');
  }
  int first = 1;
  while (*p && *p != '}') {
    while (*p == ' ') p++;
    e->tmp.len = 0;
    int quoted = 0;
    if (*p == '"') {
      quoted = 1;
      p++;
      while (*p && *p != '"') {
        if (*p == '\\' && p[1]) p++;
        sb_putc(&e->tmp, *p++);
      }
      if (*p != '"') goto malformed;
      p++;
    } else {
      while (*p && *p != ',' && *p != '}') sb_putc(&e->tmp, *p++);
      while (e->tmp.len && e->tmp.p[e->tmp.len - 1] == ' ') e->tmp.len--;
    }
    while (*p == ' ') p++;
    if (*p == ',') p++;
    else if (*p != '}') goto malformed;
    sb_putc(&e->tmp, '\0');
    if (e->tmp.oom) {
      apierr_set(&e->fail, 500, "InternalServerErrorException", "out of memory");
      return -1;
    }
    if (!first) sb_putc(b, ',');
    first = 0;
    size_t len = e->tmp.len - 1;
    if (!quoted && len == 4 && strncasecmp(e->tmp.p, "NULL", 4) == 0) {
      sb_puts(b, "null");
      continue;
    }
    if (put_scalar(e, b, k, e->tmp.p, len, 0, 1) != 0) return -1;
  }
  if (*p != '}') goto malformed;
  sb_puts(b, field ? "]}}" : "]");
  return 0;
malformed:
  apierr_set(&e->fail, 500, "InternalServerErrorException", "cannot read an array value from the database");
  return -1;
}

static int enc_row(encoder *e, const PGresult *r, int row) {
  /* the size rule: a DataRow's payload, 2 + sum(4 + length) per row */
  unsigned long long rowsize = 2;
  for (int i = 0; i < e->ncols; i++) rowsize += 4 + (PQgetisnull(r, row, i) ? 0 : (unsigned)PQgetlength(r, row, i));
  e->size += rowsize;
  settings *cfg = &e->s->cfg;
  if (cfg->row_size_limit > 0 && rowsize > (unsigned long long)cfg->row_size_limit) {
    apierr_set(&e->fail, 400, "UnsupportedResultException", "A row exceeds the size limit %lld bytes.",
               cfg->row_size_limit);
    return -1;
  }
  if (e->size > (unsigned long long)cfg->max_response_bytes) {
    long long lim = cfg->max_response_bytes;
    if (lim % 1048576 == 0)
      apierr_set(&e->fail, 400, "UnsupportedResultException", "The result exceeds the size limit %lld MB.",
                 lim / 1048576);
    else
      apierr_set(&e->fail, 400, "UnsupportedResultException", "The result exceeds the size limit %lld bytes.", lim);
    return -1;
  }
  int json = e->o.json;
  sbuf *b = json ? &e->inner : e->out;
  if (e->nrows_enc++) sb_putc(b, ',');
  sb_putc(b, json ? '{' : '[');
  for (int i = 0; i < e->ncols; i++) {
    if (i) sb_putc(b, ',');
    if (json) {
      sb_json_str(b, e->labels[i], strlen(e->labels[i]));
      sb_putc(b, ':');
    }
    if (PQgetisnull(r, row, i)) {
      sb_puts(b, json ? "null" : "{\"isNull\":true}");
      continue;
    }
    const char *v = PQgetvalue(r, row, i);
    size_t len = (size_t)PQgetlength(r, row, i);
    const typeinfo *t = &e->types[i];
    int rc = t->kind == K_ARRAY ? put_array(e, b, t->elem, v, !json) : put_scalar(e, b, t->kind, v, len, !json, 0);
    if (rc != 0) return -1;
  }
  sb_putc(b, json ? '}' : ']');
  if (b->oom) {
    apierr_set(&e->fail, 500, "InternalServerErrorException", "out of memory");
    return -1;
  }
  return 0;
}

/* pgjdbc's precision, scale and flags for a builtin type. */
static int display_size(Oid oid, int typmod) {
  int sec = typmod == -1 ? 7 : typmod == 0 ? 0 : typmod == 1 ? 3 : typmod + 1;
  switch (oid) {
  case 1082: return 13;
  case 1083: return 8 + sec;
  case 1266: return 8 + sec + 6;
  case 1114: return 13 + 1 + 8 + sec;
  case 1184: return 13 + 1 + 8 + sec + 6;
  default: return 2147483647;
  }
}

static int jdbc_precision(Oid oid, int typmod) {
  switch (oid) {
  case 21: return 5;
  case 23: case 26: return 10;
  case 20: return 19;
  case 700: return 8;
  case 701: return 17;
  case 1700: return typmod == -1 ? 0 : ((typmod - 4) >> 16) & 0xFFFF;
  case 18: case 16: return 1;
  case 1042: case 1043: return typmod == -1 ? 2147483647 : typmod - 4;
  case 1082: case 1083: case 1266: case 1114: case 1184: return display_size(oid, typmod);
  default: return 2147483647;
  }
}

static int jdbc_scale(Oid oid, int typmod) {
  switch (oid) {
  case 700: return 8;
  case 701: return 17;
  case 1700: return typmod == -1 ? 0 : (typmod - 4) & 0xFFFF;
  case 1083: case 1266: case 1114: case 1184: return typmod == -1 ? 6 : typmod;
  default: return 0;
  }
}

static int jdbc_case_sensitive(Oid oid) {
  switch (oid) {
  case 26: case 21: case 23: case 20: case 700: case 701: case 1700: case 16: case 1560: case 1562:
  case 1082: case 1083: case 1266: case 1114: case 1184: case 1186:
    return 0;
  default:
    return 1;
  }
}

static int jdbc_signed(Oid oid) {
  return oid == 21 || oid == 23 || oid == 20 || oid == 700 || oid == 701 || oid == 1700;
}

static const colmeta *meta_find(const dbconn *c, Oid rel, int att) {
  for (int i = 0; i < c->meta_count; i++)
    if (c->meta[i].rel == rel && c->meta[i].att == att) return &c->meta[i];
  return NULL;
}

static void meta_store(dbconn *c, Oid rel, int att, const char *relname, int notnull, int autoinc) {
  if (!c->meta) {
    c->meta = calloc(COLMETA_CACHE_SIZE, sizeof *c->meta);
    if (!c->meta) return; /* no cache: the next call asks the catalogue again */
  }
  colmeta *m = (colmeta *)meta_find(c, rel, att);
  if (!m) {
    m = &c->meta[c->meta_next];
    c->meta_next = (c->meta_next + 1) % COLMETA_CACHE_SIZE;
    if (c->meta_count < COLMETA_CACHE_SIZE) c->meta_count++;
  }
  m->rel = rel;
  m->att = att;
  m->notnull = notnull;
  m->autoinc = autoinc;
  snprintf(m->relname, sizeof m->relname, "%s", relname);
}

/* columnMetadata; base-column facts come from the catalogue on the same
 * session, once per column per session (the cache in dbconn). */
static void put_metadata(encoder *e, dbconn *c, sbuf *b) {
  PGconn *pg = c->pg;
  int n = e->ncols;
  int *notnull = calloc(n > 0 ? (size_t)n : 1, sizeof *notnull);
  int *autoinc = calloc(n > 0 ? (size_t)n : 1, sizeof *autoinc);
  char **tname = calloc(n > 0 ? (size_t)n : 1, sizeof *tname);
  sbuf rels = {0}, cols = {0};
  int any = 0;
  for (int i = 0; i < n; i++) {
    if (notnull) notnull[i] = -1;
    if (e->tables[i] && e->tablecols[i] > 0) {
      const colmeta *m = meta_find(c, e->tables[i], e->tablecols[i]);
      if (m && notnull && autoinc && tname) {
        notnull[i] = m->notnull;
        autoinc[i] = m->autoinc;
        tname[i] = xstrdup(m->relname);
        continue;
      }
      sb_printf(&rels, "%s%u", any ? "," : "{", e->tables[i]);
      sb_printf(&cols, "%s%d", any ? "," : "{", e->tablecols[i]);
      any = 1;
    }
  }
  if (any && notnull && autoinc && tname) {
    sb_putc(&rels, '}');
    sb_putc(&rels, '\0');
    sb_putc(&cols, '}');
    sb_putc(&cols, '\0');
    const char *vals[2] = {rels.p, cols.p};
    PGresult *r = rels.oom || cols.oom ? NULL : PQexecParams(pg,
        "SELECT c.oid, a.attnum, c.relname, a.attnotnull, "
        "COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE '%nextval(%', false) OR a.attidentity <> '' "
        "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE (a.attrelid, a.attnum) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.oid[]), pg_catalog.unnest($2::pg_catalog.int2[])))",
        2, NULL, vals, NULL, NULL, 0);
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK) {
      for (int row = 0; row < PQntuples(r); row++) {
        Oid rel = (Oid)strtoul(PQgetvalue(r, row, 0), NULL, 10);
        int att = atoi(PQgetvalue(r, row, 1));
        meta_store(c, rel, att, PQgetvalue(r, row, 2), PQgetvalue(r, row, 3)[0] == 't',
                   PQgetvalue(r, row, 4)[0] == 't');
        for (int i = 0; i < n; i++) {
          if (e->tables[i] == rel && e->tablecols[i] == att) {
            if (!tname[i]) tname[i] = xstrdup(PQgetvalue(r, row, 2));
            notnull[i] = PQgetvalue(r, row, 3)[0] == 't';
            autoinc[i] = PQgetvalue(r, row, 4)[0] == 't';
          }
        }
      }
    }
    PQclear(r);
  }
  sb_puts(b, ",\"columnMetadata\":[");
  for (int i = 0; i < n; i++) {
    const typeinfo *t = &e->types[i];
    Oid base = t->base;
    int tm = e->typmods[i];
    const char *typename = t->name;
    int ai = autoinc ? autoinc[i] : 0;
    if (ai && t->oid == 23) typename = "serial";
    else if (ai && t->oid == 20) typename = "bigserial";
    else if (ai && t->oid == 21) typename = "smallserial";
    int nullable = notnull && notnull[i] >= 0 ? (notnull[i] ? 0 : 1) : 2;
    const char *table = tname && tname[i] ? tname[i] : "";
    if (i) sb_putc(b, ',');
    sb_printf(b, "{\"arrayBaseColumnType\":0,\"isAutoIncrement\":%s,\"isCaseSensitive\":%s,\"isCurrency\":false,"
                 "\"isSigned\":%s,\"label\":",
              ai ? "true" : "false", jdbc_case_sensitive(base) ? "true" : "false", jdbc_signed(base) ? "true" : "false");
    sb_json_str(b, e->labels[i], strlen(e->labels[i]));
    sb_puts(b, ",\"name\":");
    sb_json_str(b, e->labels[i], strlen(e->labels[i]));
    sb_printf(b, ",\"nullable\":%d,\"precision\":%d,\"scale\":%d,\"schemaName\":\"\",\"tableName\":", nullable,
              jdbc_precision(base, t->kind == K_ARRAY ? -1 : tm), jdbc_scale(base, t->kind == K_ARRAY ? -1 : tm));
    sb_json_str(b, table, strlen(table));
    sb_printf(b, ",\"type\":%d,\"typeName\":", t->jdbc);
    sb_json_str(b, typename, strlen(typename));
    sb_putc(b, '}');
  }
  sb_putc(b, ']');
  for (int i = 0; i < n && tname; i++) free(tname[i]);
  free(tname);
  free(notnull);
  free(autoinc);
  sb_free(&rels);
  sb_free(&cols);
}

static long long affected_rows(const PGresult *r) {
  const char *tag = PQcmdStatus((PGresult *)r);
  if (!tag || strncmp(tag, "SELECT", 6) == 0 || strncmp(tag, "FETCH", 5) == 0 || strncmp(tag, "MOVE", 4) == 0)
    return 0;
  const char *n = PQcmdTuples((PGresult *)r);
  return n && *n ? atoll(n) : 0;
}

/* ---- background completion (continueAfterTimeout) ---- */

typedef struct {
  server *s;
  dbconn *c;
  txn *t;
} drain_job;

static int stopping(server *s) {
  pthread_mutex_lock(&s->pool_mu);
  int v = s->stopping;
  pthread_mutex_unlock(&s->pool_mu);
  return v;
}

static void *drain_main(void *arg) {
  drain_job *j = arg;
  server *s = j->s;
  PGconn *pg = j->c->pg;
  int cancelled = 0;
  for (;;) {
    int w = wait_ready(pg, mono_now() + 0.5);
    if (w == 1) {
      if (!cancelled && stopping(s)) {
        db_request_cancel(j->c);
        cancelled = 1;
      }
      continue;
    }
    if (w < 0) break;
    PGresult *r = PQgetResult(pg);
    if (!r) break;
    PQclear(r);
  }
  LOGD(&s->log, "a statement that outlived its call (continueAfterTimeout) finished");
  db_active(s, j->c, 0);
  if (j->t) tx_release(s, j->t);
  else db_release(s, j->c);
  pthread_mutex_lock(&s->tx_mu);
  s->drainers--;
  pthread_cond_broadcast(&s->tx_cv);
  pthread_mutex_unlock(&s->tx_mu);
  free(j);
  return NULL;
}

/* Hands a running statement over to a background thread; 0 when it did. */
static int detach_statement(server *s, dbconn *c, txn *t) {
  drain_job *j = malloc(sizeof *j);
  if (!j) return -1;
  j->s = s;
  j->c = c;
  j->t = t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_mutex_lock(&s->tx_mu);
  s->drainers++;
  pthread_mutex_unlock(&s->tx_mu);
  pthread_t th;
  int rc = pthread_create(&th, &attr, drain_main, j);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    pthread_mutex_lock(&s->tx_mu);
    s->drainers--;
    pthread_mutex_unlock(&s->tx_mu);
    free(j);
    return -1;
  }
  return 0;
}

static void statement_timeout(apierr *err, dbconn *c) {
  apierr_set(err, 400, "StatementTimeoutException", "Request timed out");
  err->db_connection_id = PQbackendPID(c->pg);
}

/* ---- ExecuteStatement ---- */

/* Runs one statement on c.  *detached is set when a background thread took c over. */
static int run_statement(server *s, dbconn *c, txn *t, const char *db, const sql_scan *scan, const binds *b,
                         result_opts o, int continue_after, sbuf *out, apierr *err, int *detached) {
  PGconn *pg = c->pg;
  double deadline = mono_now() + s->cfg.statement_timeout;
  *detached = 0;
  if (!PQsendQueryParams(pg, scan->sql, (int)b->n, b->types, b->values, b->lengths, b->formats, 0)) {
    db_error_from_conn(c, err);
    return -1;
  }
  PQsetSingleRowMode(pg);
  encoder e;
  memset(&e, 0, sizeof e);
  e.s = s;
  e.db = db;
  e.o = o;
  e.out = out;
  apierr dberr = {0};
  int timed_out = 0, lost = 0, tuples = 0;
  long long affected = 0;
  for (;;) {
    int w = wait_ready(pg, deadline);
    if (w == 1) {
      if (timed_out) { /* even the cancel did not stop it */
        lost = 1;
        c->cancelled = 1;
        break;
      }
      timed_out = 1;
      if (continue_after && detach_statement(s, c, t) == 0) {
        *detached = 1;
        enc_free(&e);
        apierr_clear(&dberr);
        statement_timeout(err, c);
        return -1;
      }
      db_request_cancel(c);
      deadline = mono_now() + 30;
      continue;
    }
    if (w < 0) {
      lost = 1;
      break;
    }
    PGresult *r = PQgetResult(pg);
    if (!r) break;
    switch (PQresultStatus(r)) {
    case PGRES_SINGLE_TUPLE:
    case PGRES_TUPLES_OK:
      tuples = 1;
      if (!e.fail.status && !timed_out) {
        if (!e.started) enc_start(&e, r);
        if (!e.fail.status && PQntuples(r) > 0) enc_row(&e, r, 0);
      }
      if (PQresultStatus(r) == PGRES_TUPLES_OK) affected = affected_rows(r);
      break;
    case PGRES_COMMAND_OK:
      affected = affected_rows(r);
      break;
    case PGRES_EMPTY_QUERY:
      break;
    case PGRES_COPY_IN:
      PQputCopyEnd(pg, "COPY FROM STDIN is not supported by the Data API");
      break;
    case PGRES_COPY_OUT: {
      char *buf;
      while (PQgetCopyData(pg, &buf, 0) > 0) PQfreemem(buf);
      if (!dberr.status) VALIDATION(&dberr, "COPY TO STDOUT is not supported by the Data API");
      break;
    }
    default:
      if (!dberr.status) db_error_from_result(r, &dberr);
      break;
    }
    PQclear(r);
  }
  int rc = -1;
  if (timed_out) {
    statement_timeout(err, c);
  } else if (e.fail.status) {
    *err = e.fail;
    memset(&e.fail, 0, sizeof e.fail);
  } else if (dberr.status) {
    if (stopping(s) && dberr.message && strstr(dberr.message, "SQLState: 57014")) {
      apierr_set(err, 503, "ServiceUnavailableError", "The service is stopping; the statement was cancelled.");
    } else {
      *err = dberr;
      memset(&dberr, 0, sizeof dberr);
    }
  } else if (lost || PQstatus(pg) != CONNECTION_OK) {
    db_error_from_conn(c, err);
  } else if (tuples && e.o.json) {
    if (!e.started) {
      sb_puts(&e.inner, "[");
    }
    sb_putc(&e.inner, ']');
    sb_puts(out, "{\"formattedRecords\":\"");
    sb_json_esc(out, e.inner.p ? e.inner.p : "", e.inner.len);
    sb_printf(out, "\",\"numberOfRecordsUpdated\":%lld}", affected);
    rc = 0;
  } else if (tuples) {
    if (!e.started) sb_puts(out, "{\"records\":[");
    sb_putc(out, ']');
    if (o.meta) put_metadata(&e, c, out);
    sb_printf(out, ",\"numberOfRecordsUpdated\":%lld}", affected);
    rc = 0;
  } else {
    sb_printf(out, "{\"generatedFields\":[],\"numberOfRecordsUpdated\":%lld}", affected);
    rc = 0;
  }
  if (rc == 0 && (out->oom || e.inner.oom)) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    rc = -1;
  }
  if (lost) c->cancelled = 1;
  enc_free(&e);
  apierr_clear(&dberr);
  return rc;
}

static const char *const LONG_TYPES[] = {"LONG", "STRING", NULL};
static const char *const DECIMAL_TYPES[] = {"STRING", "DOUBLE_OR_LONG", NULL};
static const char *const FORMATS[] = {"NONE", "JSON", NULL};

int op_execute(server *s, json_t *req, sbuf *out, apierr *err) {
  common cm;
  if (check_common(s, req, 1, 1, &cm, err) != 0) return -1;
  result_opts o = {0};
  int cont = 0, fmt = 0;
  if (get_bool(req, "includeResultMetadata", &o.meta, err) || get_bool(req, "continueAfterTimeout", &cont, err) ||
      get_enum(json_object_get(req, "formatRecordsAs"), "formatRecordsAs", FORMATS, 0, &fmt, err))
    return -1;
  o.json = fmt == 1;
  json_t *rso = json_object_get(req, "resultSetOptions");
  if (rso && !json_is_null(rso)) {
    if (!json_is_object(rso)) {
      VALIDATION(err, "1 validation error detected: Value at 'resultSetOptions' must be an object");
      return -1;
    }
    if (get_enum(json_object_get(rso, "longReturnType"), "resultSetOptions.longReturnType", LONG_TYPES, 0,
                 &o.long_as_string, err) ||
        get_enum(json_object_get(rso, "decimalReturnType"), "resultSetOptions.decimalReturnType", DECIMAL_TYPES, 0,
                 &o.decimal_dl, err))
      return -1;
  }
  sql_scan scan;
  if (sql_scan_run(cm.sql, strlen(cm.sql), &scan) != 0) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    return -1;
  }
  binds b;
  int rc = -1;
  if (binds_init(&b, scan.nnames) != 0) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    goto done;
  }
  if (scan.multi) {
    VALIDATION(err, "Multistatements aren't supported.");
    goto done;
  }
  if (bind_set(json_object_get(req, "parameters"), "parameters", 0, &scan, &b, err) != 0) goto done;

  txn *t = NULL;
  dbconn *c;
  const char *db = cm.database;
  if (cm.transaction_id) {
    t = tx_acquire(s, cm.transaction_id, err);
    if (!t) goto done;
    c = t->c;
    db = c->db;
  } else {
    c = db_acquire(s, db, err);
    if (!c) goto done;
  }
  int detached = 0;
  db_active(s, c, 1);
  rc = run_statement(s, c, t, db, &scan, &b, o, cont, out, err, &detached);
  if (!detached) {
    db_active(s, c, 0);
    if (t) tx_release(s, t);
    else db_release(s, c);
  }
done:
  binds_free(&b);
  sql_scan_free(&scan);
  return rc;
}

/* ---- BatchExecuteStatement ---- */

/* Reads every result that is ready; sets *synced when the pipeline's sync came back. */
static int drain_ready(PGconn *pg, int *in_cmd, int *synced, apierr *dberr) {
  while (!PQisBusy(pg)) {
    PGresult *r = PQgetResult(pg);
    if (!r) {
      if (*in_cmd) {
        *in_cmd = 0;
        continue;
      }
      return 0; /* nothing queued right now */
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      *synced = 1;
      return 0;
    }
    *in_cmd = 1;
    if (st == PGRES_FATAL_ERROR && !dberr->status) db_error_from_result(r, dberr);
    PQclear(r);
  }
  return 0;
}

static int run_batch(server *s, dbconn *c, int in_tx, const sql_scan *scan, json_t *sets, size_t nsets,
                     apierr *err) {
  PGconn *pg = c->pg;
  binds b;
  if (binds_init(&b, scan->nnames) != 0) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    return -1;
  }
  Oid *prepared = calloc(scan->nnames ? scan->nnames : 1, sizeof *prepared);
  if (!prepared || PQenterPipelineMode(pg) != 1 || PQsetnonblocking(pg, 1) != 0) {
    free(prepared);
    binds_free(&b);
    if (PQpipelineStatus(pg) != PQ_PIPELINE_OFF) PQexitPipelineMode(pg);
    apierr_set(err, 500, "InternalServerErrorException", "cannot start a pipeline");
    return -1;
  }
  double deadline = mono_now() + s->cfg.statement_timeout;
  apierr dberr = {0}, local = {0};
  int have_prepared = 0, sync_sent = 0, synced = 0, in_cmd = 0, timed_out = 0, lost = 0, congested = 0;
  size_t next = 0;
  if (!in_tx && !PQsendQueryParams(pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0)) lost = 1;
  while (!synced && !lost) {
    /* queue work while the socket takes it */
    while (!congested && !sync_sent && !lost) {
      if (next < nsets && !local.status) {
        if (bind_set(json_array_get(sets, next), "parameterSets", next + 1, scan, &b, &local) != 0) continue;
        if (!have_prepared || (scan->nnames && memcmp(prepared, b.types, scan->nnames * sizeof *prepared) != 0)) {
          if (!PQsendPrepare(pg, "", scan->sql, (int)b.n, b.types)) {
            lost = 1;
            break;
          }
          if (scan->nnames) memcpy(prepared, b.types, scan->nnames * sizeof *prepared);
          have_prepared = 1;
        }
        if (!PQsendQueryPrepared(pg, "", (int)b.n, b.values, b.lengths, b.formats, 0)) {
          lost = 1;
          break;
        }
        next++;
      } else {
        if (!in_tx && !PQsendQueryParams(pg, local.status ? "ROLLBACK" : "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) {
          lost = 1;
          break;
        }
        if (!PQpipelineSync(pg)) {
          lost = 1;
          break;
        }
        sync_sent = 1;
      }
      /* hand the server work in batches: one send per row would cost a wake-up per row */
      if (sync_sent || next % 128 == 0) {
        int f = PQflush(pg);
        if (f < 0) lost = 1;
        congested = f == 1;
        if (!PQconsumeInput(pg)) lost = 1;
        drain_ready(pg, &in_cmd, &synced, &dberr);
      }
    }
    if (lost || synced) break;
    /* wait for the server */
    double left = deadline - mono_now();
    if (left <= 0) {
      if (timed_out) {
        lost = 1;
        break;
      }
      timed_out = 1;
      db_request_cancel(c);
      deadline = mono_now() + 30;
      continue;
    }
    struct pollfd pfd = {PQsocket(pg), (short)(POLLIN | (congested ? POLLOUT : 0)), 0};
    int ms = left > 1 ? 1000 : (int)(left * 1000) + 1;
    int r = poll(&pfd, 1, ms);
    if (r < 0 && errno != EINTR) {
      lost = 1;
      break;
    }
    if (r > 0) {
      if (pfd.revents & (POLLOUT | POLLERR | POLLHUP)) {
        int f = PQflush(pg);
        if (f < 0) lost = 1;
        congested = f == 1;
      }
      if (!PQconsumeInput(pg)) lost = 1;
      drain_ready(pg, &in_cmd, &synced, &dberr);
    }
  }
  if (!lost) {
    PQexitPipelineMode(pg);
    PQsetnonblocking(pg, 0);
  } else {
    c->cancelled = 1; /* the session's state is unknown: never reuse it */
  }
  int rc = -1;
  if (timed_out) statement_timeout(err, c);
  else if (local.status) *err = local, memset(&local, 0, sizeof local);
  else if (dberr.status) *err = dberr, memset(&dberr, 0, sizeof dberr);
  else if (lost) db_error_from_conn(c, err);
  else rc = 0;
  apierr_clear(&local);
  apierr_clear(&dberr);
  free(prepared);
  binds_free(&b);
  return rc;
}

int op_batch(server *s, json_t *req, sbuf *out, apierr *err) {
  common cm;
  if (check_common(s, req, 1, 1, &cm, err) != 0) return -1;
  json_t *sets = json_object_get(req, "parameterSets");
  if (sets && json_is_null(sets)) sets = NULL;
  if (sets && !json_is_array(sets)) {
    VALIDATION(err, "1 validation error detected: Value at 'parameterSets' failed to satisfy constraint: "
                    "Member must be a list");
    return -1;
  }
  size_t nsets = sets ? json_array_size(sets) : 0;
  for (size_t i = 0; i < nsets; i++) {
    json_t *set = json_array_get(sets, i);
    if (!json_is_array(set)) {
      VALIDATION(err, "1 validation error detected: Value at 'parameterSets.%zu' failed to satisfy constraint: "
                      "Member must be a list", i + 1);
      return -1;
    }
  }
  sql_scan scan;
  if (sql_scan_run(cm.sql, strlen(cm.sql), &scan) != 0) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    return -1;
  }
  int rc = -1;
  binds b = {0};
  if (scan.multi) {
    VALIDATION(err, "Multistatements aren't supported.");
    goto done;
  }
  /* every set is checked before anything runs */
  if (binds_init(&b, scan.nnames) != 0) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    goto done;
  }
  for (size_t i = 0; i < nsets; i++) {
    if (bind_set(json_array_get(sets, i), "parameterSets", i + 1, &scan, &b, err) != 0) goto done;
  }
  binds_free(&b);

  txn *t = NULL;
  dbconn *c = NULL;
  if (cm.transaction_id) {
    t = tx_acquire(s, cm.transaction_id, err);
    if (!t) goto done;
    c = t->c;
  } else if (nsets > 0) {
    c = db_acquire(s, cm.database, err);
    if (!c) goto done;
  }
  if (nsets > 0) {
    db_active(s, c, 1);
    rc = run_batch(s, c, t != NULL, &scan, sets, nsets, err);
    db_active(s, c, 0);
  } else {
    rc = 0;
  }
  if (t) tx_release(s, t);
  else if (c) db_release(s, c);
  if (rc == 0) {
    sb_puts(out, "{\"updateResults\":[");
    for (size_t i = 0; i < nsets; i++) sb_puts(out, i ? ",{\"generatedFields\":[]}" : "{\"generatedFields\":[]}");
    sb_puts(out, "]}");
    if (out->oom) {
      apierr_set(err, 500, "InternalServerErrorException", "out of memory");
      rc = -1;
    }
  }
done:
  binds_free(&b);
  sql_scan_free(&scan);
  return rc;
}

/* ---- transactions ---- */

int op_begin(server *s, json_t *req, sbuf *out, apierr *err) {
  common cm;
  if (check_common(s, req, 0, 0, &cm, err) != 0) return -1;
  dbconn *c = db_acquire(s, cm.database, err);
  if (!c) return -1;
  PGresult *r = PQexec(c->pg, "BEGIN");
  if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
    if (r) db_error_from_result(r, err);
    else db_error_from_conn(c, err);
    PQclear(r);
    db_release(s, c);
    return -1;
  }
  PQclear(r);
  txn *t = tx_begin(s, c, err);
  if (!t) {
    db_release(s, c);
    return -1;
  }
  sb_printf(out, "{\"transactionId\":\"%s\"}", t->id);
  return 0;
}

int op_end(server *s, json_t *req, int commit, sbuf *out, apierr *err) {
  common cm;
  if (check_common(s, req, 0, 2, &cm, err) != 0) return -1;
  txn *t = tx_take(s, cm.transaction_id, err);
  if (!t) return -1;
  PGconn *pg = t->c->pg;
  int rc = -1;
  db_active(s, t->c, 1);
  PGresult *r = PQexec(pg, commit ? "COMMIT" : "ROLLBACK");
  db_active(s, t->c, 0);
  if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
    if (r) db_error_from_result(r, err);
    else db_error_from_conn(t->c, err);
  } else if (commit && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
    /* COMMIT of a failed transaction: PostgreSQL rolled it back instead */
    apierr_set(err, 400, "DatabaseErrorException",
               "ERROR: current transaction is aborted, commands ignored until end of transaction block; "
               "SQLState: 25P02");
  } else {
    sb_printf(out, "{\"transactionStatus\":\"%s\"}", commit ? "Transaction Committed" : "Rollback Complete");
    rc = 0;
  }
  PQclear(r);
  tx_finish(s, t, rc == 0);
  return rc;
}
