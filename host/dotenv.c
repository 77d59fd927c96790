#include "dotenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *data;
  size_t len, cap;
} strbuf;

static int sb_putc(strbuf *sb, char c) {
  if (sb->len + 1 >= sb->cap) {
    size_t cap = sb->cap ? sb->cap * 2 : 64;
    char *p = realloc(sb->data, cap);
    if (!p) return -1;
    sb->data = p;
    sb->cap = cap;
  }
  sb->data[sb->len++] = c;
  sb->data[sb->len] = '\0';
  return 0;
}

static int is_key_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
static int is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9') || c == '.'; }
static int is_blank(char c) { return c == ' ' || c == '\t'; }

struct parser {
  const char *p, *end;
  int line;
  char *err;
  size_t errlen;
};

static int fail(struct parser *ps, const char *msg) {
  snprintf(ps->err, ps->errlen, "%s", msg);
  return -1;
}

static void skip_blanks(struct parser *ps) {
  while (ps->p < ps->end && is_blank(*ps->p)) ps->p++;
}

/* After a value: only blanks, an optional comment, then end of line. */
static int finish_line(struct parser *ps) {
  skip_blanks(ps);
  if (ps->p < ps->end && *ps->p == '#')
    while (ps->p < ps->end && *ps->p != '\n') ps->p++;
  if (ps->p < ps->end && *ps->p == '\r') ps->p++;
  if (ps->p < ps->end && *ps->p != '\n') return fail(ps, "unexpected text after the closing quote");
  if (ps->p < ps->end) ps->p++;
  return 0;
}

static int parse_quoted(struct parser *ps, strbuf *val) {
  char q = *ps->p++;
  int start_line = ps->line;
  while (ps->p < ps->end && *ps->p != q) {
    char c = *ps->p++;
    if (c == '\n') ps->line++;
    if (c == '\\' && q == '"' && ps->p < ps->end) {
      char e = *ps->p++;
      switch (e) {
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case '"': case '\\': case '$': c = e; break;
        default:
          if (sb_putc(val, '\\') < 0) return fail(ps, "out of memory");
          c = e;
          if (c == '\n') ps->line++;
      }
    }
    if (sb_putc(val, c) < 0) return fail(ps, "out of memory");
  }
  if (ps->p >= ps->end) {
    ps->line = start_line;
    return fail(ps, q == '"' ? "unterminated double-quoted value" : "unterminated single-quoted value");
  }
  ps->p++;
  return finish_line(ps);
}

static int parse_unquoted(struct parser *ps, strbuf *val) {
  const char *start = ps->p;
  while (ps->p < ps->end && *ps->p != '\n') {
    if (*ps->p == '#' && (ps->p == start || is_blank(ps->p[-1]))) break;
    ps->p++;
  }
  const char *stop = ps->p;
  while (stop > start && (is_blank(stop[-1]) || stop[-1] == '\r')) stop--;
  for (const char *c = start; c < stop; c++) {
    if (*c == '"' || *c == '\'') return fail(ps, "quote inside an unquoted value (quote the whole value)");
    if (sb_putc(val, *c) < 0) return fail(ps, "out of memory");
  }
  while (ps->p < ps->end && *ps->p != '\n') ps->p++;
  if (ps->p < ps->end) ps->p++;
  return 0;
}

int dotenv_parse(const char *buf, size_t len, dotenv_callback cb, void *ud,
                 int *err_line, char *err, size_t errlen) {
  struct parser ps = {buf, buf + len, 1, err, errlen};
  strbuf key = {0}, val = {0};
  int rc = 0;

  /* Values reach setenv() and Lua as C strings: a NUL byte would cut one
   * short without a word.  A text file has none, so refuse the file at the
   * line holding the first, before any variable is set. */
  const char *nul = memchr(buf, '\0', len);
  if (nul) {
    for (const char *c = buf; c < nul; c++) ps.line += *c == '\n';
    rc = fail(&ps, "NUL byte in the file (a value would be cut short at it)");
    goto done;
  }

  while (ps.p < ps.end) {
    int line = ps.line;
    skip_blanks(&ps);
    if (ps.p >= ps.end) break;
    if (*ps.p == '\n' || *ps.p == '\r' || *ps.p == '#') {
      while (ps.p < ps.end && *ps.p != '\n') ps.p++;
      if (ps.p < ps.end) ps.p++;
      ps.line++;
      continue;
    }
    if ((size_t)(ps.end - ps.p) > 7 && memcmp(ps.p, "export", 6) == 0 && is_blank(ps.p[6])) {
      ps.p += 6;
      skip_blanks(&ps);
    }
    key.len = 0;
    val.len = 0;
    if (ps.p >= ps.end || !is_key_start(*ps.p)) {
      rc = fail(&ps, "expected KEY=VALUE (a key starts with a letter or _)");
      goto done;
    }
    while (ps.p < ps.end && is_key_char(*ps.p))
      if (sb_putc(&key, *ps.p++) < 0) { rc = fail(&ps, "out of memory"); goto done; }
    skip_blanks(&ps);
    if (ps.p >= ps.end || *ps.p != '=') {
      rc = fail(&ps, "expected '=' after the key");
      goto done;
    }
    ps.p++;
    skip_blanks(&ps);
    if (sb_putc(&val, '\0') < 0) { rc = fail(&ps, "out of memory"); goto done; }
    val.len = 0;
    if (ps.p < ps.end && (*ps.p == '"' || *ps.p == '\''))
      rc = parse_quoted(&ps, &val);
    else
      rc = parse_unquoted(&ps, &val);
    if (rc != 0) goto done;
    rc = cb(ud, key.data, val.data);
    if (rc != 0) goto done;
    (void)line;
    ps.line++;
  }
done:
  if (rc == -1 && err_line) *err_line = ps.line;
  free(key.data);
  free(val.data);
  return rc;
}
