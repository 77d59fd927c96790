#ifndef ALEX_DATAAPI_SERVER_H
#define ALEX_DATAAPI_SERVER_H
/* The service's shared state and the interfaces between its parts. */
#include <pthread.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "config.h"
#include "util.h"

#define TXID_LEN 184 /* base64 of 138 random bytes */

/* ---- errors ---- */
typedef struct {
  int status;          /* HTTP status; 0 = no error */
  const char *type;    /* x-amzn-ErrorType / __type */
  char *message;       /* malloc'd; may be NULL (empty message) */
  long long db_connection_id; /* StatementTimeoutException's extra member, when > 0 */
} apierr;
void apierr_set(apierr *e, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void apierr_clear(apierr *e);
#define VALIDATION(e, ...) apierr_set((e), 400, "ValidationException", __VA_ARGS__)

/* ---- PostgreSQL sessions ---- */
/* Catalogue facts about one table column, as columnMetadata reports them.
 * Cached per session as pgjdbc caches field metadata per connection: a
 * table's OID changes when it is dropped and created again, so only an
 * ALTER of nullability or defaults on a live table can make an entry stale. */
#define COLMETA_CACHE_SIZE 256
typedef struct {
  Oid rel;
  int att;
  int notnull, autoinc;
  char relname[64]; /* NAMEDATALEN */
} colmeta;

typedef struct dbconn {
  PGconn *pg;
  colmeta *meta;               /* COLMETA_CACHE_SIZE entries, allocated on first use */
  int meta_count, meta_next;
  PGcancel *cancel;
  char *db;
  int cancelled;               /* a cancel was sent: never reuse (a late cancel could hit the next query) */
  int reset_pending;           /* DISCARD ALL was sent at release; its result is read at the next acquire */
  double idle_since;
  struct dbconn *next;         /* idle pool list */
  struct dbconn *anext, *aprev; /* active list (cancelled at shutdown) */
} dbconn;

typedef struct txn {
  char id[TXID_LEN + 1];
  dbconn *c;
  double created, last_used;   /* monotonic */
  int busy;
  struct txn *next;
} txn;

/* A PostgreSQL type as the Data API sees it. */
enum vkind {
  K_UNSUPPORTED = 0, K_INT, K_NUMERIC, K_FLOAT4, K_FLOAT8, K_BOOL, K_BYTEA, K_TEXT,
  K_TEMPORAL, /* date/timestamp: text ('infinity' included) */
  K_TSTZ,     /* timestamptz: the +00 offset is removed */
  K_VOID, K_ARRAY
};
typedef struct {
  Oid oid;
  char name[64];       /* typeName */
  int jdbc;            /* java.sql.Types */
  enum vkind kind;
  enum vkind elem;     /* for K_ARRAY */
  Oid base;            /* builtin type used for precision/scale/signedness */
} typeinfo;

typedef struct typecache_entry {
  char *db;
  typeinfo t;
  struct typecache_entry *next;
} typecache_entry;

typedef struct {
  uint64_t ops[5];
  uint64_t bytes_in, bytes_out;
  uint64_t faults[5]; /* throttle, resuming, 5xx, drop, drop_after */
} stats;

enum op { OP_EXECUTE, OP_BATCH, OP_BEGIN, OP_COMMIT, OP_ROLLBACK, OP_NONE };
extern const char *const OP_NAMES[5];

typedef struct server {
  settings cfg;
  logger log;
  char cluster_id[128];

  pthread_mutex_t pool_mu;
  dbconn *idle;          /* idle sessions, any database */
  dbconn *active;        /* sessions running something */
  int stopping;

  pthread_mutex_t tx_mu;
  pthread_cond_t tx_cv;  /* reaper wake-up, drainer completion */
  txn *txns;
  int ntxns;
  int drainers;          /* background statements (continueAfterTimeout) */
  int reaper_stop;       /* under tx_mu */
  pthread_t reaper;
  int reaper_started;

  pthread_mutex_t type_mu;
  typecache_entry *types;

  pthread_mutex_t stats_mu;
  stats st;
  int inflight;          /* operation calls being handled (under stats_mu) */

  pthread_mutex_t fault_mu;
  fault_settings faults;
  uint64_t prng;
} server;

/* db.c */
int db_init(server *s);                       /* starts the reaper; 0 or -1 */
void db_shutdown(server *s);                  /* cancels, rolls back, closes everything */
void db_cancel_active(server *s);
dbconn *db_acquire(server *s, const char *db, apierr *err);
/* Returns a session to the pool (reset: DISCARD ALL first) or closes it. */
void db_release(server *s, dbconn *c);
void db_close(dbconn *c);
void db_active(server *s, dbconn *c, int on);
void db_request_cancel(dbconn *c);
void db_error_from_result(const PGresult *r, apierr *e);
void db_error_from_conn(dbconn *c, apierr *e);
void db_statement_timeout(apierr *e, dbconn *c);  /* StatementTimeoutException with c's backend pid */
int db_stopping(server *s);                        /* the service is shutting down */
/* Consumes input until a result is ready: 0 ready, 1 deadline (monotonic) passed, -1 connection trouble. */
int db_wait_ready(PGconn *pg, double deadline);
int db_open_transactions(server *s);

txn *tx_begin(server *s, dbconn *c, apierr *err);            /* registers; NULL on oom */
txn *tx_acquire(server *s, const char *id, apierr *err);     /* marks busy */
void tx_release(server *s, txn *t);                          /* clears busy */
txn *tx_take(server *s, const char *id, apierr *err);        /* removes (commit/rollback) */
void tx_finish(server *s, txn *t, int commit_ok);            /* frees after take */
void tx_not_found(apierr *err, const char *id);

int types_resolve(server *s, const char *db, const Oid *oids, int n, typeinfo *out);
const typeinfo *types_builtin(Oid oid);

/* The five operations (execute.c, batch.c, transactions.c).  out receives
 * the JSON body on success. */
int op_execute(server *s, json_t *req, sbuf *out, apierr *err);
int op_batch(server *s, json_t *req, sbuf *out, apierr *err);
int op_begin(server *s, json_t *req, sbuf *out, apierr *err);
int op_end(server *s, json_t *req, int commit, sbuf *out, apierr *err);

/* http.c */
struct MHD_Daemon;
struct sockaddr;
struct MHD_Daemon *http_start(server *s, const struct sockaddr *addr, char *err, size_t errlen);
void stats_count(server *s, int which_fault, enum op op, uint64_t in, uint64_t out);

#endif
