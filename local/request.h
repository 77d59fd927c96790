#ifndef ALEX_DATAAPI_REQUEST_H
#define ALEX_DATAAPI_REQUEST_H
/* Request validation shared by the five operations. */
#include "server.h"

/* The members every operation shares; pointers into the request's JSON. */
typedef struct {
  const char *resource_arn, *secret_arn, *database, *transaction_id, *sql;
} common;

/* Reads and checks the shared members, then the schema, ARN and secret.
 * want_sql: sql is required.  want_tx: 0 ignores transactionId, 1 reads it,
 * 2 requires it.  database defaults to the configured one. */
int check_common(server *s, json_t *req, int want_sql, int want_tx, common *c, apierr *err);

/* A boolean member; absent or null is false. */
int get_bool(json_t *req, const char *key, int *out, apierr *err);

/* An enum member v (path names it in messages): its index in the
 * NULL-terminated values, or def when absent. */
int get_enum(json_t *v, const char *path, const char *const *values, int def, int *out, apierr *err);

#endif
