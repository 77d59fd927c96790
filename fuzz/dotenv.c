/*
 * libFuzzer harness: the .env parser (host/dotenv.c), as alexlua reads ./.env
 * and alex-dataapi reads --config.  Input: the file's bytes.
 *
 * Checked: every key handed to the callback matches [A-Za-z_][A-Za-z0-9_.]*;
 * a callback's non-zero return stops the parse and comes back unchanged
 * (the harness returns 7 at a key named STOP); a malformed file gives -1 with
 * a message and a line number within the file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotenv.h"

#include "check.h"

typedef struct {
  size_t calls;
  int stopped;
} state;

static int is_key_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
static int is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9') || c == '.'; }

static int on_pair(void *ud, const char *key, const char *value) {
  state *st = ud;
  CHECK(!st->stopped);
  CHECK(key && value);
  CHECK(is_key_start(key[0]));
  for (const char *k = key + 1; *k; k++) CHECK(is_key_char(*k));
  (void)strlen(value); /* readable to its NUL */
  st->calls++;
  if (strcmp(key, "STOP") == 0) {
    st->stopped = 1;
    return 7;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* a copy of exactly size bytes, so a read past the end is caught */
  char *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  if (size) memcpy(buf, data, size);
  size_t lines = 1;
  for (size_t i = 0; i < size; i++) lines += buf[i] == '\n';
  state st = {0, 0};
  int line = 0;
  char err[128] = "";
  int rc = dotenv_parse(buf, size, on_pair, &st, &line, err, sizeof err);
  if (rc == 7) {
    CHECK(st.stopped);
  } else if (rc == -1) {
    CHECK(err[0] != '\0');
    CHECK(line >= 1 && (size_t)line <= lines);
  } else {
    CHECK(rc == 0 && !st.stopped);
  }
  /* a tiny error buffer truncates, never overflows */
  char small[4];
  state st2 = {0, 0};
  int rc2 = dotenv_parse(buf, size, on_pair, &st2, NULL, small, sizeof small);
  CHECK(rc2 == rc && st2.calls == st.calls);
  free(buf);
  return 0;
}
