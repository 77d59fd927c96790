/*
 * libFuzzer harness: alex-dataapi's request decoding (local/request.c,
 * local/params.c and the operations that use them) through its real entry
 * points, op_execute, op_batch, op_begin and op_end, without a database.
 * Input: a request body, parsed as local/http.c parses it (json_loadb, no
 * flags).
 *
 * The server is marked as stopping and holds no transaction, so everything a
 * request carries is decoded and validated (members, ARNs, the SQL's
 * placeholders and statement count, every parameter and parameter set, base64
 * blobs) and the call then ends where it would first touch PostgreSQL:
 * db_acquire answers ServiceUnavailableError, a transaction id
 * TransactionNotFoundException.  Nothing connects anywhere.
 *
 * Checked: a failed call sets an HTTP status and error type and writes no
 * output; a successful one (an empty batch) writes a JSON object; the error
 * body built from the message as local/http.c builds it is valid JSON; no
 * message contains the configured secret key, session token or database
 * password (unless the request itself carried it: messages may echo members).
 */
#define _GNU_SOURCE /* memmem */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#include "check.h"

#define CLUSTER_ARN "arn:aws:rds:us-east-1:000000000000:cluster:alex-local"
#define SECRET_ARN "arn:aws:secretsmanager:us-east-1:000000000000:secret:alex-local-AbCdEf"
#define SECRET_KEY "fuzzSECRETkeyNEVERinOUTPUT0123456789abcd"
#define SESSION_TOKEN "fuzzSESSIONtokenNEVERinOUTPUT"
#define PG_PASSWORD "fuzzPGpasswordNEVERinOUTPUT"

static void server_init(server *s) {
  memset(s, 0, sizeof *s);
  s->cfg.cluster_arn = CLUSTER_ARN;
  s->cfg.secret_arn = SECRET_ARN;
  s->cfg.default_database = "alex";
  s->cfg.region = "us-east-1";
  s->cfg.access_key = "AKIAFUZZFUZZFUZZFUZZ";
  s->cfg.secret_key = SECRET_KEY;
  s->cfg.session_token = SESSION_TOKEN;
  s->cfg.pg_password = PG_PASSWORD;
  s->cfg.pg_host = "/nonexistent";
  s->cfg.statement_timeout = 45;
  s->cfg.max_response_bytes = 1048576;
  s->cfg.pool_size = 4;
  s->log.f = stderr;
  s->log.level = -1; /* silent */
  pthread_mutex_init(&s->log.mu, NULL);
  server_locks_init(s);
  char err[256];
  CHECK(cluster_init(s, err, sizeof err) == 0); /* no state file: the defaults, Data API enabled */
  s->stopping = 1; /* db_acquire refuses: no connection is ever attempted */
}

static void server_done(server *s) {
  pthread_mutex_destroy(&s->log.mu);
  server_locks_destroy(s);
}

static const char *const secrets[] = {SECRET_KEY, SESSION_TOKEN, PG_PASSWORD};

static void check_result(const uint8_t *data, size_t size, int rc, sbuf *out, apierr *err) {
  if (rc != 0) {
    CHECK(rc == -1);
    CHECK(err->status >= 400 && err->status <= 599 && err->type && *err->type);
    CHECK(out->len == 0);
    const char *m = err->message ? err->message : "";
    /* (a message may echo the request, so only secrets the request did not carry count) */
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
      CHECK(!strstr(m, secrets[i]) || memmem(data, size, secrets[i], strlen(secrets[i])));
    /* the error body, as local/http.c writes it, parses back */
    sbuf b = {0};
    sb_puts(&b, "{\"__type\":");
    sb_json_str(&b, err->type, strlen(err->type));
    sb_puts(&b, ",\"message\":");
    sb_json_str(&b, m, strlen(m));
    sb_putc(&b, '}');
    CHECK(!b.oom);
    json_error_t je;
    json_t *j = json_loadb(b.p, b.len, 0, &je);
    if (!j) fprintf(stderr, "error body is not JSON (%s): %.*s\n", je.text, (int)b.len, b.p);
    CHECK(j != NULL);
    CHECK(strcmp(json_string_value(json_object_get(j, "message")), m) == 0);
    json_decref(j);
    sb_free(&b);
  } else {
    CHECK(err->status == 0);
    CHECK(!out->oom && out->len > 0);
    json_t *j = json_loadb(out->p, out->len, 0, NULL);
    CHECK(j && json_is_object(j));
    json_decref(j);
  }
  sb_free(out);
  apierr_clear(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_error_t je;
  json_t *req = json_loadb((const char *)data, size, 0, &je);
  if (!req) return 0;
  if (!json_is_object(req)) {
    json_decref(req);
    return 0;
  }
  server s;
  server_init(&s);
  for (int op = 0; op < 5; op++) {
    sbuf out = {0};
    apierr err = {0};
    int rc;
    switch (op) {
    case 0: rc = op_execute(&s, req, &out, &err); break;
    case 1: rc = op_batch(&s, req, &out, &err); break;
    case 2: rc = op_begin(&s, req, &out, &err); break;
    case 3: rc = op_end(&s, req, 1, &out, &err); break;
    default: rc = op_end(&s, req, 0, &out, &err); break;
    }
    check_result(data, size, rc, &out, &err);
  }
  CHECK(s.txns == NULL && s.ntxns == 0 && s.idle == NULL && s.active == NULL);
  server_done(&s);
  json_decref(req);
  return 0;
}
