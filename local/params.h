#ifndef ALEX_DATAAPI_PARAMS_H
#define ALEX_DATAAPI_PARAMS_H
/* Parameter binding: SqlParameter lists to libpq parameters. */
#include "server.h"
#include "sqlscan.h"

/* One parameter set in libpq's form; slot i is $(i+1) of the rewritten SQL. */
typedef struct {
  size_t n;
  Oid *types;
  const char **values;  /* point into the request, num or blobs */
  int *lengths, *formats;
  char (*num)[40];      /* text of longValue/doubleValue */
  unsigned char **blobs; /* decoded blobValue bytes */
  char *filled;
} binds;

int binds_init(binds *b, size_t n); /* 0, or -1 when out of memory (binds_free still needed) */
void binds_free(binds *b);

/* Validates every parameter of params (list names it in messages: "parameters"
 * or "parameterSets", set the 1-based set number or 0) and binds those the SQL
 * names; a name the SQL uses without a parameter is an error.  b is emptied first. */
int bind_set(json_t *params, const char *list, size_t set, const sql_scan *scan, binds *b, apierr *err);

#endif
