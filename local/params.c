/* Parameter binding: each SqlParameter checked and turned into a libpq
 * parameter with an explicit type OID, so PostgreSQL types it, not us. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "request.h"

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

int binds_init(binds *b, size_t n) {
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

void binds_free(binds *b) {
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
int bind_set(json_t *params, const char *list, size_t set, const sql_scan *scan, binds *b, apierr *err) {
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
