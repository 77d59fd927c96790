/* The local cluster as the RDS control plane sees it: its Serverless v2
 * scaling configuration and Data API flag (kept in cluster_state_file, so
 * they survive a restart), an injected status, and the engine version read
 * from PostgreSQL. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dotenv.h"
#include "server.h"

/* The statuses RDS documents for a DB cluster. */
static const char *const STATUSES[] = {
    "available", "backing-up", "backtracking", "cloning-failed", "creating", "deleting", "failing-over",
    "inaccessible-encryption-credentials", "inaccessible-encryption-credentials-recoverable", "maintenance",
    "migrating", "migration-failed", "modifying", "promoting", "rebooting", "renaming",
    "resetting-master-credentials", "starting", "stopped", "stopping", "storage-optimization",
    "update-iam-db-auth", "upgrading", NULL};

/* ---- the state file ---- */

typedef struct {
  cluster_state *c;
  char *err;
  size_t errlen;
} load_ctx;

int cluster_parse_acu(const char *v, double lo, double *out) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end || !isfinite(d) || d < lo || d > 256 || d * 2 != floor(d * 2)) return -1;
  *out = d;
  return 0;
}

int cluster_parse_pause_seconds(const char *v, int *out) {
  char *end;
  long n = strtol(v, &end, 10);
  if (!*v || *end || n < 300 || n > 86400) return -1;
  *out = (int)n;
  return 0;
}

static int load_cb(void *ud, const char *key, const char *value) {
  load_ctx *lc = ud;
  cluster_state *c = lc->c;
  char *end;
  int ok = 1;
  if (strcmp(key, "MIN_CAPACITY") == 0) {
    ok = cluster_parse_acu(value, 0, &c->min_capacity) == 0;
  } else if (strcmp(key, "MAX_CAPACITY") == 0) {
    ok = cluster_parse_acu(value, 1, &c->max_capacity) == 0;
  } else if (strcmp(key, "SECONDS_UNTIL_AUTO_PAUSE") == 0) {
    ok = cluster_parse_pause_seconds(value, &c->seconds_until_auto_pause) == 0;
  } else if (strcmp(key, "HTTP_ENDPOINT_ENABLED") == 0) {
    ok = strcmp(value, "true") == 0 || strcmp(value, "false") == 0;
    c->http_endpoint_enabled = strcmp(value, "true") == 0;
  } else if (strcmp(key, "CREATED") == 0) {
    long long n = strtoll(value, &end, 10);
    ok = *value && !*end && n > 0;
    c->created = n;
  } else {
    snprintf(lc->err, lc->errlen, "unknown name %s", key);
    return 1;
  }
  if (!ok) {
    snprintf(lc->err, lc->errlen, "%s has an invalid value '%.40s'", key, value);
    return 1;
  }
  return 0;
}

/* Reads the file into c; 1 when it does not exist, 0, or -1 with err. */
static int load_file(const char *path, cluster_state *c, char *err, size_t errlen) {
  char *buf;
  size_t n;
  int rd = read_small_file(path, &buf, &n);
  if (rd == -1 && errno == ENOENT) return 1;
  if (rd == -1) snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
  else if (rd == -2) snprintf(err, errlen, "cannot read %s: unreadable or larger than 1 MiB", path);
  else if (rd != 0) snprintf(err, errlen, "out of memory");
  if (rd != 0) return -1;
  char msg[200] = "";
  load_ctx lc = {c, msg, sizeof msg};
  int line = 0;
  int rc = dotenv_parse(buf, n, load_cb, &lc, &line, msg, sizeof msg);
  free(buf);
  if (rc == 0 && c->min_capacity > c->max_capacity) {
    snprintf(msg, sizeof msg, "MIN_CAPACITY is above MAX_CAPACITY");
    rc = 1;
  }
  /* a syntax error names its line, as in the config file */
  char where[40] = "";
  if (rc == -1) snprintf(where, sizeof where, ":%d", line);
  if (rc != 0) {
    snprintf(err, errlen, "%s%s: %s (fix or delete it: the cluster's settings then start from the defaults)", path,
             where, msg);
    return -1;
  }
  return 0;
}

static void format_acu(char *out, size_t n, double v) { snprintf(out, n, "%g", v); }

/* Writes c to the file, atomically (a temporary file renamed over it). */
static int save_file(const char *path, const cluster_state *c, char *err, size_t errlen) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
    snprintf(err, errlen, "the path %s is too long", path);
    return -1;
  }
  char lo[16], hi[16];
  format_acu(lo, sizeof lo, c->min_capacity);
  format_acu(hi, sizeof hi, c->max_capacity);
  char text[512];
  int len = snprintf(text, sizeof text,
                     "# The local cluster's settings as the RDS API changed them (alex-dataapi keeps this file)\n"
                     "MIN_CAPACITY=%s\nMAX_CAPACITY=%s\nSECONDS_UNTIL_AUTO_PAUSE=%d\nHTTP_ENDPOINT_ENABLED=%s\n"
                     "CREATED=%lld\n",
                     lo, hi, c->seconds_until_auto_pause, c->http_endpoint_enabled ? "true" : "false", c->created);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int ok = fd >= 0;
  if (ok) ok = write(fd, text, (size_t)len) == len;
  if (fd >= 0) ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  return 0;
}

int cluster_init(server *s, char *err, size_t errlen) {
  cluster_state *c = &s->cluster;
  memset(c, 0, sizeof *c);
  c->min_capacity = 0.5;
  c->max_capacity = 2;
  c->seconds_until_auto_pause = 300;
  c->http_endpoint_enabled = 1;
  c->created = (long long)time(NULL);
  snprintf(c->status, sizeof c->status, "available");
  c->status_describes = -1;
  if (s->cfg.engine_version) snprintf(c->engine_version, sizeof c->engine_version, "%s", s->cfg.engine_version);
  const char *path = s->cfg.cluster_state_file;
  if (!path) return 0;
  int rc = load_file(path, c, err, errlen);
  if (rc < 0) return -1;
  /* a new file records the creation time, which later starts then report */
  if (rc == 1 && save_file(path, c, err, errlen) != 0) return -1;
  return 0;
}

/* ---- reading and changing ---- */

void cluster_get(server *s, int describing, cluster_state *out) {
  pthread_mutex_lock(&s->cluster_mu);
  *out = s->cluster;
  if (describing && s->cluster.status_describes > 0 && --s->cluster.status_describes == 0) {
    snprintf(s->cluster.status, sizeof s->cluster.status, "available");
    s->cluster.status_describes = -1;
  }
  pthread_mutex_unlock(&s->cluster_mu);
}

int cluster_http_endpoint_enabled(server *s) {
  pthread_mutex_lock(&s->cluster_mu);
  int on = s->cluster.http_endpoint_enabled;
  pthread_mutex_unlock(&s->cluster_mu);
  return on;
}

/* Takes next as the new state once the file holds it. */
static int commit(server *s, const cluster_state *next, apierr *err) {
  char msg[512];
  if (s->cfg.cluster_state_file && save_file(s->cfg.cluster_state_file, next, msg, sizeof msg) != 0) {
    LOGE(&s->log, "cluster: %s", msg);
    apierr_set(err, 500, "InternalFailure", "The change could not be kept: %s", msg);
    return -1;
  }
  s->cluster = *next;
  return 0;
}

int cluster_put_scaling(server *s, double min, double max, int seconds, apierr *err) {
  pthread_mutex_lock(&s->cluster_mu);
  cluster_state next = s->cluster;
  next.min_capacity = min;
  next.max_capacity = max;
  next.seconds_until_auto_pause = seconds;
  /* a modification keeps the cluster busy for a while, when asked to */
  if (next.modify_describes > 0) {
    snprintf(next.status, sizeof next.status, "modifying");
    next.status_describes = next.modify_describes;
  }
  int rc = commit(s, &next, err);
  pthread_mutex_unlock(&s->cluster_mu);
  return rc;
}

int cluster_put_http_endpoint(server *s, int enabled, apierr *err) {
  pthread_mutex_lock(&s->cluster_mu);
  cluster_state next = s->cluster;
  next.http_endpoint_enabled = enabled;
  int rc = commit(s, &next, err);
  pthread_mutex_unlock(&s->cluster_mu);
  return rc;
}

int cluster_set_status(server *s, const char *status, int for_describes, char *err, size_t errlen) {
  int known = 0;
  for (int i = 0; STATUSES[i]; i++) known |= strcmp(status, STATUSES[i]) == 0;
  if (!known) {
    snprintf(err, errlen, "'%.60s' is not an RDS cluster status (available, modifying, stopped, ...)", status);
    return -1;
  }
  pthread_mutex_lock(&s->cluster_mu);
  snprintf(s->cluster.status, sizeof s->cluster.status, "%s", status);
  s->cluster.status_describes = strcmp(status, "available") == 0 ? -1 : for_describes;
  pthread_mutex_unlock(&s->cluster_mu);
  return 0;
}

void cluster_set_modify_describes(server *s, int n) {
  pthread_mutex_lock(&s->cluster_mu);
  s->cluster.modify_describes = n;
  pthread_mutex_unlock(&s->cluster_mu);
}

int cluster_engine_version(server *s, char out[16], apierr *err) {
  pthread_mutex_lock(&s->cluster_mu);
  snprintf(out, 16, "%s", s->cluster.engine_version);
  pthread_mutex_unlock(&s->cluster_mu);
  if (*out) return 0;
  dbconn *c = db_acquire(s, s->cfg.default_database, err);
  if (!c) return -1;
  PGresult *r = PQexec(c->pg, "SHOW server_version_num");
  long num = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atol(PQgetvalue(r, 0, 0)) : 0;
  if (!r) db_error_from_conn(c, err);
  else if (!num) db_error_from_result(r, err);
  PQclear(r);
  db_release(s, c);
  if (!num) return -1;
  /* 150018 is 15.18: Aurora PostgreSQL versions carry the community major.minor */
  snprintf(out, 16, "%d.%d", (int)(num / 10000 % 1000), (int)(num % 100));
  pthread_mutex_lock(&s->cluster_mu);
  snprintf(s->cluster.engine_version, sizeof s->cluster.engine_version, "%s", out);
  pthread_mutex_unlock(&s->cluster_mu);
  return 0;
}

void cluster_json(server *s, sbuf *b) {
  cluster_state c;
  cluster_get(s, 0, &c);
  sb_puts(b, "{\"status\":");
  sb_json_str(b, c.status, strlen(c.status));
  sb_printf(b, ",\"for_describes\":%d,\"modify_describes\":%d,\"min_capacity\":", c.status_describes,
            c.modify_describes);
  sb_double(b, c.min_capacity);
  sb_puts(b, ",\"max_capacity\":");
  sb_double(b, c.max_capacity);
  sb_printf(b, ",\"seconds_until_auto_pause\":%d,\"http_endpoint_enabled\":%s,\"engine_version\":",
            c.seconds_until_auto_pause, c.http_endpoint_enabled ? "true" : "false");
  sb_json_str(b, c.engine_version, strlen(c.engine_version));
  sb_putc(b, '}');
}
