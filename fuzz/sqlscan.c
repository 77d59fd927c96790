/*
 * libFuzzer harness: alex-dataapi's placeholder rewriting and multi-statement
 * detection (local/sqlscan.c).  Input: the SQL text of a request.
 *
 * Checked: the output is NUL-terminated at sql_len; without names the SQL is
 * unchanged; every name is a distinct [A-Za-z_][A-Za-z0-9_]* that occurs as
 * ":name" in the input, and each $n (n = 1..nnames) occurs in the output;
 * `multi` and `empty` exclude each other; a prefix of blanks and comments
 * changes none of names, multi, empty; the scan is deterministic.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlscan.h"

#include "check.h"

static int is_name_start(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
static int is_name_char(unsigned char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

static int contains(const char *hay, size_t hl, const char *needle, size_t nl) {
  if (nl > hl) return 0;
  for (size_t i = 0; i + nl <= hl; i++)
    if (memcmp(hay + i, needle, nl) == 0) return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536 * 4) return 0; /* the service refuses sql over 65536 characters */
  char *in = malloc(size ? size : 1);
  if (!in) return 0;
  if (size) memcpy(in, data, size);
  sql_scan s;
  if (sql_scan_run(in, size, &s) != 0) {
    free(in);
    return 0; /* out of memory */
  }
  CHECK(s.sql && s.sql[s.sql_len] == '\0');
  CHECK(!(s.multi && s.empty));
  if (s.nnames == 0) {
    CHECK(s.sql_len == size && memcmp(s.sql, in, size) == 0);
  } else {
    CHECK(s.names);
  }
  for (size_t k = 0; k < s.nnames; k++) {
    const char *n = s.names[k];
    size_t nl = strlen(n);
    CHECK(nl > 0 && is_name_start((unsigned char)n[0]));
    for (size_t i = 1; i < nl; i++) CHECK(is_name_char((unsigned char)n[i]));
    for (size_t j = 0; j < k; j++) CHECK(strcmp(s.names[j], n) != 0);
    char tmp[300];
    if (nl < 200) {
      tmp[0] = ':';
      memcpy(tmp + 1, n, nl);
      CHECK(contains(in, size, tmp, nl + 1));
    }
    int tl = snprintf(tmp, sizeof tmp, "$%zu", k + 1);
    CHECK(contains(s.sql, s.sql_len, tmp, (size_t)tl));
  }

  /* determinism, and a prefix of blanks and comments changes nothing */
  static const char pre[] = " \n/* a /* nested */ comment */ -- line\n";
  char *wrapped = malloc(sizeof pre - 1 + size + 1);
  if (wrapped) {
    sql_scan a, b;
    if (sql_scan_run(in, size, &a) == 0) {
      CHECK(a.sql_len == s.sql_len && memcmp(a.sql, s.sql, s.sql_len) == 0);
      CHECK(a.nnames == s.nnames && a.multi == s.multi && a.empty == s.empty);
      sql_scan_free(&a);
    }
    memcpy(wrapped, pre, sizeof pre - 1);
    if (size) memcpy(wrapped + sizeof pre - 1, in, size);
    if (sql_scan_run(wrapped, sizeof pre - 1 + size, &b) == 0) {
      CHECK(b.nnames == s.nnames && b.multi == s.multi && b.empty == s.empty);
      sql_scan_free(&b);
    }
    free(wrapped);
  }
  sql_scan_free(&s);
  CHECK(s.sql == NULL && s.names == NULL && s.nnames == 0);
  free(in);
  return 0;
}
