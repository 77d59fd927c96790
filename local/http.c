/* The HTTP front: libmicrohttpd (a thread per connection), SigV4 verification,
 * routing, fault injection, statistics and the /_alex admin API. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "server.h"
#include "sigv4_core.h"

enum { FAULT_THROTTLE, FAULT_RESUMING, FAULT_5XX, FAULT_DROP, FAULT_DROP_AFTER };
static const char *const FAULT_NAMES[5] = {"throttle", "resuming", "5xx", "drop", "drop_after"};

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

/* ---- statistics ---- */

void stats_count(server *s, int fault, enum op op, uint64_t in, uint64_t out) {
  pthread_mutex_lock(&s->stats_mu);
  if (op < OP_NONE) s->st.ops[op]++;
  if (fault >= 0) s->st.faults[fault]++;
  s->st.bytes_in += in;
  s->st.bytes_out += out;
  pthread_mutex_unlock(&s->stats_mu);
}

static void stats_json(server *s, sbuf *b) {
  stats st;
  pthread_mutex_lock(&s->stats_mu);
  st = s->st;
  pthread_mutex_unlock(&s->stats_mu);
  sb_puts(b, "{\"operations\":{");
  for (int i = 0; i < 5; i++) sb_printf(b, "%s\"%s\":%llu", i ? "," : "", OP_NAMES[i], (unsigned long long)st.ops[i]);
  sb_printf(b, "},\"bytes_in\":%llu,\"bytes_out\":%llu,\"faults\":{", (unsigned long long)st.bytes_in,
            (unsigned long long)st.bytes_out);
  for (int i = 0; i < 5; i++)
    sb_printf(b, "%s\"%s\":%llu", i ? "," : "", FAULT_NAMES[i], (unsigned long long)st.faults[i]);
  sb_printf(b, "},\"open_transactions\":%d}", db_open_transactions(s));
}

/* ---- faults ---- */

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static double unit(uint64_t *state) { return (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0); }

typedef struct {
  double latency_ms;
  int fault;   /* FAULT_* decided before running, or -1 */
  int drop_after;
  int use_503;
} fault_draw;

/* Six draws per call, always, so a seed reproduces the same sequence. */
static void draw_faults(server *s, enum op op, fault_draw *d) {
  double u[6];
  pthread_mutex_lock(&s->fault_mu);
  fault_settings f = s->faults;
  for (int i = 0; i < 6; i++) u[i] = unit(&s->prng);
  pthread_mutex_unlock(&s->fault_mu);
  d->latency_ms = f.latency_ms;
  d->fault = -1;
  d->drop_after = 0;
  d->use_503 = u[5] < 0.5;
  if (u[0] < f.drop_rate) d->fault = FAULT_DROP;
  else if (u[1] < f.throttle_rate) d->fault = FAULT_THROTTLE;
  else if (u[2] < f.resuming_rate && (op == OP_EXECUTE || op == OP_BATCH || op == OP_BEGIN)) d->fault = FAULT_RESUMING;
  else if (u[3] < f.r5xx_rate) d->fault = FAULT_5XX;
  else if (u[4] < f.drop_after_rate) d->drop_after = 1;
}

static void faults_json(server *s, sbuf *b) {
  pthread_mutex_lock(&s->fault_mu);
  fault_settings f = s->faults;
  pthread_mutex_unlock(&s->fault_mu);
  sb_printf(b, "{\"seed\":%llu,\"latency_ms\":", (unsigned long long)f.seed);
  sb_double(b, f.latency_ms);
  sb_puts(b, ",\"throttle_rate\":");
  sb_double(b, f.throttle_rate);
  sb_puts(b, ",\"resuming_rate\":");
  sb_double(b, f.resuming_rate);
  sb_puts(b, ",\"5xx_rate\":");
  sb_double(b, f.r5xx_rate);
  sb_puts(b, ",\"drop_rate\":");
  sb_double(b, f.drop_rate);
  sb_puts(b, ",\"drop_after_rate\":");
  sb_double(b, f.drop_after_rate);
  sb_putc(b, '}');
}

/* ---- responses ---- */

static void request_id(char out[37]) {
  unsigned char r[16];
  if (RAND_bytes(r, sizeof r) != 1) memset(r, 0x5a, sizeof r);
  r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
  r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
           r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

/* Queues body (taken over) with status; error_type adds x-amzn-ErrorType. */
static enum MHD_Result respond(struct MHD_Connection *conn, int status, char *body, size_t len,
                               const char *error_type) {
  struct MHD_Response *res = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!res) {
    free(body);
    return MHD_NO;
  }
  char rid[37];
  request_id(rid);
  MHD_add_response_header(res, "Content-Type", "application/json");
  MHD_add_response_header(res, "x-amzn-RequestId", rid);
  if (error_type) MHD_add_response_header(res, "x-amzn-ErrorType", error_type);
  enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, res);
  MHD_destroy_response(res);
  return rc;
}

static char *error_body(const apierr *e, size_t *len) {
  sbuf b = {0};
  sb_puts(&b, "{\"__type\":");
  sb_json_str(&b, e->type, strlen(e->type));
  sb_puts(&b, ",\"message\":");
  const char *m = e->message ? e->message : "";
  sb_json_str(&b, m, strlen(m));
  if (e->db_connection_id > 0) sb_printf(&b, ",\"dbConnectionId\":%lld", e->db_connection_id);
  sb_putc(&b, '}');
  return sb_detach(&b, len);
}

static enum MHD_Result respond_error(struct MHD_Connection *conn, const apierr *e, size_t *out_len) {
  size_t len = 0;
  char *body = error_body(e, &len);
  if (out_len) *out_len = len;
  if (!body) return MHD_NO;
  return respond(conn, e->status, body, len, e->type);
}

static enum MHD_Result respond_sbuf(struct MHD_Connection *conn, int status, sbuf *b) {
  size_t len;
  char *body = sb_detach(b, &len);
  if (!body) return MHD_NO;
  return respond(conn, status, body, len, NULL);
}

/* ---- SigV4 verification ---- */

typedef struct {
  sigv4_header *h;
  size_t n, cap;
  int oom;
} header_vec;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                      const char *value, size_t value_size) {
  (void)kind;
  header_vec *v = cls;
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 16;
    sigv4_header *p = realloc(v->h, nc * sizeof *p);
    if (!p) {
      v->oom = 1;
      return MHD_NO;
    }
    v->h = p;
    v->cap = nc;
  }
  v->h[v->n++] = (sigv4_header){key, key_size, value ? value : "", value ? value_size : 0};
  return MHD_YES;
}

static const char SIG_MISMATCH[] =
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details.";

static int list_has(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *e = strchr(p, ';');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l == n && memcmp(p, name, n) == 0) return 1;
    p = e ? e + 1 : NULL;
  }
  return 0;
}

/* Client text echoed in an error, as printable ASCII: the error body is JSON,
 * and raw bytes from a header could make it invalid UTF-8 for a strict client. */
static const char *printable(char *dst, size_t size, const char *src) {
  size_t i = 0;
  for (; src[i] && i + 1 < size; i++) dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
  dst[i] = '\0';
  return dst;
}

static int authenticate(server *s, conn_ctx *cc, struct MHD_Connection *conn, req_ctx *rq, const char *method,
                        apierr *err) {
  const settings *cfg = &s->cfg;
  const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
  if (!authz) {
    apierr_set(err, 403, "MissingAuthenticationTokenException", "Missing Authentication Token");
    return -1;
  }
  sigv4_authorization a;
  char msg[256];
  if (sigv4_parse_authorization(authz, &a, msg, sizeof msg) != 0) {
    apierr_set(err, 403, "IncompleteSignatureException",
               "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters of the "
               "AWS4-HMAC-SHA256 scheme (%s).", msg);
    return -1;
  }
  int rc = -1;
  header_vec hv = {0};
  const char *amz_date = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Amz-Date");
  char shown[41];
  const char *token = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Amz-Security-Token");
  long long t;
  if (!amz_date) {
    apierr_set(err, 403, "IncompleteSignatureException",
               "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
    goto out;
  }
  if ((t = sigv4_parse_amz_date(amz_date)) < 0) {
    apierr_set(err, 403, "IncompleteSignatureException",
               "Date must be in ISO-8601 'basic format'. Got '%s'.", printable(shown, sizeof shown, amz_date));
    goto out;
  }
  if (!ct_equal(a.access_key, strlen(a.access_key), cfg->access_key, strlen(cfg->access_key))) {
    apierr_set(err, 403, "UnrecognizedClientException", "The security token included in the request is invalid.");
    goto out;
  }
  int token_ok = cfg->session_token == NULL ? token == NULL
                 : token != NULL && ct_equal(token, strlen(token), cfg->session_token, strlen(cfg->session_token));
  if (!token_ok) {
    apierr_set(err, 403, "UnrecognizedClientException", "The security token included in the request is invalid.");
    goto out;
  }
  if (strncmp(a.date, amz_date, 8) != 0) {
    apierr_set(err, 403, "InvalidSignatureException",
               "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
               "'%s' != '%.8s', from 'X-Amz-Date'.", printable(shown, sizeof shown, a.date), amz_date);
    goto out;
  }
  if (strcmp(a.region, cfg->region) != 0) {
    apierr_set(err, 403, "InvalidSignatureException", "Credential should be scoped to a valid region, not '%s'.",
               printable(shown, sizeof shown, a.region));
    goto out;
  }
  if (strcmp(a.service, "rds-data") != 0) {
    apierr_set(err, 403, "InvalidSignatureException", "Credential should be scoped to correct service: 'rds-data'.");
    goto out;
  }
  if (!list_has(a.signed_headers, "host")) {
    apierr_set(err, 403, "InvalidSignatureException",
               "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    goto out;
  }
  long long now = (long long)time(NULL);
  if (t < now - 300 || t > now + 300) {
    char d1[17], d2[17];
    sigv4_format_amz_date(t < now ? now - 300 : now + 300, d1);
    sigv4_format_amz_date(now, d2);
    if (t < now)
      apierr_set(err, 403, "InvalidSignatureException", "Signature expired: %s is now earlier than %s (%s - 5 min.)",
                 amz_date, d1, d2);
    else
      apierr_set(err, 403, "InvalidSignatureException",
                 "Signature not yet current: %s is still later than %s (%s + 5 min.)", amz_date, d1, d2);
    goto out;
  }
  MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_header, &hv);
  if (hv.oom) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    goto out;
  }
  const char *uri = rq->uri ? rq->uri : "/";
  const char *q = strchr(uri, '?');
  sigv4_request sr;
  memset(&sr, 0, sizeof sr);
  sr.method = method;
  sr.path = uri;
  sr.path_len = q ? (size_t)(q - uri) : strlen(uri);
  sr.query = q ? q + 1 : NULL;
  sr.query_len = q ? strlen(q + 1) : 0;
  sr.headers = hv.h;
  sr.n_headers = hv.n;
  sr.body = rq->body.p;
  sr.body_len = rq->body.len;
  sr.access_key = cfg->access_key;
  sr.secret_key = cfg->secret_key;
  sr.session_token = cfg->session_token;
  sr.region = cfg->region;
  sr.service = "rds-data";
  sr.amz_date = amz_date;
  sr.signed_header_list = a.signed_headers;
  sigv4_view view;
  if (!cc->sig) cc->sig = sigv4_ctx_new();
  if (!cc->sig) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    goto out;
  }
  if (sigv4_sign_ctx(cc->sig, &sr, &view, msg, sizeof msg) != 0 || !sigv4_signature_equal(view.signature, a.signature)) {
    apierr_set(err, 403, "InvalidSignatureException", "%s", SIG_MISMATCH);
    goto out;
  }
  rc = 0;
out:
  free(hv.h);
  sigv4_authorization_free(&a);
  return rc;
}

/* ---- admin API ---- */

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
  enum MHD_Result r = respond_error(conn, &e, NULL);
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

static enum MHD_Result admin_faults_post(server *s, struct MHD_Connection *conn, req_ctx *rq) {
  json_error_t je;
  json_t *j = json_loadb(rq->body.p ? rq->body.p : "", rq->body.len, 0, &je);
  if (!j || !json_is_object(j)) {
    json_decref(j);
    return admin_error(conn, 400, "BadRequestException", "the body must be a JSON object");
  }
  pthread_mutex_lock(&s->fault_mu);
  fault_settings f = s->faults;
  pthread_mutex_unlock(&s->fault_mu);
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
  pthread_mutex_lock(&s->fault_mu);
  s->faults = f;
  if (reseed) s->prng = f.seed;
  pthread_mutex_unlock(&s->fault_mu);
  LOGI(&s->log, "faults set: latency_ms=%g throttle=%g resuming=%g 5xx=%g drop=%g drop_after=%g%s", f.latency_ms,
       f.throttle_rate, f.resuming_rate, f.r5xx_rate, f.drop_rate, f.drop_after_rate, reseed ? " (re-seeded)" : "");
  sbuf b = {0};
  faults_json(s, &b);
  return respond_sbuf(conn, 200, &b);
}

static enum MHD_Result admin(server *s, struct MHD_Connection *conn, const char *path, const char *method,
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
    pthread_mutex_lock(&s->stats_mu);
    memset(&s->st, 0, sizeof s->st);
    pthread_mutex_unlock(&s->stats_mu);
    stats_json(s, &b);
  } else if (strcmp(path, "/_alex/faults") == 0) {
    if (post) {
      if (!admin_token_ok(s, conn)) return admin_refused(s, conn, path);
      return admin_faults_post(s, conn, rq);
    }
    if (!get) goto method;
    faults_json(s, &b);
  } else {
    return admin_error(conn, 404, "NotFoundException", "no such admin path");
  }
  return respond_sbuf(conn, 200, &b);
method:
  return admin_error(conn, 405, "MethodNotAllowed", "method not allowed on this admin path");
}

/* ---- the operations ---- */

static enum op route(const char *path) {
  if (strcmp(path, "/Execute") == 0) return OP_EXECUTE;
  if (strcmp(path, "/BatchExecute") == 0) return OP_BATCH;
  if (strcmp(path, "/BeginTransaction") == 0) return OP_BEGIN;
  if (strcmp(path, "/CommitTransaction") == 0) return OP_COMMIT;
  if (strcmp(path, "/RollbackTransaction") == 0) return OP_ROLLBACK;
  return OP_NONE;
}

static enum MHD_Result run_operation(server *s, struct MHD_Connection *conn, enum op op, req_ctx *rq, double t0);

static enum MHD_Result operation(server *s, conn_ctx *cc, struct MHD_Connection *conn, const char *path,
                                 const char *method, req_ctx *rq) {
  apierr err = {0};
  double t0 = mono_now();
  enum MHD_Result mr;
  if (authenticate(s, cc, conn, rq, method, &err) != 0) {
    LOGD(&s->log, "%s %s -> %d %s", method, path, err.status, err.type);
    mr = respond_error(conn, &err, NULL);
    apierr_clear(&err);
    return mr;
  }
  enum op op = route(path);
  if (op == OP_NONE || strcmp(method, "POST") != 0) {
    if (strcmp(path, "/ExecuteSql") == 0 && strcmp(method, "POST") == 0)
      apierr_set(&err, 400, "BadRequestException",
                 "ExecuteSql isn't supported for this DB cluster; use ExecuteStatement or BatchExecuteStatement.");
    else
      apierr_set(&err, 404, "UnknownOperationException", "Unknown operation %s %s", method, path);
    mr = respond_error(conn, &err, NULL);
    apierr_clear(&err);
    return mr;
  }

  /* in flight until the answer has been sent (request_done), so a stop can wait for it */
  pthread_mutex_lock(&s->stats_mu);
  s->inflight++;
  pthread_mutex_unlock(&s->stats_mu);
  rq->inflight = 1;
  return run_operation(s, conn, op, rq, t0);
}

static enum MHD_Result run_operation(server *s, struct MHD_Connection *conn, enum op op, req_ctx *rq, double t0) {
  apierr err = {0};
  enum MHD_Result mr;
  fault_draw fd;
  draw_faults(s, op, &fd);
  if (fd.latency_ms > 0) sleep_seconds(fd.latency_ms / 1000.0);
  if (fd.fault == FAULT_DROP) {
    stats_count(s, FAULT_DROP, op, rq->body.len, 0);
    LOGD(&s->log, "%s: fault: dropped the connection", OP_NAMES[op]);
    return MHD_NO;
  }
  if (fd.fault == FAULT_THROTTLE) {
    apierr_set(&err, 400, "ThrottlingException", "Rate exceeded");
  } else if (fd.fault == FAULT_RESUMING) {
    apierr_set(&err, 400, "DatabaseResumingException",
               "The Aurora DB instance %s-instance-1 is resuming after being auto-paused. Please wait a few seconds "
               "and try again.", s->cluster_id);
  } else if (fd.fault == FAULT_5XX) {
    if (fd.use_503) apierr_set(&err, 503, "ServiceUnavailableError", "The service is unavailable. Try again later.");
    else apierr_set(&err, 500, "InternalServerErrorException", "An internal error occurred.");
  }
  if (err.status) {
    size_t len;
    mr = respond_error(conn, &err, &len);
    stats_count(s, fd.fault, op, rq->body.len, len);
    LOGD(&s->log, "%s: fault: %d %s", OP_NAMES[op], err.status, err.type);
    apierr_clear(&err);
    return mr;
  }

  sbuf out = {0};
  json_error_t je;
  json_t *req = json_loadb(rq->body.p ? rq->body.p : "", rq->body.len, 0, &je);
  int rc;
  if (!req || !json_is_object(req)) {
    if (!req && rq->body.len == 0)
      apierr_set(&err, 400, "BadRequestException", "Unable to parse the request body: it is empty");
    else if (!req)
      apierr_set(&err, 400, "BadRequestException", "Unable to parse the request body as JSON: %s (at character %d)",
                 je.text, je.position);
    else
      apierr_set(&err, 400, "BadRequestException", "The request body must be a JSON object");
    rc = -1;
  } else {
    switch (op) {
    case OP_EXECUTE: rc = op_execute(s, req, &out, &err); break;
    case OP_BATCH: rc = op_batch(s, req, &out, &err); break;
    case OP_BEGIN: rc = op_begin(s, req, &out, &err); break;
    case OP_COMMIT: rc = op_end(s, req, 1, &out, &err); break;
    default: rc = op_end(s, req, 0, &out, &err); break;
    }
  }
  json_decref(req);
  if (rc == 0 && out.oom) {
    apierr_set(&err, 500, "InternalServerErrorException", "out of memory");
    rc = -1;
  }
  double ms = (mono_now() - t0) * 1000;
  if (fd.drop_after) {
    stats_count(s, FAULT_DROP_AFTER, op, rq->body.len, 0);
    LOGD(&s->log, "%s: ran (%s), fault: dropped the connection without answering", OP_NAMES[op],
         rc == 0 ? "ok" : err.type);
    sb_free(&out);
    apierr_clear(&err);
    return MHD_NO;
  }
  size_t len = 0;
  if (rc == 0) {
    len = out.len;
    mr = respond_sbuf(conn, 200, &out);
    LOGD(&s->log, "%s -> 200 (%zu bytes, %.1f ms)", OP_NAMES[op], len, ms);
  } else {
    sb_free(&out);
    mr = respond_error(conn, &err, &len);
    LOGD(&s->log, "%s -> %d %s: %s (%.1f ms)", OP_NAMES[op], err.status, err.type, err.message ? err.message : "", ms);
  }
  stats_count(s, -1, op, rq->body.len, len);
  apierr_clear(&err);
  return mr;
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
  enum MHD_Result r = respond_error(conn, &e, NULL);
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
  if (strncmp(path, "/_alex/", 7) == 0) return admin(s, conn, path, method, rq);
  conn_ctx *cc = NULL;
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (ci) cc = ci->socket_context;
  conn_ctx fallback = {0};
  enum MHD_Result r = operation(s, cc ? cc : &fallback, conn, path, method, rq);
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
