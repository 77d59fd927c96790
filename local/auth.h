#ifndef ALEX_DATAAPI_AUTH_H
#define ALEX_DATAAPI_AUTH_H
/* SigV4 verification of a request, for either of the two APIs the service
 * speaks; each answers a failure with its own error names. */
#include <microhttpd.h>

#include "server.h"
#include "sigv4_core.h"

/* The error names (and the one status that differs) of one API. */
typedef struct {
  const char *service;              /* the credential scope's service */
  const char *missing, *missing_message; /* no Authorization header */
  const char *incomplete;           /* malformed Authorization or date */
  int incomplete_status;
  const char *unrecognized;         /* unknown access key, wrong session token */
  const char *invalid;              /* scope, clock skew, signature */
  const char *internal;             /* out of memory */
} auth_dialect;

extern const auth_dialect AUTH_DATA_API;  /* rds-data: JSON errors */
extern const auth_dialect AUTH_RDS_QUERY; /* rds: the Query API's XML errors */

/* Verifies the request's signature against the configured credentials, over
 * uri (as on the wire, undecoded), method, every signed header and body.
 * *ctx is a reusable signing context (created on first use).  0, or -1 with
 * err set in d's names. */
int auth_verify(server *s, sigv4_ctx **ctx, struct MHD_Connection *conn, const char *uri, const char *method,
                const char *body, size_t body_len, const auth_dialect *d, apierr *err);

#endif
