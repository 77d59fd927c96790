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

enum op { OP_EXECUTE, OP_BATCH, OP_BEGIN, OP_COMMIT, OP_ROLLBACK, OP_NONE };
extern const char *const OP_NAMES[5];

/* The RDS Query API's actions the service answers. */
enum rds_action { RDS_DESCRIBE, RDS_MODIFY, RDS_ENABLE_HTTP, RDS_DISABLE_HTTP, RDS_NACTIONS };
extern const char *const RDS_ACTION_NAMES[RDS_NACTIONS];

enum fault { FAULT_THROTTLE, FAULT_RESUMING, FAULT_5XX, FAULT_DROP, FAULT_DROP_AFTER, NFAULTS };
extern const char *const FAULT_NAMES[NFAULTS];

typedef struct {
  uint64_t ops[5];
  uint64_t rds[RDS_NACTIONS];
  uint64_t bytes_in, bytes_out;
  uint64_t faults[NFAULTS];
} stats;

/* The local cluster as the RDS control plane describes it. */
#define CLUSTER_STATUS_LEN 48
typedef struct {
  double min_capacity, max_capacity; /* ACUs */
  int seconds_until_auto_pause;      /* used when min_capacity is 0 */
  int http_endpoint_enabled;         /* the Data API answers only when set */
  long long created;                 /* ClusterCreateTime, seconds since the epoch */
  char status[CLUSTER_STATUS_LEN];   /* "available" unless the admin API set another */
  int status_describes;              /* DescribeDBClusters answers left with that status; -1: until changed */
  int modify_describes;              /* answers a ModifyDBCluster leaves it "modifying" for (admin API) */
  char engine_version[16];           /* "15.18"; "" until read from PostgreSQL */
} cluster_state;

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

  pthread_mutex_t cluster_mu;
  cluster_state cluster;
} server;

/* db.c */
void server_locks_init(server *s);            /* the server's locks but the log's */
void server_locks_destroy(server *s);
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

/* stats.c: one counted call (op OP_NONE or rds_action -1 when not that kind;
 * fault -1 when none), with its request and response body bytes. */
void stats_count(server *s, int fault, enum op op, int rds_action, uint64_t in, uint64_t out);
void stats_reset(server *s);
void stats_json(server *s, sbuf *b);

/* faults.c */
typedef struct {
  double latency_ms;
  int fault;   /* FAULT_* decided before running, or -1 */
  int drop_after;
  int use_503;
} fault_draw;
/* Six draws per call, always, so a seed reproduces the same sequence;
 * may_resume: the call can meet DatabaseResumingException. */
void faults_draw(server *s, int may_resume, fault_draw *d);
/* An API's names for the errors injected faults answer with. */
typedef struct {
  const char *throttle;                          /* 400, "Rate exceeded" */
  const char *resuming;                          /* 400; NULL: the API never meets a resuming instance */
  const char *unavailable, *unavailable_message; /* 503 */
  const char *internal, *internal_message;       /* 500 */
} fault_errors;
/* A call's faults: draws them (faults_draw; a resuming instance only when
 * may_resume and e has a name for it), waits the injected latency, and sets
 * err in e's names for a throttle, resuming or 5xx fault.  The caller acts on
 * d->fault == FAULT_DROP and d->drop_after. */
void faults_start(server *s, int may_resume, const fault_errors *e, fault_draw *d, apierr *err);
void faults_get(server *s, fault_settings *f);
void faults_put(server *s, const fault_settings *f, int reseed); /* reseed: restart the generator at f->seed */
void faults_json(server *s, sbuf *b);

/* cluster.c: the local cluster's state, kept in cluster_state_file. */
int cluster_init(server *s, char *err, size_t errlen); /* defaults, then the file; -1 on a bad file */
/* The Serverless v2 scaling rules, for the state file and ModifyDBCluster:
 * a capacity is lo..256 ACUs in steps of 0.5; SecondsUntilAutoPause a whole
 * number from 300 to 86400.  0 with *out set, or -1 (*out untouched). */
int cluster_parse_acu(const char *v, double lo, double *out);
int cluster_parse_pause_seconds(const char *v, int *out);
/* A copy of the state; describing: this is a DescribeDBClusters answer,
 * which uses up one answer of an injected status. */
void cluster_get(server *s, int describing, cluster_state *out);
int cluster_http_endpoint_enabled(server *s);
/* The new scaling configuration (already checked) or the Data API flag,
 * written to the state file before it is taken; -1 with err when the file
 * cannot be written. */
int cluster_put_scaling(server *s, double min, double max, int seconds, apierr *err);
int cluster_put_http_endpoint(server *s, int enabled, apierr *err);
/* The admin API's injected status: status for for_describes DescribeDBClusters
 * answers (-1: until changed); -1 with err for a status RDS does not have. */
int cluster_set_status(server *s, const char *status, int for_describes, char *err, size_t errlen);
void cluster_set_modify_describes(server *s, int n);
/* The Aurora engine version the cluster reports: the engine_version setting,
 * else PostgreSQL's major.minor (read once from the server). */
int cluster_engine_version(server *s, char out[16], apierr *err);
void cluster_json(server *s, sbuf *b);

#endif
