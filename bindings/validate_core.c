#include "validate_core.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const regions[] = {
  "north_america", "europe", "asia", "latin_america", "africa", "middle_east",
  "oceania", "global", "international", NULL,
};
static const char *const sectors[] = {
  "technology", "healthcare", "financials", "consumer_discretionary", "consumer_staples",
  "industrials", "energy", "materials", "utilities", "real_estate", "communication",
  "treasury", "corporate", "mortgage", "government_related", "commodities", "diversified",
  "other", NULL,
};
static const char *const asset_classes[] = {
  "equity", "fixed_income", "real_estate", "commodities", "cash", "alternatives", NULL,
};
static const char *const instrument_types[] = {
  "etf", "mutual_fund", "stock", "bond", "bond_fund", "commodity", "reit", NULL,
};

static const char *const *const sets[VALIDATE_SET_COUNT] = {
  regions, sectors, asset_classes, instrument_types,
};

static const char *const kind_names[VALIDATE_KIND_COUNT] = {"regions", "sectors", "asset_class"};
static const validate_set kind_sets[VALIDATE_KIND_COUNT] = {
  VALIDATE_SET_REGIONS, VALIDATE_SET_SECTORS, VALIDATE_SET_ASSET_CLASSES,
};

#define SUM_TARGET 100.0
#define SUM_TOLERANCE 0.05
#define SUM_SLACK 1e-9 /* binary rounding of decimal inputs such as 99.95 */
#define QUOTE_MAX 60   /* longer strings are cut in messages */

const char *const *validate_set_names(validate_set set) {
  if ((int)set < 0 || set >= VALIDATE_SET_COUNT) return NULL;
  return sets[set];
}

int validate_set_lookup(const char *name) {
  if (name == NULL) return -1;
  if (strcmp(name, "regions") == 0) return VALIDATE_SET_REGIONS;
  if (strcmp(name, "sectors") == 0) return VALIDATE_SET_SECTORS;
  if (strcmp(name, "asset_classes") == 0 || strcmp(name, "asset_class") == 0)
    return VALIDATE_SET_ASSET_CLASSES;
  if (strcmp(name, "instrument_types") == 0) return VALIDATE_SET_INSTRUMENT_TYPES;
  return -1;
}

int validate_is_member(validate_set set, const char *s, size_t len) {
  const char *const *names = validate_set_names(set);
  if (names == NULL || s == NULL) return 0;
  for (; *names; names++)
    if (strlen(*names) == len && memcmp(*names, s, len) == 0) return 1;
  return 0;
}

int validate_kind_lookup(const char *name) {
  if (name == NULL) return -1;
  for (int k = 0; k < VALIDATE_KIND_COUNT; k++)
    if (strcmp(name, kind_names[k]) == 0) return k;
  return -1;
}

const char *validate_kind_name(validate_kind kind) {
  if ((int)kind < 0 || kind >= VALIDATE_KIND_COUNT) return NULL;
  return kind_names[kind];
}

/* ---------- message building ---------- */

typedef struct {
  char *data;
  size_t len, cap;
  int oom;
} buf;

static int buf_reserve(buf *b, size_t extra) {
  if (b->oom) return -1;
  if (extra > (size_t)-1 - b->len - 1) {
    b->oom = 1;
    return -1;
  }
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 128;
  while (cap < need) cap = cap > (size_t)-1 / 2 ? need : cap * 2;
  char *p = realloc(b->data, cap);
  if (p == NULL) {
    b->oom = 1;
    return -1;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

static void buf_add(buf *b, const char *s, size_t len) {
  if (buf_reserve(b, len) != 0) return;
  memcpy(b->data + b->len, s, len);
  b->len += len;
  b->data[b->len] = '\0';
}

static void buf_adds(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_number(buf *b, double x) {
  char tmp[64];
  if (isnan(x)) snprintf(tmp, sizeof tmp, "nan");
  else if (isinf(x)) snprintf(tmp, sizeof tmp, "%s", x < 0 ? "-inf" : "inf");
  else snprintf(tmp, sizeof tmp, "%.14g", x);
  buf_adds(b, tmp);
}

/* "text" with quotes, backslashes and control bytes escaped, cut at QUOTE_MAX bytes. */
static void buf_quoted(buf *b, const char *s, size_t len) {
  buf_add(b, "\"", 1);
  size_t shown = len > QUOTE_MAX ? QUOTE_MAX : len;
  for (size_t i = 0; i < shown; i++) {
    unsigned char c = (unsigned char)s[i];
    char tmp[8];
    if (c == '"' || c == '\\') {
      tmp[0] = '\\';
      tmp[1] = (char)c;
      buf_add(b, tmp, 2);
    } else if (c == '\n') buf_add(b, "\\n", 2);
    else if (c == '\t') buf_add(b, "\\t", 2);
    else if (c == '\r') buf_add(b, "\\r", 2);
    else if (c < 0x20 || c == 0x7f) {
      snprintf(tmp, sizeof tmp, "\\x%02x", c);
      buf_adds(b, tmp);
    } else buf_add(b, (const char *)&s[i], 1);
  }
  if (shown < len) buf_add(b, "...", 3);
  buf_add(b, "\"", 1);
}

static void buf_key(buf *b, const validate_entry *e) {
  if (e->key_is_string) {
    buf_quoted(b, e->key, e->key_len);
  } else {
    buf_add(b, "[", 1);
    buf_add(b, e->key, e->key_len);
    buf_add(b, "]", 1);
  }
}

static void buf_value(buf *b, const validate_entry *e) {
  switch (e->value_type) {
    case VALIDATE_VALUE_NUMBER: buf_number(b, e->number); break;
    case VALIDATE_VALUE_STRING: buf_quoted(b, e->str, e->str_len); break;
    default: buf_adds(b, e->str ? e->str : "?"); break;
  }
}

static void buf_problem(buf *b, int *count) {
  if ((*count)++ > 0) buf_add(b, "; ", 2);
}

/* One problem with entry e: before, its key, middle, its value, after. */
static void buf_entry_problem(buf *b, int *count, const validate_entry *e, const char *before, const char *middle,
                              const char *after) {
  buf_problem(b, count);
  buf_adds(b, before);
  buf_key(b, e);
  buf_adds(b, middle);
  buf_value(b, e);
  buf_adds(b, after);
}

/* Finishes b into *msg: 1 when it holds a message, -1 when out of memory. */
static int buf_finish(buf *b, char **msg) {
  if (b->oom || b->data == NULL) {
    free(b->data);
    *msg = NULL;
    return -1;
  }
  *msg = b->data;
  return 1;
}

/* ---------- the rules ---------- */

static int compare_entries(const void *pa, const void *pb) {
  const validate_entry *a = *(const validate_entry *const *)pa;
  const validate_entry *b = *(const validate_entry *const *)pb;
  if (a->key_is_string != b->key_is_string) return a->key_is_string ? -1 : 1;
  size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
  int c = n ? memcmp(a->key, b->key, n) : 0;
  if (c != 0) return c;
  return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

int validate_not_a_map(validate_kind kind, const char *what, char **msg) {
  buf b = {0};
  buf_adds(&b, validate_kind_name(kind) ? validate_kind_name(kind) : "allocation");
  buf_adds(&b, ": expected a table of percentages, got ");
  buf_adds(&b, what ? what : "nothing");
  return buf_finish(&b, msg);
}

int validate_allocation(const validate_entry *entries, size_t n, validate_kind kind, char **msg) {
  *msg = NULL;
  const char *kind_name = validate_kind_name(kind);
  if (kind_name == NULL) return -1;
  buf b = {0};
  buf_adds(&b, kind_name);
  buf_adds(&b, ": ");
  if (n == 0) {
    buf_adds(&b, "empty table, expected percentages summing to 100");
    return buf_finish(&b, msg);
  }
  const validate_entry **order =
      n > (size_t)-1 / sizeof(const validate_entry *) ? NULL : malloc(n * sizeof *order);
  if (order == NULL) {
    free(b.data);
    return -1;
  }
  for (size_t i = 0; i < n; i++) order[i] = &entries[i];
  qsort(order, n, sizeof *order, compare_entries);

  validate_set set = kind_sets[kind];
  int problems = 0, all_numbers = 1;
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) {
    const validate_entry *e = order[i];
    if (!e->key_is_string) {
      buf_entry_problem(&b, &problems, e, "key ", " is not a string (value ", ")");
    } else if (!validate_is_member(set, e->key, e->key_len)) {
      buf_entry_problem(&b, &problems, e, "unknown key ", " (value ", ")");
    }
    if (e->value_type != VALIDATE_VALUE_NUMBER) {
      all_numbers = 0;
      int is_string = e->value_type == VALIDATE_VALUE_STRING;
      buf_entry_problem(&b, &problems, e, "value of ", is_string ? " is a string (" : " is ",
                        is_string ? "), not a number" : ", not a number");
    } else if (!isfinite(e->number)) {
      all_numbers = 0;
      buf_entry_problem(&b, &problems, e, "value of ", " is ", ", not a finite number");
    } else {
      sum += e->number;
      if (e->number < 0.0 || e->number > 100.0)
        buf_entry_problem(&b, &problems, e, "value of ", " is ", ", not in [0, 100]");
    }
  }
  free(order);
  if (all_numbers && !(fabs(sum - SUM_TARGET) <= SUM_TOLERANCE + SUM_SLACK)) {
    buf_problem(&b, &problems);
    buf_adds(&b, "values sum to ");
    buf_number(&b, sum);
    buf_adds(&b, ", not 100 (\xc2\xb1" "0.05)");
  }
  if (problems == 0) {
    free(b.data);
    return 0;
  }
  return buf_finish(&b, msg);
}
