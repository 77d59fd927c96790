#include "sqlscan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int is_ident_start(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c >= 0x80;
}
static int is_ident_char(unsigned char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}
static int is_name_start(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
static int is_name_char(unsigned char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
static int is_blank(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* i is at the opening quote; returns the index after the closing one (n when
 * unterminated: PostgreSQL reports that). */
static size_t skip_quoted(const char *s, size_t n, size_t i, char q, int backslash) {
  i++;
  while (i < n) {
    char c = s[i];
    if (backslash && c == '\\') {
      i += 2;
      continue;
    }
    if (c == q) {
      if (i + 1 < n && s[i + 1] == q) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return n;
}

static size_t skip_block_comment(const char *s, size_t n, size_t i) {
  int depth = 0;
  while (i < n) {
    if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
      depth++;
      i += 2;
    } else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
      depth--;
      i += 2;
      if (depth == 0) return i;
    } else {
      i++;
    }
  }
  return n;
}

/* Length of a dollar-quote opening tag ("$$", "$tag$") at i, or 0. */
static size_t dollar_tag(const char *s, size_t n, size_t i) {
  if (i > 0 && is_ident_char((unsigned char)s[i - 1])) return 0;
  size_t j = i + 1;
  if (j < n && s[j] == '$') return 2;
  if (j >= n || !is_ident_start((unsigned char)s[j])) return 0;
  while (j < n && (is_ident_start((unsigned char)s[j]) || (s[j] >= '0' && s[j] <= '9'))) j++;
  if (j < n && s[j] == '$') return j - i + 1;
  return 0;
}

static size_t skip_dollar(const char *s, size_t n, size_t i, size_t tag) {
  size_t j = i + tag;
  while (j + tag <= n) {
    if (s[j] == '$' && memcmp(s + j, s + i, tag) == 0) return j + tag;
    j++;
  }
  return n;
}

static long find_name(sql_scan *o, const char *name, size_t len) {
  for (size_t k = 0; k < o->nnames; k++)
    if (strlen(o->names[k]) == len && memcmp(o->names[k], name, len) == 0) return (long)k;
  return -1;
}

static int add_name(sql_scan *o, size_t *cap, const char *name, size_t len) {
  if (o->nnames == *cap) {
    size_t nc = *cap ? *cap * 2 : 8;
    char **p = realloc(o->names, nc * sizeof *p);
    if (!p) return -1;
    o->names = p;
    *cap = nc;
  }
  char *copy = malloc(len + 1);
  if (!copy) return -1;
  memcpy(copy, name, len);
  copy[len] = '\0';
  o->names[o->nnames++] = copy;
  return 0;
}

int sql_scan_run(const char *s, size_t n, sql_scan *o) {
  memset(o, 0, sizeof *o);
  sbuf out = {0};
  size_t cap = 0;
  int token = 0, semi = 0;
  size_t i = 0, copied = 0;
  if (sb_reserve(&out, n + 16) != 0) goto oom;
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    if (is_blank(c)) {
      i++;
      continue;
    }
    if (c == '-' && i + 1 < n && s[i + 1] == '-') {
      while (i < n && s[i] != '\n') i++;
      continue;
    }
    if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      i = skip_block_comment(s, n, i);
      continue;
    }
    if (c == ';') {
      semi = 1;
      i++;
      continue;
    }
    /* anything else is part of a statement */
    if (semi) o->multi = 1;
    token = 1;
    if (c == '\'') {
      int e = i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') &&
              (i < 2 || !is_ident_char((unsigned char)s[i - 2]));
      i = skip_quoted(s, n, i, '\'', e);
    } else if (c == '"') {
      i = skip_quoted(s, n, i, '"', 0);
    } else if (c == '$') {
      size_t tag = dollar_tag(s, n, i);
      i = tag ? skip_dollar(s, n, i, tag) : i + 1;
    } else if (c == ':') {
      if (i + 1 < n && s[i + 1] == ':') {
        i += 2;
        while (i < n && s[i] == ':') i++; /* ":::" is PostgreSQL's business */
      } else if (i + 1 < n && is_name_start((unsigned char)s[i + 1])) {
        size_t start = i + 1, j = start;
        while (j < n && is_name_char((unsigned char)s[j])) j++;
        long k = find_name(o, s + start, j - start);
        if (k < 0) {
          if (add_name(o, &cap, s + start, j - start) != 0) goto oom;
          k = (long)o->nnames - 1;
        }
        sb_put(&out, s + copied, i - copied);
        sb_printf(&out, "$%ld", k + 1);
        i = copied = j;
      } else {
        i++;
      }
    } else if (is_ident_char(c)) {
      while (i < n && is_ident_char((unsigned char)s[i])) i++;
    } else {
      i++;
    }
  }
  sb_put(&out, s + copied, n - copied);
  o->empty = !token;
  o->sql = sb_detach(&out, &o->sql_len);
  if (!o->sql) goto oom;
  return 0;
oom:
  sb_free(&out);
  sql_scan_free(o);
  return -1;
}

void sql_scan_free(sql_scan *o) {
  for (size_t k = 0; k < o->nnames; k++) free(o->names[k]);
  free(o->names);
  free(o->sql);
  memset(o, 0, sizeof *o);
}
