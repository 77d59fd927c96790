/* PostgreSQL sessions: the autocommit pool, pinned transaction sessions, their
 * expiry, the type catalogue, and PostgreSQL error text in the Data API's form. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "server.h"

const char *const OP_NAMES[5] = {"ExecuteStatement", "BatchExecuteStatement", "BeginTransaction",
                                 "CommitTransaction", "RollbackTransaction"};

/* ---- errors ---- */

void apierr_set(apierr *e, int status, const char *type, const char *fmt, ...) {
  apierr_clear(e);
  e->status = status;
  e->type = type;
  if (fmt && *fmt) {
    sbuf b = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    e->message = sb_detach(&b, NULL); /* NULL on oom: an empty message, still an error */
  }
}

void apierr_clear(apierr *e) {
  free(e->message);
  memset(e, 0, sizeof *e);
}

/* "ERROR: <msg>; [Hint: <hint>;] [Position: <n>;] SQLState: <code>" */
void db_error_from_result(const PGresult *r, apierr *e) {
  const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (!sev) sev = PQresultErrorField(r, PG_DIAG_SEVERITY);
  const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  const char *hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
  const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
  const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  if (!msg) {
    /* libpq's own error (lost connection, protocol trouble) */
    const char *m = PQresultErrorMessage(r);
    size_t n = m ? strlen(m) : 0;
    while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' ')) n--;
    apierr_set(e, 500, "InternalServerErrorException", "%.*s", (int)n, m ? m : "");
    return;
  }
  sbuf b = {0};
  sb_printf(&b, "%s: %s; ", sev ? sev : "ERROR", msg);
  if (hint) sb_printf(&b, "Hint: %s; ", hint);
  if (pos) sb_printf(&b, "Position: %s; ", pos);
  sb_printf(&b, "SQLState: %s", state ? state : "XX000");
  apierr_clear(e);
  e->status = 400;
  e->type = "DatabaseErrorException";
  e->message = sb_detach(&b, NULL);
}

void db_error_from_conn(dbconn *c, apierr *e) {
  const char *m = c && c->pg ? PQerrorMessage(c->pg) : "no connection";
  size_t n = strlen(m);
  while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' ')) n--;
  apierr_set(e, 500, "InternalServerErrorException", "Database connection failed: %.*s", (int)n, m);
}

void db_statement_timeout(apierr *e, dbconn *c) {
  apierr_set(e, 400, "StatementTimeoutException", "Request timed out");
  e->db_connection_id = PQbackendPID(c->pg);
}

/* ---- sessions ---- */

static void quiet_notices(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static dbconn *db_connect(server *s, const char *db, apierr *err) {
  const settings *c = &s->cfg;
  const char *keys[12], *vals[12];
  int k = 0;
#define KV(key, val) do { keys[k] = key; vals[k] = val; k++; } while (0)
#define KVOPT(key, val) do { if (val) KV(key, val); } while (0)
  KVOPT("host", c->pg_host);
  KVOPT("port", c->pg_port);
  KVOPT("user", c->pg_user);
  KVOPT("password", c->pg_password);
  KV("dbname", db);
  KV("application_name", "alex-dataapi");
  KV("client_encoding", "UTF8");
  KV("connect_timeout", "10");
  KV("options", "-c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=postgres -c extra_float_digits=1 "
                "-c bytea_output=hex");
#undef KV
#undef KVOPT
  keys[k] = vals[k] = NULL;
  dbconn *dc = calloc(1, sizeof *dc);
  if (!dc) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    return NULL;
  }
  dc->db = xstrdup(db);
  dc->pg = PQconnectdbParams(keys, vals, 0);
  if (!dc->db || !dc->pg) {
    db_close(dc);
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    return NULL;
  }
  if (PQstatus(dc->pg) != CONNECTION_OK) {
    const char *m = PQerrorMessage(dc->pg);
    const char *fatal = strstr(m, "FATAL:");
    if (fatal) {
      /* the server refused: unknown database, bad password, too many clients */
      const char *t = fatal + 6;
      while (*t == ' ') t++;
      size_t n = strcspn(t, "\n");
      const char *state = strstr(t, "does not exist") ? "3D000" : NULL;
      if (state)
        apierr_set(err, 400, "DatabaseErrorException", "FATAL: %.*s; SQLState: %s", (int)n, t, state);
      else
        apierr_set(err, 400, "DatabaseErrorException", "FATAL: %.*s", (int)n, t);
    } else {
      size_t n = strlen(m);
      while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' ')) n--;
      apierr_set(err, 504, "DatabaseUnavailableException", "The database is unavailable: %.*s", (int)n, m);
    }
    LOGW(&s->log, "cannot connect to database %s: %s", db, err->message ? err->message : "");
    db_close(dc);
    return NULL;
  }
  PQsetNoticeProcessor(dc->pg, quiet_notices, NULL);
  dc->cancel = PQgetCancel(dc->pg);
  LOGD(&s->log, "opened a session on database %s (backend %d)", db, PQbackendPID(dc->pg));
  return dc;
}

void db_close(dbconn *c) {
  if (!c) return;
  if (c->cancel) PQfreeCancel(c->cancel);
  if (c->pg) PQfinish(c->pg);
  free(c->meta);
  free(c->db);
  free(c);
}

/* Reads the result of the DISCARD ALL sent by db_release: by now it has
 * usually arrived, so this costs no round trip. */
static int finish_reset(dbconn *c) {
  int ok = 1;
  PGresult *r;
  c->reset_pending = 0;
  while ((r = PQgetResult(c->pg)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK) ok = 0;
    PQclear(r);
  }
  /* Reading the reset's answer may have pulled in a later "terminating
   * connection" message too, out of the socket where the idle check below
   * looks: let libpq read on, so a closed session shows as CONNECTION_BAD. */
  if (ok && PQconsumeInput(c->pg) == 0) ok = 0;
  return ok && PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) == PQTRANS_IDLE ? 0 : -1;
}

dbconn *db_acquire(server *s, const char *db, apierr *err) {
  for (;;) {
    dbconn *c = NULL;
    pthread_mutex_lock(&s->pool_mu);
    if (s->stopping) {
      pthread_mutex_unlock(&s->pool_mu);
      apierr_set(err, 503, "ServiceUnavailableError", "The service is stopping");
      return NULL;
    }
    for (dbconn **pp = &s->idle; *pp; pp = &(*pp)->next) {
      if (strcmp((*pp)->db, db) == 0) {
        c = *pp;
        *pp = c->next;
        c->next = NULL;
        break;
      }
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (!c) return db_connect(s, db, err);
    if (c->reset_pending && finish_reset(c) != 0) {
      LOGD(&s->log, "dropping an idle session whose reset failed");
      db_close(c);
      continue;
    }
    /* An idle session has nothing to read; if it has, the server closed it (restart,
     * pg_terminate_backend) and says so: do not hand that out. */
    struct pollfd pfd = {PQsocket(c->pg), POLLIN, 0};
    if (PQstatus(c->pg) == CONNECTION_OK && pfd.fd >= 0 && poll(&pfd, 1, 0) == 0) return c;
    LOGD(&s->log, "dropping an idle session the server closed");
    db_close(c);
  }
}

static int exec_simple(PGconn *pg, const char *sql) {
  PGresult *r = PQexec(pg, sql);
  int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  return ok ? 0 : -1;
}

void db_release(server *s, dbconn *c) {
  if (!c) return;
  int keep = !c->cancelled && PQstatus(c->pg) == CONNECTION_OK;
  if (keep) {
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) keep = exec_simple(c->pg, "ROLLBACK") == 0;
    else if (ts != PQTRANS_IDLE) keep = 0;
  }
  /* No SET, temp table, prepared statement, LISTEN or advisory lock outlives
   * the call.  The reset is sent now and its answer read at the next acquire,
   * so the round trip to PostgreSQL overlaps with the HTTP answer instead of
   * delaying it (it halved single-client throughput when awaited here). */
  if (keep) {
    keep = PQsendQuery(c->pg, "DISCARD ALL") == 1;
    c->reset_pending = keep;
  }
  if (keep) {
    pthread_mutex_lock(&s->pool_mu);
    int same = 0;
    for (dbconn *p = s->idle; p; p = p->next) same += strcmp(p->db, c->db) == 0;
    if (!s->stopping && same < s->cfg.pool_size) {
      c->idle_since = mono_now();
      c->next = s->idle;
      s->idle = c;
      c = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
  }
  db_close(c);
}

void db_active(server *s, dbconn *c, int on) {
  pthread_mutex_lock(&s->pool_mu);
  if (on) {
    c->aprev = NULL;
    c->anext = s->active;
    if (s->active) s->active->aprev = c;
    s->active = c;
  } else {
    if (c->aprev) c->aprev->anext = c->anext;
    else if (s->active == c) s->active = c->anext;
    if (c->anext) c->anext->aprev = c->aprev;
    c->anext = c->aprev = NULL;
  }
  pthread_mutex_unlock(&s->pool_mu);
}

void db_request_cancel(dbconn *c) {
  char buf[256];
  c->cancelled = 1;
  if (c->cancel) PQcancel(c->cancel, buf, sizeof buf);
}

void db_cancel_active(server *s) {
  pthread_mutex_lock(&s->pool_mu);
  for (dbconn *c = s->active; c; c = c->anext) db_request_cancel(c);
  pthread_mutex_unlock(&s->pool_mu);
}

int db_stopping(server *s) {
  pthread_mutex_lock(&s->pool_mu);
  int v = s->stopping;
  pthread_mutex_unlock(&s->pool_mu);
  return v;
}

int db_wait_ready(PGconn *pg, double deadline) {
  while (PQisBusy(pg)) {
    double left = deadline - mono_now();
    if (left <= 0) return 1;
    struct pollfd pfd = {PQsocket(pg), POLLIN, 0};
    int ms = left > 1 ? 1000 : (int)(left * 1000) + 1;
    int r = poll(&pfd, 1, ms);
    if (r < 0 && errno != EINTR) return -1;
    if (r > 0 && !PQconsumeInput(pg)) return -1;
  }
  return 0;
}

/* ---- transactions ---- */

static void make_id(char out[TXID_LEN + 1]) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  unsigned char raw[TXID_LEN / 4 * 3];
  if (RAND_bytes(raw, (int)sizeof raw) != 1) {
    /* OpenSSL's generator failing is not expected; fall back on time and address entropy */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)out;
    for (size_t i = 0; i < sizeof raw; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      raw[i] = (unsigned char)x;
    }
  }
  size_t o = 0;
  for (size_t i = 0; i < sizeof raw; i += 3) {
    uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = tab[(v >> 6) & 63];
    out[o++] = tab[v & 63];
  }
  out[o] = '\0';
}

void tx_not_found(apierr *err, const char *id) {
  apierr_set(err, 404, "TransactionNotFoundException", "Transaction %s is not found. Transaction may be expired.", id);
}

txn *tx_begin(server *s, dbconn *c, apierr *err) {
  txn *t = calloc(1, sizeof *t);
  if (!t) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    return NULL;
  }
  make_id(t->id);
  t->c = c;
  t->created = t->last_used = mono_now();
  pthread_mutex_lock(&s->tx_mu);
  t->next = s->txns;
  s->txns = t;
  s->ntxns++;
  pthread_mutex_unlock(&s->tx_mu);
  return t;
}

static txn **tx_find(server *s, const char *id) {
  for (txn **pp = &s->txns; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->id, id) == 0) return pp;
  return NULL;
}

static int tx_too_old(server *s, txn *t, double now) {
  return now - t->created > s->cfg.tx_max_lifetime || now - t->last_used > s->cfg.tx_idle_timeout;
}

static void tx_expire(server *s, txn *t, const char *why) {
  LOGI(&s->log, "transaction %.12s... %s: rolled back", t->id, why);
  db_release(s, t->c); /* rolls back, resets */
  free(t);
}

/* Takes tx_mu and finds transaction `id`, *pp its link (NULL when there is
 * none): returns 0 with the lock held, or, when the transaction is running a
 * query, -1 with err set and the lock released. */
static int tx_lookup(server *s, const char *id, txn ***pp, apierr *err) {
  pthread_mutex_lock(&s->tx_mu);
  *pp = tx_find(s, id);
  if (*pp && (**pp)->busy) {
    pthread_mutex_unlock(&s->tx_mu);
    apierr_set(err, 400, "DatabaseErrorException", "Transaction is still running a query");
    return -1;
  }
  return 0;
}

txn *tx_acquire(server *s, const char *id, apierr *err) {
  double now = mono_now();
  txn **pp;
  if (tx_lookup(s, id, &pp, err) != 0) return NULL;
  txn *t = pp ? *pp : NULL;
  if (t && tx_too_old(s, t, now)) {
    *pp = t->next;
    s->ntxns--;
    pthread_mutex_unlock(&s->tx_mu);
    tx_expire(s, t, "expired");
    tx_not_found(err, id);
    return NULL;
  }
  if (!t) {
    pthread_mutex_unlock(&s->tx_mu);
    tx_not_found(err, id);
    return NULL;
  }
  t->busy = 1;
  t->last_used = now;
  pthread_mutex_unlock(&s->tx_mu);
  return t;
}

void tx_release(server *s, txn *t) {
  pthread_mutex_lock(&s->tx_mu);
  t->busy = 0;
  t->last_used = mono_now();
  pthread_cond_broadcast(&s->tx_cv);
  pthread_mutex_unlock(&s->tx_mu);
}

txn *tx_take(server *s, const char *id, apierr *err) {
  double now = mono_now();
  txn **pp;
  if (tx_lookup(s, id, &pp, err) != 0) return NULL;
  txn *t = pp ? *pp : NULL;
  if (t) {
    *pp = t->next;
    s->ntxns--;
  }
  pthread_mutex_unlock(&s->tx_mu);
  if (t && tx_too_old(s, t, now)) {
    tx_expire(s, t, "expired");
    t = NULL;
  }
  if (!t) tx_not_found(err, id);
  return t;
}

void tx_finish(server *s, txn *t, int commit_ok) {
  (void)commit_ok;
  db_release(s, t->c);
  free(t);
}

int db_open_transactions(server *s) {
  pthread_mutex_lock(&s->tx_mu);
  int n = s->ntxns;
  pthread_mutex_unlock(&s->tx_mu);
  return n;
}

static void *reaper_main(void *arg) {
  server *s = arg;
  double step = s->cfg.tx_idle_timeout / 4;
  if (step > 1) step = 1;
  if (step < 0.05) step = 0.05;
  pthread_mutex_lock(&s->tx_mu);
  while (!s->reaper_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double when = (double)ts.tv_nsec / 1e9 + step;
    ts.tv_sec += (time_t)when;
    ts.tv_nsec = (long)((when - (double)(time_t)when) * 1e9);
    pthread_cond_timedwait(&s->tx_cv, &s->tx_mu, &ts);
    if (s->reaper_stop) break;
    double now = mono_now();
    txn *expired = NULL;
    for (txn **pp = &s->txns; *pp;) {
      txn *t = *pp;
      if (!t->busy && tx_too_old(s, t, now)) {
        *pp = t->next;
        s->ntxns--;
        t->next = expired;
        expired = t;
      } else {
        pp = &t->next;
      }
    }
    if (expired) {
      pthread_mutex_unlock(&s->tx_mu);
      while (expired) {
        txn *t = expired;
        expired = t->next;
        tx_expire(s, t, now - t->created > s->cfg.tx_max_lifetime ? "reached tx_max_lifetime" : "was idle too long");
      }
      pthread_mutex_lock(&s->tx_mu);
    }
  }
  pthread_mutex_unlock(&s->tx_mu);
  return NULL;
}

void server_locks_init(server *s) {
  pthread_mutex_init(&s->pool_mu, NULL);
  pthread_mutex_init(&s->tx_mu, NULL);
  pthread_cond_init(&s->tx_cv, NULL);
  pthread_mutex_init(&s->type_mu, NULL);
  pthread_mutex_init(&s->stats_mu, NULL);
  pthread_mutex_init(&s->fault_mu, NULL);
  pthread_mutex_init(&s->cluster_mu, NULL);
}

void server_locks_destroy(server *s) {
  pthread_mutex_destroy(&s->pool_mu);
  pthread_mutex_destroy(&s->tx_mu);
  pthread_cond_destroy(&s->tx_cv);
  pthread_mutex_destroy(&s->type_mu);
  pthread_mutex_destroy(&s->stats_mu);
  pthread_mutex_destroy(&s->fault_mu);
  pthread_mutex_destroy(&s->cluster_mu);
}

int db_init(server *s) {
  if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) return -1;
  s->reaper_started = 1;
  return 0;
}

void db_shutdown(server *s) {
  pthread_mutex_lock(&s->pool_mu);
  s->stopping = 1;
  pthread_mutex_unlock(&s->pool_mu);
  pthread_mutex_lock(&s->tx_mu);
  s->reaper_stop = 1;
  pthread_cond_broadcast(&s->tx_cv);
  pthread_mutex_unlock(&s->tx_mu);
  if (s->reaper_started) pthread_join(s->reaper, NULL);
  s->reaper_started = 0;

  /* background statements: cancel them and wait (bounded) */
  db_cancel_active(s);
  double until = mono_now() + 10;
  pthread_mutex_lock(&s->tx_mu);
  while (s->drainers > 0 && mono_now() < until) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&s->tx_cv, &s->tx_mu, &ts);
  }
  txn *all = s->txns;
  int n = s->ntxns;
  s->txns = NULL;
  s->ntxns = 0;
  pthread_mutex_unlock(&s->tx_mu);
  if (n) LOGI(&s->log, "rolling back %d open transaction(s)", n);
  while (all) {
    txn *t = all;
    all = t->next;
    if (t->busy) { /* a drainer still owns it: leave it to the process exit */
      continue;
    }
    if (PQstatus(t->c->pg) == CONNECTION_OK) exec_simple(t->c->pg, "ROLLBACK");
    db_close(t->c);
    free(t);
  }
  pthread_mutex_lock(&s->pool_mu);
  dbconn *idle = s->idle;
  s->idle = NULL;
  pthread_mutex_unlock(&s->pool_mu);
  while (idle) {
    dbconn *c = idle;
    idle = c->next;
    db_close(c);
  }
  pthread_mutex_lock(&s->type_mu);
  typecache_entry *te = s->types;
  s->types = NULL;
  pthread_mutex_unlock(&s->type_mu);
  while (te) {
    typecache_entry *n2 = te->next;
    free(te->db);
    free(te);
    te = n2;
  }
}

/* ---- types ---- */

#define B(oid, name, jdbc, kind) {oid, name, jdbc, kind, K_UNSUPPORTED, oid}
#define A(oid, name, elemkind, elemoid) {oid, name, 2003, K_ARRAY, elemkind, elemoid}
static const typeinfo BUILTIN[] = {
    B(16, "bool", -7, K_BOOL),
    B(17, "bytea", -2, K_BYTEA),
    B(18, "char", 1, K_UNSUPPORTED),
    B(19, "name", 12, K_TEXT),
    B(20, "int8", -5, K_INT),
    B(21, "int2", 5, K_INT),
    B(23, "int4", 4, K_INT),
    B(25, "text", 12, K_TEXT),
    B(26, "oid", -5, K_TEXT),
    B(114, "json", 1111, K_TEXT),
    B(142, "xml", 2009, K_UNSUPPORTED),
    B(650, "cidr", 1111, K_TEXT),
    B(700, "float4", 7, K_FLOAT4),
    B(701, "float8", 8, K_FLOAT8),
    B(705, "unknown", 12, K_TEXT),
    B(790, "money", 8, K_UNSUPPORTED),
    B(869, "inet", 1111, K_TEXT),
    B(1042, "bpchar", 1, K_TEXT),
    B(1043, "varchar", 12, K_TEXT),
    B(1082, "date", 91, K_TEMPORAL),
    B(1083, "time", 92, K_TEXT),
    B(1114, "timestamp", 93, K_TEMPORAL),
    B(1184, "timestamptz", 93, K_TSTZ),
    B(1186, "interval", 1111, K_UNSUPPORTED),
    B(1266, "timetz", 92, K_TEXT),
    B(1560, "bit", -7, K_UNSUPPORTED),
    B(1562, "varbit", 1111, K_UNSUPPORTED),
    B(1700, "numeric", 2, K_NUMERIC),
    B(2249, "record", 1111, K_UNSUPPORTED),
    B(2278, "void", 1111, K_VOID),
    B(2950, "uuid", 1111, K_TEXT),
    B(3802, "jsonb", 1111, K_TEXT),
    A(1000, "_bool", K_BOOL, 16),
    A(1001, "_bytea", K_BYTEA, 17),
    A(1003, "_name", K_TEXT, 19),
    A(1005, "_int2", K_INT, 21),
    A(1007, "_int4", K_INT, 23),
    A(1009, "_text", K_TEXT, 25),
    A(1014, "_bpchar", K_TEXT, 1042),
    A(1015, "_varchar", K_TEXT, 1043),
    A(1016, "_int8", K_INT, 20),
    A(1021, "_float4", K_FLOAT4, 700),
    A(1022, "_float8", K_FLOAT8, 701),
    A(1028, "_oid", K_TEXT, 26),
    A(1115, "_timestamp", K_TEMPORAL, 1114),
    A(1182, "_date", K_TEMPORAL, 1082),
    A(1183, "_time", K_TEXT, 1083),
    A(1185, "_timestamptz", K_TSTZ, 1184),
    A(1231, "_numeric", K_NUMERIC, 1700),
    A(1270, "_timetz", K_TEXT, 1266),
    A(199, "_json", K_TEXT, 114),
    A(2951, "_uuid", K_TEXT, 2950),
    A(3807, "_jsonb", K_TEXT, 3802),
    A(651, "_cidr", K_TEXT, 650),
    A(1041, "_inet", K_TEXT, 869),
    {1002, "_char", 2003, K_UNSUPPORTED, K_UNSUPPORTED, 18},
    {1187, "_interval", 2003, K_UNSUPPORTED, K_UNSUPPORTED, 1186},
    {791, "_money", 2003, K_UNSUPPORTED, K_UNSUPPORTED, 790},
    {143, "_xml", 2003, K_UNSUPPORTED, K_UNSUPPORTED, 142},
};
#undef B
#undef A

const typeinfo *types_builtin(Oid oid) {
  for (size_t i = 0; i < sizeof BUILTIN / sizeof BUILTIN[0]; i++)
    if (BUILTIN[i].oid == oid) return &BUILTIN[i];
  return NULL;
}

static int cache_get(server *s, const char *db, Oid oid, typeinfo *out) {
  int found = 0;
  pthread_mutex_lock(&s->type_mu);
  for (typecache_entry *e = s->types; e; e = e->next) {
    if (e->t.oid == oid && strcmp(e->db, db) == 0) {
      *out = e->t;
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&s->type_mu);
  return found;
}

static void cache_put(server *s, const char *db, const typeinfo *t) {
  typecache_entry *e = calloc(1, sizeof *e);
  if (!e) return;
  e->db = xstrdup(db);
  if (!e->db) {
    free(e);
    return;
  }
  e->t = *t;
  pthread_mutex_lock(&s->type_mu);
  e->next = s->types;
  s->types = e;
  pthread_mutex_unlock(&s->type_mu);
}

/* Looks one user-defined type up on pg (another session of the same database). */
static int lookup_type(server *s, PGconn *pg, const char *db, Oid oid, typeinfo *out, int depth) {
  const typeinfo *b = types_builtin(oid);
  if (b) {
    *out = *b;
    return 0;
  }
  if (cache_get(s, db, oid, out)) return 0;
  if (depth > 4) return -1;
  char param[16];
  snprintf(param, sizeof param, "%u", oid);
  const char *vals[1] = {param};
  PGresult *r = PQexecParams(pg,
                             "SELECT t.typname, t.typtype, t.typelem, t.typbasetype, "
                             "t.typinput = 'pg_catalog.array_in'::pg_catalog.regproc "
                             "FROM pg_catalog.pg_type t WHERE t.oid = $1::pg_catalog.oid",
                             1, NULL, vals, NULL, NULL, 0);
  if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    PQclear(r);
    return -1;
  }
  typeinfo t;
  memset(&t, 0, sizeof t);
  t.oid = oid;
  snprintf(t.name, sizeof t.name, "%s", PQgetvalue(r, 0, 0));
  char typtype = PQgetvalue(r, 0, 1)[0];
  Oid elem = (Oid)strtoul(PQgetvalue(r, 0, 2), NULL, 10);
  Oid basetype = (Oid)strtoul(PQgetvalue(r, 0, 3), NULL, 10);
  int is_array = PQgetvalue(r, 0, 4)[0] == 't';
  PQclear(r);
  typeinfo sub;
  if (typtype == 'e') {
    t.kind = K_TEXT;
    t.jdbc = 12;
    t.base = 1043;
  } else if (typtype == 'd' && basetype) {
    if (lookup_type(s, pg, db, basetype, &sub, depth + 1) != 0) return -1;
    t.kind = sub.kind;
    t.elem = sub.elem;
    t.jdbc = 2001; /* DISTINCT, as pgjdbc reports domains */
    t.base = sub.base;
  } else if (typtype == 'b' && is_array && elem) {
    if (lookup_type(s, pg, db, elem, &sub, depth + 1) != 0) return -1;
    t.jdbc = 2003;
    t.base = sub.base;
    if (sub.kind == K_UNSUPPORTED || sub.kind == K_ARRAY || sub.kind == K_VOID) {
      t.kind = K_UNSUPPORTED;
    } else {
      t.kind = K_ARRAY;
      t.elem = sub.kind;
    }
  } else {
    t.kind = K_UNSUPPORTED;
    t.jdbc = 1111;
    t.base = oid;
  }
  cache_put(s, db, &t);
  *out = t;
  return 0;
}

int types_resolve(server *s, const char *db, const Oid *oids, int n, typeinfo *out) {
  dbconn *c = NULL;
  int rc = 0;
  for (int i = 0; i < n; i++) {
    const typeinfo *b = types_builtin(oids[i]);
    if (b) {
      out[i] = *b;
      continue;
    }
    if (cache_get(s, db, oids[i], &out[i])) continue;
    if (!c) {
      apierr e = {0};
      c = db_acquire(s, db, &e);
      apierr_clear(&e);
    }
    if (!c || lookup_type(s, c->pg, db, oids[i], &out[i], 0) != 0) {
      /* not visible from another session (created in an open transaction): plain text */
      memset(&out[i], 0, sizeof out[i]);
      out[i].oid = oids[i];
      out[i].kind = K_TEXT;
      out[i].jdbc = 1111;
      out[i].base = oids[i];
      rc = 1;
    }
  }
  if (c) db_release(s, c);
  return rc;
}
