/* The HTTP front: libmicrohttpd with a thread per connection, request bodies
 * within max_request_bytes, routing to the Data API, the RDS Query API and
 * the admin API, and the answers' common form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/rand.h>

#include "http.h"

void http_request_id(char out[37]) {
  unsigned char r[16];
  if (RAND_bytes(r, sizeof r) != 1) memset(r, 0x5a, sizeof r);
  r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
  r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
           r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

enum MHD_Result http_respond(struct MHD_Connection *conn, int status, char *body, size_t len, const char *content_type,
                             const char *request_id, const char *error_type) {
  struct MHD_Response *res = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!res) {
    free(body);
    return MHD_NO;
  }
  char rid[37];
  if (!request_id) {
    http_request_id(rid);
    request_id = rid;
  }
  MHD_add_response_header(res, "Content-Type", content_type);
  MHD_add_response_header(res, "x-amzn-RequestId", request_id);
  if (error_type) MHD_add_response_header(res, "x-amzn-ErrorType", error_type);
  enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, res);
  MHD_destroy_response(res);
  return rc;
}

enum MHD_Result http_respond_json_error(struct MHD_Connection *conn, const apierr *e, size_t *out_len) {
  sbuf b = {0};
  sb_puts(&b, "{\"__type\":");
  sb_json_str(&b, e->type, strlen(e->type));
  sb_puts(&b, ",\"message\":");
  const char *m = e->message ? e->message : "";
  sb_json_str(&b, m, strlen(m));
  if (e->db_connection_id > 0) sb_printf(&b, ",\"dbConnectionId\":%lld", e->db_connection_id);
  sb_putc(&b, '}');
  size_t len = 0;
  char *body = sb_detach(&b, &len);
  if (out_len) *out_len = len;
  if (!body) return MHD_NO;
  return http_respond(conn, e->status, body, len, "application/json", NULL, e->type);
}

enum MHD_Result http_respond_json(struct MHD_Connection *conn, int status, sbuf *b) {
  size_t len;
  char *body = sb_detach(b, &len);
  if (!body) return MHD_NO;
  return http_respond(conn, status, body, len, "application/json", NULL, NULL);
}

/* ---- libmicrohttpd callbacks ---- */

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *conn) {
  (void)cls;
  (void)conn;
  req_ctx *rq = calloc(1, sizeof *rq);
  if (rq) rq->uri = xstrdup(uri);
  return rq;
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
  return MHD_YES;
}

static enum MHD_Result too_large(server *s, struct MHD_Connection *conn, unsigned long long size) {
  apierr e = {0};
  apierr_set(&e, 413, "RequestEntityTooLargeException", "Request size %llu exceeds the limit of %lld bytes", size,
             s->cfg.max_request_bytes);
  enum MHD_Result r = http_respond_json_error(conn, &e, NULL);
  apierr_clear(&e);
  return r;
}

/* How much of an oversized body is read and dropped before the connection is closed. */
static unsigned long long discard_limit(const server *s) {
  return 4ULL * (unsigned long long)s->cfg.max_request_bytes;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls) {
  (void)url;
  (void)version;
  server *s = cls;
  req_ctx *rq = *con_cls;
  if (!rq || !rq->uri) return MHD_NO; /* out of memory */
  if (!rq->started) {
    rq->started = 1;
    rq->header_bytes = strlen(method) + strlen(rq->uri) + 12;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &rq->header_bytes);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    if (rq->header_bytes + n > (unsigned long long)s->cfg.max_request_bytes) {
      rq->too_large = 1;
      /* A client waiting for "100 Continue" has sent no body: it can read the
       * answer now.  So can nobody who announces more than we would discard. */
      const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
      if ((expect && strcasecmp(expect, "100-continue") == 0) || n > discard_limit(s))
        return too_large(s, conn, rq->header_bytes + n);
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (!rq->too_large && rq->header_bytes + rq->body.len + *upload_data_size > (size_t)s->cfg.max_request_bytes) {
      rq->too_large = 1;
      rq->discarded = rq->body.len;
      sb_free(&rq->body);
    }
    if (rq->too_large) {
      /* Read on and drop: a client that sends its whole body before reading
       * (the AWS SDK for JavaScript does) would otherwise see its write fail
       * (EPIPE) instead of the 413, and retry.  Past the limit: close. */
      rq->discarded += *upload_data_size;
      if (rq->discarded > discard_limit(s)) return MHD_NO;
    } else {
      sb_put(&rq->body, upload_data, *upload_data_size);
      if (rq->body.oom) return MHD_NO;
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (rq->too_large) return too_large(s, conn, rq->header_bytes + rq->discarded);

  const char *uri = rq->uri;
  size_t plen = strcspn(uri, "?");
  char path[128];
  if (plen >= sizeof path) plen = sizeof path - 1;
  memcpy(path, uri, plen);
  path[plen] = '\0';
  if (strncmp(path, "/_alex/", 7) == 0) return admin_request(s, conn, path, method, rq);
  conn_ctx *cc = NULL;
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (ci) cc = ci->socket_context;
  conn_ctx fallback = {0};
  if (!cc) cc = &fallback;
  /* the RDS Query API posts to "/"; the Data API's operations have their own paths */
  enum MHD_Result r = strcmp(path, "/") == 0 ? rds_request(s, cc, conn, method, rq)
                                             : dataapi_request(s, cc, conn, path, method, rq);
  sigv4_ctx_free(fallback.sig);
  return r;
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)conn;
  (void)toe;
  server *s = cls;
  req_ctx *rq = *con_cls;
  if (!rq) return;
  if (rq->inflight) {
    pthread_mutex_lock(&s->stats_mu);
    s->inflight--;
    pthread_mutex_unlock(&s->stats_mu);
  }
  free(rq->uri);
  sb_free(&rq->body);
  free(rq);
  *con_cls = NULL;
}

static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code) {
  (void)cls;
  (void)conn;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    *socket_context = calloc(1, sizeof(conn_ctx));
  } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    conn_ctx *cc = *socket_context;
    if (cc) {
      sigv4_ctx_free(cc->sig);
      free(cc);
    }
    *socket_context = NULL;
  }
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  server *s = cls;
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  size_t n = strlen(buf);
  while (n && buf[n - 1] == '\n') buf[--n] = '\0';
  LOGD(&s->log, "http: %s", buf);
}

struct MHD_Daemon *http_start(server *s, const struct sockaddr *addr, char *err, size_t errlen) {
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
  if (addr->sa_family == AF_INET6) flags |= MHD_USE_IPv6;
  struct MHD_Daemon *d = MHD_start_daemon(
      flags, 0, NULL, NULL, handler, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_SOCK_ADDR, addr,
      MHD_OPTION_URI_LOG_CALLBACK, uri_logger, s,
      MHD_OPTION_NOTIFY_COMPLETED, request_done, s, MHD_OPTION_NOTIFY_CONNECTION, connection_notify, s,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_END);
  if (!d) snprintf(err, errlen, "cannot listen on %s (address in use or not available)", s->cfg.listen);
  return d;
}
