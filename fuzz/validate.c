/*
 * libFuzzer harness: allocation validation (bindings/validate_core.c), the
 * rules behind alex.validate.
 *
 * Input, as text so that seeds are readable:
 *   line 1: the kind ("regions", "sectors", "asset_class"; anything else picks
 *           one from its first byte)
 *   then one entry per line, KEY=VALUE:
 *     KEY   "[text]" is a non-string key shown as text, else a string key
 *     VALUE "\"text" is a string, a number strtod reads whole is a number
 *           (nan and inf included), anything else names another type
 * Repeated keys are dropped (a Lua table cannot hold them).
 *
 * Checked: the result is 0, or 1 with a message starting "<kind>: "; it does
 * not depend on the order of the entries (the documented stable order); a
 * valid allocation has only known keys and finite values in [0, 100];
 * validate_not_a_map answers the documented text.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate_core.h"

#include "check.h"

#define MAX_ENTRIES 256

static int same_key(const validate_entry *a, const validate_entry *b) {
  return a->key_is_string == b->key_is_string && a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1);
  validate_entry *e = calloc(MAX_ENTRIES, sizeof *e), *r = calloc(MAX_ENTRIES, sizeof *r);
  if (!buf || !e || !r) goto out;
  memcpy(buf, data, size);
  buf[size] = '\0';

  char *line = buf, *end = buf + size;
  char *nl = memchr(line, '\n', size);
  if (nl) *nl = '\0';
  int kind = validate_kind_lookup(line);
  if (kind < 0) kind = size ? data[0] % VALIDATE_KIND_COUNT : 0;
  CHECK(validate_kind_name((validate_kind)kind) != NULL);
  (void)validate_set_lookup(line);

  size_t n = 0;
  line = nl ? nl + 1 : end;
  while (line < end && n < MAX_ENTRIES) {
    nl = memchr(line, '\n', (size_t)(end - line));
    char *le = nl ? nl : end;
    *le = '\0';
    char *eq = memchr(line, '=', (size_t)(le - line));
    if (eq) {
      validate_entry *x = &e[n];
      memset(x, 0, sizeof *x);
      size_t kl = (size_t)(eq - line);
      if (kl >= 2 && line[0] == '[' && line[kl - 1] == ']') {
        x->key_is_string = 0;
        x->key = line + 1;
        x->key_len = kl - 2;
      } else {
        x->key_is_string = 1;
        x->key = line;
        x->key_len = kl;
      }
      char *v = eq + 1;
      size_t vl = (size_t)(le - v);
      char *stop = NULL;
      double d = vl ? strtod(v, &stop) : 0;
      if (vl && v[0] == '"') {
        x->value_type = VALIDATE_VALUE_STRING;
        x->str = v + 1;
        x->str_len = vl - 1;
      } else if (vl && stop == le) {
        x->value_type = VALIDATE_VALUE_NUMBER;
        x->number = d;
      } else {
        x->value_type = VALIDATE_VALUE_OTHER;
        x->str = v;
        x->str_len = vl;
      }
      int dup = 0;
      for (size_t j = 0; j < n && !dup; j++) dup = same_key(&e[j], x);
      if (!dup) n++;
    }
    line = nl ? nl + 1 : end;
  }

  char *msg = NULL, *msg2 = NULL;
  int rc = validate_allocation(e, n, (validate_kind)kind, &msg);
  if (rc == -1) goto out; /* out of memory */
  CHECK(rc == 0 || rc == 1);
  const char *kname = validate_kind_name((validate_kind)kind);
  if (rc == 1) {
    CHECK(msg != NULL);
    CHECK(strncmp(msg, kname, strlen(kname)) == 0 && strncmp(msg + strlen(kname), ": ", 2) == 0);
  } else {
    CHECK(msg == NULL && n > 0);
    validate_set set = kind == VALIDATE_KIND_REGIONS   ? VALIDATE_SET_REGIONS
                       : kind == VALIDATE_KIND_SECTORS ? VALIDATE_SET_SECTORS
                                                       : VALIDATE_SET_ASSET_CLASSES;
    for (size_t i = 0; i < n; i++) {
      CHECK(e[i].key_is_string && validate_is_member(set, e[i].key, e[i].key_len));
      CHECK(e[i].value_type == VALIDATE_VALUE_NUMBER && isfinite(e[i].number));
      CHECK(e[i].number >= 0 && e[i].number <= 100);
    }
  }

  /* the same entries in reverse order give the same answer */
  for (size_t i = 0; i < n; i++) r[i] = e[n - 1 - i];
  int rc2 = validate_allocation(r, n, (validate_kind)kind, &msg2);
  if (rc2 != -1) {
    CHECK(rc2 == rc);
    CHECK((msg == NULL) == (msg2 == NULL));
    if (msg) CHECK(strcmp(msg, msg2) == 0);
  }
  free(msg);
  free(msg2);

  msg = NULL;
  rc = validate_not_a_map((validate_kind)kind, buf, &msg);
  if (rc == 1) {
    CHECK(strncmp(msg, kname, strlen(kname)) == 0);
    CHECK(strstr(msg, ": expected a table of percentages, got ") != NULL);
  } else {
    CHECK(rc == -1 && msg == NULL);
  }
  free(msg);
out:
  free(buf);
  free(e);
  free(r);
  return 0;
}
