/* Value encoding: each PostgreSQL value in the Field form the Data API
 * answers with (or plain JSON for formattedRecords), the size limits measured
 * as PostgreSQL's DataRow payloads. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "encode.h"

void enc_free(encoder *e) {
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

int enc_start(encoder *e, const PGresult *r) {
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

int enc_row(encoder *e, const PGresult *r, int row) {
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
