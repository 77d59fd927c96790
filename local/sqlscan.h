#ifndef ALEX_DATAAPI_SQLSCAN_H
#define ALEX_DATAAPI_SQLSCAN_H
/*
 * The Data API's placeholder rewriting: `:name` becomes `$n` (one n per
 * distinct name, in order of first appearance), outside '...' and E'...'
 * strings, "..." identifiers, -- and (nested) block comments and dollar-quoted
 * strings; `::` stays a cast.  Names are [A-Za-z_][A-Za-z0-9_]*.  The same
 * scan finds statement separators: a ';' followed by anything but blanks,
 * comments and more ';' means several statements.
 */
#include <stddef.h>

typedef struct {
  char *sql;        /* rewritten, NUL-terminated */
  size_t sql_len;
  char **names;     /* distinct names; names[i] is $(i+1) */
  size_t nnames;
  int multi;        /* more than one statement */
  int empty;        /* nothing but blanks, comments and ';' */
} sql_scan;

/* 0, or -1 when out of memory. */
int sql_scan_run(const char *in, size_t len, sql_scan *out);
void sql_scan_free(sql_scan *s);

#endif
