/* The Data API front: a signed call to one of the five operation paths,
 * with fault injection, its JSON body decoded, the operation run and
 * answered, and the call counted. */
#include <string.h>

#include "auth.h"
#include "http.h"

static const fault_errors FAULT_ERRORS = {
    .throttle = "ThrottlingException",
    .resuming = "DatabaseResumingException",
    .unavailable = "ServiceUnavailableError",
    .unavailable_message = "The service is unavailable. Try again later.",
    .internal = "InternalServerErrorException",
    .internal_message = "An internal error occurred.",
};

static enum op route(const char *path) {
  if (strcmp(path, "/Execute") == 0) return OP_EXECUTE;
  if (strcmp(path, "/BatchExecute") == 0) return OP_BATCH;
  if (strcmp(path, "/BeginTransaction") == 0) return OP_BEGIN;
  if (strcmp(path, "/CommitTransaction") == 0) return OP_COMMIT;
  if (strcmp(path, "/RollbackTransaction") == 0) return OP_ROLLBACK;
  return OP_NONE;
}

static enum MHD_Result run_operation(server *s, struct MHD_Connection *conn, enum op op, req_ctx *rq, double t0);

enum MHD_Result dataapi_request(server *s, conn_ctx *cc, struct MHD_Connection *conn, const char *path,
                                const char *method, req_ctx *rq) {
  apierr err = {0};
  double t0 = mono_now();
  enum MHD_Result mr;
  if (auth_verify(s, &cc->sig, conn, rq->uri, method, rq->body.p, rq->body.len, &AUTH_DATA_API, &err) != 0) {
    LOGD(&s->log, "%s %s -> %d %s", method, path, err.status, err.type);
    mr = http_respond_json_error(conn, &err, NULL);
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
    mr = http_respond_json_error(conn, &err, NULL);
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
  /* as on AWS, only calls that need the database can meet a resuming instance */
  faults_start(s, op == OP_EXECUTE || op == OP_BATCH || op == OP_BEGIN, &FAULT_ERRORS, &fd, &err);
  if (fd.fault == FAULT_DROP) {
    stats_count(s, FAULT_DROP, op, -1, rq->body.len, 0);
    LOGD(&s->log, "%s: fault: dropped the connection", OP_NAMES[op]);
    return MHD_NO;
  }
  if (err.status) {
    size_t len;
    mr = http_respond_json_error(conn, &err, &len);
    stats_count(s, fd.fault, op, -1, rq->body.len, len);
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
    stats_count(s, FAULT_DROP_AFTER, op, -1, rq->body.len, 0);
    LOGD(&s->log, "%s: ran (%s), fault: dropped the connection without answering", OP_NAMES[op],
         rc == 0 ? "ok" : err.type);
    sb_free(&out);
    apierr_clear(&err);
    return MHD_NO;
  }
  size_t len = 0;
  if (rc == 0) {
    len = out.len;
    mr = http_respond_json(conn, 200, &out);
    LOGD(&s->log, "%s -> 200 (%zu bytes, %.1f ms)", OP_NAMES[op], len, ms);
  } else {
    sb_free(&out);
    mr = http_respond_json_error(conn, &err, &len);
    LOGD(&s->log, "%s -> %d %s: %s (%.1f ms)", OP_NAMES[op], err.status, err.type, err.message ? err.message : "", ms);
  }
  stats_count(s, -1, op, -1, rq->body.len, len);
  apierr_clear(&err);
  return mr;
}
