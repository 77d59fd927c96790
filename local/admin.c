/* The admin API under /_alex/: health, statistics, fault injection and the
 * local cluster's injected status.  Loopback peers only, no SigV4, never
 * subject to faults; the changing calls need the admin token. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "http.h"

static int is_loopback(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!ci || !ci->client_addr) return 0;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
    static const unsigned char lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (memcmp(in6->sin6_addr.s6_addr, lo, 16) == 0) return 1;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(in6->sin6_addr.s6_addr, mapped, 12) == 0 && in6->sin6_addr.s6_addr[12] == 127;
  }
  return 0;
}

static enum MHD_Result admin_error(struct MHD_Connection *conn, int status, const char *type, const char *msg) {
  apierr e = {0};
  apierr_set(&e, status, type, "%s", msg);
  enum MHD_Result r = http_respond_json_error(conn, &e, NULL);
  apierr_clear(&e);
  return r;
}

/* Changing admin calls need the configured token in X-Alex-Admin-Token: the
 * port is open to every local user, the token file only to the stack's owner.
 * Both sides are hashed first, so the comparison takes the same time whatever
 * the lengths and contents. */
static int admin_token_ok(server *s, struct MHD_Connection *conn) {
  const char *want = s->cfg.admin_token;
  const char *got = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Alex-Admin-Token");
  if (!want || !got) return 0;
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)want, strlen(want), a);
  SHA256((const unsigned char *)got, strlen(got), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

static enum MHD_Result admin_refused(server *s, struct MHD_Connection *conn, const char *path) {
  LOGI(&s->log, "admin: refused POST %s (%s admin token)", path,
       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Alex-Admin-Token") ? "wrong" : "no");
  if (!s->cfg.admin_token)
    return admin_error(conn, 403, "AccessDeniedException",
                       "admin changes are disabled: the service has no admin_token setting");
  return admin_error(conn, 403, "AccessDeniedException",
                     "admin changes need the admin token in the X-Alex-Admin-Token header (local/stack.sh keeps "
                     "that header in admin.header in its state folder)");
}

/* The body of a changing call: a JSON object, or NULL after answering 400. */
static json_t *admin_body(struct MHD_Connection *conn, req_ctx *rq, enum MHD_Result *answered) {
  json_error_t je;
  json_t *j = json_loadb(rq->body.p ? rq->body.p : "", rq->body.len, 0, &je);
  if (!j || !json_is_object(j)) {
    json_decref(j);
    *answered = admin_error(conn, 400, "BadRequestException", "the body must be a JSON object");
    return NULL;
  }
  return j;
}

static enum MHD_Result admin_faults_post(server *s, struct MHD_Connection *conn, req_ctx *rq) {
  enum MHD_Result answered = MHD_NO;
  json_t *j = admin_body(conn, rq, &answered);
  if (!j) return answered;
  fault_settings f;
  faults_get(s, &f);
  int reseed = 0;
  const char *key;
  json_t *v;
  char msg[256];
  json_object_foreach(j, key, v) {
    char text[64];
    if (json_is_integer(v)) snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v)) snprintf(text, sizeof text, "%.17g", json_real_value(v));
    else if (json_is_string(v)) snprintf(text, sizeof text, "%s", json_string_value(v));
    else text[0] = '\0';
    if (fault_set(&f, key, text, msg, sizeof msg) != 0) {
      json_decref(j);
      return admin_error(conn, 400, "ValidationException", msg);
    }
    if (strcmp(key, "seed") == 0) reseed = 1;
  }
  json_decref(j);
  faults_put(s, &f, reseed);
  LOGI(&s->log, "faults set: latency_ms=%g throttle=%g resuming=%g 5xx=%g drop=%g drop_after=%g%s", f.latency_ms,
       f.throttle_rate, f.resuming_rate, f.r5xx_rate, f.drop_rate, f.drop_after_rate, reseed ? " (re-seeded)" : "");
  sbuf b = {0};
  faults_json(s, &b);
  return http_respond_json(conn, 200, &b);
}

/* {"status": "modifying", "for_describes": 2}: the status the RDS API reports
 * (and acts on) instead of "available", for that many DescribeDBClusters
 * answers or, without for_describes, until changed.  {"modify_describes": 1}:
 * each successful ModifyDBCluster leaves the cluster "modifying" for that
 * many answers, as a real modification takes a while (0: it does not). */
static enum MHD_Result admin_cluster_post(server *s, struct MHD_Connection *conn, req_ctx *rq) {
  enum MHD_Result answered = MHD_NO;
  json_t *j = admin_body(conn, rq, &answered);
  if (!j) return answered;
  const char *key;
  json_t *v;
  char msg[256] = "";
  json_object_foreach(j, key, v) {
    if (strcmp(key, "status") != 0 && strcmp(key, "for_describes") != 0 && strcmp(key, "modify_describes") != 0)
      snprintf(msg, sizeof msg, "unknown member '%.60s' (status, for_describes, modify_describes)", key);
  }
  json_t *st = json_object_get(j, "status"), *n = json_object_get(j, "for_describes"),
         *m = json_object_get(j, "modify_describes");
  if (!*msg && n && !(json_is_integer(n) && json_integer_value(n) >= 1 && json_integer_value(n) <= 1000000))
    snprintf(msg, sizeof msg, "for_describes must be a whole number from 1 to 1000000");
  if (!*msg && m && !(json_is_integer(m) && json_integer_value(m) >= 0 && json_integer_value(m) <= 1000000))
    snprintf(msg, sizeof msg, "modify_describes must be a whole number from 0 to 1000000");
  if (!*msg && (st ? !json_is_string(st) : !m))
    snprintf(msg, sizeof msg, "status must be a string naming an RDS cluster status");
  if (!*msg && n && !st) snprintf(msg, sizeof msg, "for_describes needs a status");
  /* a refused status leaves its reason in msg */
  if (!*msg && st) cluster_set_status(s, json_string_value(st), n ? (int)json_integer_value(n) : -1, msg, sizeof msg);
  if (*msg) {
    json_decref(j);
    return admin_error(conn, 400, "ValidationException", msg);
  }
  if (m) cluster_set_modify_describes(s, (int)json_integer_value(m));
  if (st) LOGI(&s->log, "admin: cluster status set to %s", json_string_value(st));
  if (m) LOGI(&s->log, "admin: a modification leaves the cluster modifying for %d answers", (int)json_integer_value(m));
  json_decref(j);
  sbuf b = {0};
  cluster_json(s, &b);
  return http_respond_json(conn, 200, &b);
}

static enum MHD_Result method_not_allowed(struct MHD_Connection *conn) {
  return admin_error(conn, 405, "MethodNotAllowed", "method not allowed on this admin path");
}

/* A path whose state GET shows and POST (with the admin token) changes. */
static enum MHD_Result show_or_change(server *s, struct MHD_Connection *conn, const char *path, const char *method,
                                      req_ctx *rq, void (*show)(server *, sbuf *),
                                      enum MHD_Result (*change)(server *, struct MHD_Connection *, req_ctx *)) {
  if (strcmp(method, "POST") == 0) {
    if (!admin_token_ok(s, conn)) return admin_refused(s, conn, path);
    return change(s, conn, rq);
  }
  if (strcmp(method, "GET") != 0) return method_not_allowed(conn);
  sbuf b = {0};
  show(s, &b);
  return http_respond_json(conn, 200, &b);
}

enum MHD_Result admin_request(server *s, struct MHD_Connection *conn, const char *path, const char *method,
                              req_ctx *rq) {
  if (!is_loopback(conn)) return admin_error(conn, 403, "AccessDeniedException", "admin paths are loopback-only");
  int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
  sbuf b = {0};
  if (strcmp(path, "/_alex/health") == 0) {
    if (!get) goto method;
    sb_puts(&b, "{\"status\":\"ok\"}");
  } else if (strcmp(path, "/_alex/stats") == 0) {
    if (!get) goto method;
    stats_json(s, &b);
  } else if (strcmp(path, "/_alex/stats/reset") == 0) {
    if (!post) goto method;
    if (!admin_token_ok(s, conn)) return admin_refused(s, conn, path);
    stats_reset(s);
    stats_json(s, &b);
  } else if (strcmp(path, "/_alex/faults") == 0) {
    return show_or_change(s, conn, path, method, rq, faults_json, admin_faults_post);
  } else if (strcmp(path, "/_alex/cluster") == 0) {
    return show_or_change(s, conn, path, method, rq, cluster_json, admin_cluster_post);
  } else {
    return admin_error(conn, 404, "NotFoundException", "no such admin path");
  }
  return http_respond_json(conn, 200, &b);
method:
  return method_not_allowed(conn);
}
