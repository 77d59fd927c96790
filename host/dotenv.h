#ifndef ALEX_DOTENV_H
#define ALEX_DOTENV_H
/*
 * A dotenv parser with no I/O and no global state, so it can be fuzzed alone.
 * Rules: KEY=VALUE lines; optional leading `export `; blank lines and `#`
 * comments; unquoted values are trimmed and end at ` #`; single quotes are
 * literal; double quotes take \n \r \t \" \\ \$ escapes; quoted values may span
 * lines.  Keys are [A-Za-z_][A-Za-z0-9_.]*.  A NUL byte anywhere is an error
 * (reported at its line, before any callback), since values are C strings.
 */
#include <stddef.h>

/* Called once per assignment with NUL-terminated key and value; a non-zero
 * return stops the parse and is returned by dotenv_parse. */
typedef int (*dotenv_callback)(void *ud, const char *key, const char *value);

/* Returns 0, a callback's non-zero value, or -1 for malformed input with
 * *err_line set to the 1-based line and a message in err.  Allocation failure
 * is reported as -1 with the message "out of memory". */
int dotenv_parse(const char *buf, size_t len, dotenv_callback cb, void *ud,
                 int *err_line, char *err, size_t errlen);

#endif
