#ifndef ALEX_DATAAPI_ENCODE_H
#define ALEX_DATAAPI_ENCODE_H
/* Value encoding: PostgreSQL's text results as Data API records or as
 * formattedRecords JSON, row by row as they arrive. */
#include "server.h"

typedef struct {
  int long_as_string, decimal_dl, json, meta;
} result_opts;

typedef struct {
  server *s;
  const char *db;
  result_opts o;
  sbuf *out;         /* the response body (records go straight in) */
  sbuf inner;        /* formattedRecords before escaping */
  sbuf tmp;          /* array element scratch */
  unsigned char *bin;
  size_t bin_cap;
  int started, ncols, nrows_enc;
  typeinfo *types;
  int *typmods;
  char **labels;
  Oid *tables;
  int *tablecols;
  unsigned long long size;
  apierr fail;       /* the first failure; encoding stops there */
} encoder;

/* Reads the columns of the first result (types, labels, source columns) and
 * opens the records; -1 with e->fail set for an unsupported result. */
int enc_start(encoder *e, const PGresult *r);
/* Appends one row, within the size limits; -1 with e->fail set. */
int enc_row(encoder *e, const PGresult *r, int row);
void enc_free(encoder *e);

#endif
