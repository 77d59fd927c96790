#ifndef ALEX_DATAAPI_HTTP_H
#define ALEX_DATAAPI_HTTP_H
/* The HTTP front's shared parts: the per-connection and per-request state,
 * the answers, and the three kinds of request it routes to. */
#include <microhttpd.h>

#include "server.h"
#include "sigv4_core.h"

/* Per HTTP connection: a SigV4 context reused across keep-alive requests. */
typedef struct {
  sigv4_ctx *sig;
} conn_ctx;

/* Per request. */
typedef struct {
  char *uri;          /* as in the request line, undecoded */
  int started;
  int too_large;      /* over max_request_bytes: the body is read and discarded, then 413 */
  int inflight;       /* counted in server.inflight */
  size_t header_bytes;
  unsigned long long discarded;
  sbuf body;
} req_ctx;

/* A random request id in the UUID form AWS uses. */
void http_request_id(char out[37]);

/* Queues body (taken over, freed in every case) with status and the headers
 * every answer carries; error_type adds x-amzn-ErrorType. */
enum MHD_Result http_respond(struct MHD_Connection *conn, int status, char *body, size_t len, const char *content_type,
                             const char *request_id, const char *error_type);
/* The JSON answers: b's bytes as a 200-class body, or e as the JSON error
 * body ({"__type", "message"}); *out_len gets the body's length. */
enum MHD_Result http_respond_json(struct MHD_Connection *conn, int status, sbuf *b);
enum MHD_Result http_respond_json_error(struct MHD_Connection *conn, const apierr *e, size_t *out_len);

/* The routes: the Data API's operation paths, the RDS Query API on "/", the
 * unsigned admin API under /_alex/. */
enum MHD_Result dataapi_request(server *s, conn_ctx *cc, struct MHD_Connection *conn, const char *path,
                                const char *method, req_ctx *rq);
enum MHD_Result rds_request(server *s, conn_ctx *cc, struct MHD_Connection *conn, const char *method, req_ctx *rq);
enum MHD_Result admin_request(server *s, struct MHD_Connection *conn, const char *path, const char *method,
                              req_ctx *rq);

#endif
